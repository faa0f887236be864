package queue

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"notifyrelay/queue/natstest"
)

// jsHarness opens each test's engine under a prefix of its own on c: the tests
// share the servers and must not see each other's keys.
func jsHarness(c *natstest.Cluster, replicas int, reopen bool) harness {
	openAt := func(t *testing.T, prefix string) *JetStream {
		e, err := OpenJetStream(JetStreamOptions{URLs: c.URLs, Replicas: replicas, Prefix: prefix}, testLogger(t))
		if err != nil {
			t.Fatalf("open jetstream: %v", err)
		}
		t.Cleanup(func() { _ = e.Close() })
		return e
	}
	prefixOf := map[Engine]string{}
	return harness{
		open: func(t *testing.T) Engine {
			p := natstest.Prefix()
			e := openAt(t, p)
			prefixOf[e] = p
			return e
		},
		reopen: func(t *testing.T, e Engine) Engine {
			if !reopen {
				return e
			}
			if err := e.Close(); err != nil {
				t.Fatalf("close: %v", err)
			}
			n := openAt(t, prefixOf[e])
			prefixOf[n] = prefixOf[e]
			return n
		},
	}
}

func TestJetStreamContract(t *testing.T) {
	c := natstest.Start(t, 1, true)
	t.Run("Plain", func(t *testing.T) { testEngine(t, jsHarness(c, 1, false)) })
	t.Run("Reopen", func(t *testing.T) { testEngine(t, jsHarness(c, 1, true)) })
}

func TestJetStreamClusterContract(t *testing.T) {
	if testing.Short() {
		t.Skip("3-node cluster")
	}
	c := natstest.Start(t, 3, false)
	testEngine(t, jsHarness(c, 3, true))
}

func openJSKVT(t *testing.T, c *natstest.Cluster, prefix string) *jsKV {
	t.Helper()
	kv, err := openJSKV(JetStreamOptions{URLs: c.URLs, Replicas: 1, Prefix: prefix}.withDefaults(), testLogger(t))
	if err != nil {
		t.Fatalf("open kv: %v", err)
	}
	t.Cleanup(func() { _ = kv.close() })
	return kv
}

func commitT(t *testing.T, kv *jsKV, fn func(kvTxn) error) {
	t.Helper()
	txn := kv.begin()
	if err := fn(txn); err != nil {
		t.Fatalf("txn: %v", err)
	}
	if err := txn.commit(); err != nil {
		t.Fatalf("commit: %v", err)
	}
}

func scanAll(t *testing.T, kv *jsKV, prefix []byte) []string {
	t.Helper()
	var got []string
	err := kv.view(func(r kvReader) error {
		return r.scan(prefix, nil, func(k, v []byte) error {
			got = append(got, fmt.Sprintf("%x=%s", k, v))
			return nil
		})
	})
	if err != nil {
		t.Fatalf("scan: %v", err)
	}
	return got
}

// Keys are arbitrary bytes, scans return them in byte order, and prefixes isolate.
func TestJetStreamKVKeysAndPrefixes(t *testing.T) {
	c := natstest.Start(t, 1, false)
	a, b := openJSKVT(t, c, "kva"), openJSKVT(t, c, "kvb")
	keys := [][]byte{{'r', 0xff}, {'r', 0}, {'r', '.', '*', '>'}, {'r'}, {'r', 0, 1}, {'m', 'x'}}
	commitT(t, a, func(txn kvTxn) error {
		for i, k := range keys {
			if err := txn.set(k, []byte(fmt.Sprint(i))); err != nil {
				return err
			}
		}
		return nil
	})
	want := "72=3 7200=1 720001=4 722e2a3e=2 72ff=0"
	if got := strings.Join(scanAll(t, a, []byte{'r'}), " "); got != want {
		t.Fatalf("scan r: %s, want %s", got, want)
	}
	if got := scanAll(t, b, nil); len(got) != 0 {
		t.Fatalf("prefix kvb sees %v", got)
	}
	_ = a.view(func(r kvReader) error {
		last, err := r.last([]byte{'r'})
		if err != nil || string(last) != "r\xff" {
			t.Fatalf("last: %q %v", last, err)
		}
		if !r.hasFrom([]byte{'r'}, []byte{'r', 0xfe}) || r.hasFrom([]byte{'m'}, []byte{'m', 'y'}) {
			t.Fatal("hasFrom")
		}
		return nil
	})
}

// A transaction holds at most 1000 keys, commits them all at once, and its deletions
// hide keys at once and leave nothing behind once their markers expire.
func TestJetStreamKVTxnLimitAndDeletes(t *testing.T) {
	c := natstest.Start(t, 1, false)
	kv := openJSKVT(t, c, "kv")
	txn := kv.begin()
	for i := range jsMaxTxnMsgs {
		if err := txn.set(fmt.Appendf(nil, "r%04d", i), []byte("v")); err != nil {
			t.Fatalf("set %d: %v", i, err)
		}
	}
	wantErr(t, txn.set([]byte("rmore"), []byte("v")), errTxnFull)
	if err := txn.set([]byte("r0000"), []byte("again")); err != nil {
		t.Fatalf("set an existing key of a full txn: %v", err)
	}
	if err := txn.commit(); err != nil {
		t.Fatalf("commit 1000: %v", err)
	}
	if got := scanAll(t, kv, []byte{'r'}); len(got) != jsMaxTxnMsgs || got[0] != "7230303030=again" {
		t.Fatalf("after commit: %d keys, first %v", len(got), got[:1])
	}
	commitT(t, kv, func(txn kvTxn) error {
		for i := range 500 {
			if err := txn.del(fmt.Appendf(nil, "r%04d", i)); err != nil {
				return err
			}
		}
		return txn.set([]byte("r0001"), []byte("back"))
	})
	if got := scanAll(t, kv, []byte{'r'}); len(got) != 501 || got[0] != "7230303031=back" {
		t.Fatalf("after deletes: %d keys, first %v", len(got), got[:1])
	}
	checkFor(t, 10*time.Second, func() error {
		keys, err := kv.keys([]byte{'r'}, nil)
		if err == nil && len(keys) != 501 {
			err = fmt.Errorf("%d subjects listed, want 501 once delete markers expired", len(keys))
		}
		return err
	})
}

// A batch the server refuses leaves the stream unchanged: commits are atomic.
func TestJetStreamKVBatchAtomic(t *testing.T) {
	c := natstest.Start(t, 1, false)
	kv := openJSKVT(t, c, "kv")
	commitT(t, kv, func(txn kvTxn) error { return txn.set([]byte("rz"), []byte("1")) })
	msgs := []*nats.Msg{kv.message([]byte("ra"), jsOp{value: []byte("a")}),
		kv.message([]byte("rb"), jsOp{value: []byte("b")})}
	msgs[1].Header.Set(jetstream.ExpectedLastSubjSeqHeader, "999") // stale: refused
	ctx, cancel := kv.ctx()
	defer cancel()
	if _, err := kv.publishBatch(ctx, msgs); err == nil {
		t.Fatal("batch with a failed check was accepted")
	}
	if got := strings.Join(scanAll(t, kv, []byte{'r'}), " "); got != "727a=1" {
		t.Fatalf("after a refused batch: %s", got)
	}
}

// One node at a time holds a prefix: a second Open fails with ErrLocked; once the
// first closes, the prefix opens again at once. Other prefixes are not affected.
func TestJetStreamPrefixLock(t *testing.T) {
	c := natstest.Start(t, 1, false)
	open := func(prefix string) (*JetStream, error) {
		return OpenJetStream(JetStreamOptions{URLs: c.URLs, Prefix: prefix, LockWait: 300 * time.Millisecond,
			Advertise: "10.0.0.1:8080"}, testLogger(t))
	}
	a, err := open("lock")
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	_, err = open("lock")
	wantErr(t, err, ErrLocked)
	var held *HeldError
	if !errors.As(err, &held) || held.Addr != "10.0.0.1:8080" {
		t.Fatalf("the refusal does not name the holder's address: %#v", err)
	}
	other, err := open("lock2")
	if err != nil {
		t.Fatalf("another prefix: %v", err)
	}
	_ = other.Close()
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	b, err := open("lock")
	if err != nil {
		t.Fatalf("after the holder closed: %v", err)
	}
	_ = b.Close()
}

// A node whose lock was taken from it (here: deleted and taken by another node, as
// after an expiry while it was cut off) counts it lost within half the TTL: Lost is
// closed and every commit fails with ErrLocked, so it cannot overwrite what the new
// holder writes.
func TestJetStreamLostLockStopsWrites(t *testing.T) {
	c := natstest.Start(t, 1, false)
	o := JetStreamOptions{URLs: c.URLs, Prefix: natstest.Prefix(), LockTTL: time.Second, LockWait: -1}
	a, err := OpenJetStream(o, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	ctx := context.Background()
	if _, err := a.Append(ctx, Write{Entries: []Entry{{ID: "1", Dest: "d", Data: []byte("x")}}}); err != nil {
		t.Fatal(err)
	}
	if err := a.lock.kv.Delete(ctx, "owner"); err != nil {
		t.Fatal(err)
	}
	b, err := OpenJetStream(o, testLogger(t))
	if err != nil {
		t.Fatalf("the second node could not take the freed lock: %v", err)
	}
	defer b.Close()
	select {
	case <-a.Lost():
	case <-time.After(10 * time.Second):
		t.Fatal("the first node did not notice it lost the lock")
	}
	_, err = a.Append(ctx, Write{Entries: []Entry{{ID: "2", Dest: "d", Data: []byte("y")}}})
	wantErr(t, err, ErrLocked)
	got, err := b.Read(ctx, "d", 0, 10)
	if err != nil || len(got) != 1 || got[0].ID != "1" {
		t.Fatalf("the new holder reads %v, %v; want entry 1 only", got, err)
	}
}

// The fence: a holder whose lock was taken while it still believes it holds it
// (frozen past its expiry, not yet noticed) cannot commit once the new holder has
// claimed the stream: the stream refuses its writes, and it counts the lock lost.
func TestJetStreamFenceRefusesAStaleHolder(t *testing.T) {
	c := natstest.Start(t, 1, false)
	o := JetStreamOptions{URLs: c.URLs, Prefix: natstest.Prefix(), LockWait: -1} // TTL 10 s: no renewal during the test
	a, err := OpenJetStream(o, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	ctx := context.Background()
	if err := a.lock.kv.Delete(ctx, "owner"); err != nil {
		t.Fatal(err)
	}
	b, err := OpenJetStream(o, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if a.lock.check() != nil {
		t.Fatal("the stale holder noticed by itself; the test needs it not to")
	}
	_, err = a.Append(ctx, Write{Entries: []Entry{{ID: "stale", Dest: "d", Data: []byte("x")}}})
	wantErr(t, err, ErrLocked)
	select {
	case <-a.Lost():
	default:
		t.Fatal("a refused commit did not count the lock as lost")
	}
	if got, err := b.Read(ctx, "d", 0, 10); err != nil || len(got) != 0 {
		t.Fatalf("the new holder reads %v, %v; want nothing", got, err)
	}
	if _, err := b.Append(ctx, Write{Entries: []Entry{{ID: "new", Dest: "d", Data: []byte("y")}}}); err != nil {
		t.Fatalf("the new holder cannot write: %v", err)
	}
}

// A refusal that only means the holder lost track of the stream's last sequence
// (here: a message written behind its back, as a commit that timed out but landed
// would) is resynchronised from the fence, and the commit goes through.
func TestJetStreamFenceResynchronises(t *testing.T) {
	c := natstest.Start(t, 1, false)
	a, err := OpenJetStream(JetStreamOptions{URLs: c.URLs, Prefix: natstest.Prefix(), LockWait: -1}, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	kv := a.engine.kv.(*jsKV)
	ctx := context.Background()
	if _, err := kv.js.Publish(ctx, kv.subject([]byte("zz")), []byte("behind its back")); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Append(ctx, Write{Entries: []Entry{{ID: "1", Dest: "d", Data: []byte("x")}}}); err != nil {
		t.Fatalf("commit after the sequence moved: %v", err)
	}
	if a.lock.check() != nil {
		t.Fatal("the holder gave up its own stream")
	}
}

// MaxBatchMsgs bounds one commit: a write over it fails with ErrEntryTooBig and
// changes nothing; raised (up to the servers' limits.batch.max_msgs), it fits.
func TestJetStreamMaxBatchMsgs(t *testing.T) {
	c := natstest.Start(t, 1, false)
	records := func(n int) Write {
		w := Write{Entries: []Entry{{ID: "e", Dest: "d", Data: []byte("x")}}}
		for i := range n {
			w.Records = append(w.Records, Record{Key: fmt.Appendf(nil, "r%05d", i), Value: []byte("v")})
		}
		return w
	}
	ctx := context.Background()
	small, err := OpenJetStream(JetStreamOptions{URLs: c.URLs, Prefix: natstest.Prefix(), MaxBatchMsgs: 100, LockWait: -1}, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer small.Close()
	_, err = small.Append(ctx, records(150))
	wantErr(t, err, ErrEntryTooBig)
	if d := small.DestStats("d").Depth; d != 0 {
		t.Fatalf("a refused write left %d entries", d)
	}
	big, err := OpenJetStream(JetStreamOptions{URLs: c.URLs, Prefix: natstest.Prefix(), MaxBatchMsgs: 2500, LockWait: -1}, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer big.Close()
	if _, err := big.Append(ctx, records(2000)); err != nil {
		t.Fatalf("2,000 records in one write with max_batch_msgs 2500: %v", err)
	}
}

// A scan of many keys streams them through an ordered consumer: it gives the same
// result as the get per key it replaces: key order, from start, values updated
// in place, empty values kept, deleted keys and other namespaces left out. So it
// does whether the stream holds the keys in their order or in reverse, and when
// the values held out of order pass its budget (the rest is read by gets).
func TestJetStreamKVStreamedScan(t *testing.T) {
	c := natstest.Start(t, 1, false)
	for _, order := range []string{"reverse", "forward"} {
		for _, budget := range []int{streamScanBytes, 10} {
			t.Run(fmt.Sprintf("%s/budget=%d", order, budget), func(t *testing.T) {
				kv := openJSKVT(t, c, fmt.Sprintf("scan%s%d", order, budget))
				kv.scanBudget = budget
				checkStreamedScan(t, kv, order == "reverse")
			})
		}
	}
}

func checkStreamedScan(t *testing.T, kv *jsKV, reverse bool) {
	const n = 3 * streamScanMin
	commitT(t, kv, func(txn kvTxn) error {
		for j := range n {
			i := j
			if reverse { // stream order is then the opposite of key order
				i = n - 1 - j
			}
			if err := txn.set(fmt.Appendf(nil, "l%04d", i), []byte("v")); err != nil {
				return err
			}
		}
		return txn.set([]byte("m0"), []byte("other namespace"))
	})
	commitT(t, kv, func(txn kvTxn) error {
		for i := 0; i < n; i += 3 {
			if err := txn.del(fmt.Appendf(nil, "l%04d", i)); err != nil {
				return err
			}
		}
		if err := txn.set([]byte("l0002"), []byte{}); err != nil {
			return err
		}
		return txn.set([]byte("l0001"), []byte("updated"))
	})
	var got []string
	err := kv.view(func(r kvReader) error {
		return r.scan([]byte("l"), []byte("l0001"), func(k, v []byte) error {
			got = append(got, string(k)+"="+string(v))
			return nil
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for i := 1; i < n; i++ {
		if i%3 == 0 {
			continue
		}
		v := map[int]string{1: "updated", 2: ""}[i]
		if i > 2 {
			v = "v"
		}
		want = append(want, fmt.Sprintf("l%04d=%s", i, v))
	}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("streamed scan:\n got %d: %.200v\nwant %d: %.200v", len(got), got, len(want), want)
	}
}

// A commit sent again with its id (as after a timeout whose commit landed) is
// stored once and reported committed, alone or as a batch; the next commit goes
// through (the node resynchronised its last sequence).
func TestJetStreamCommitSentTwiceStoredOnce(t *testing.T) {
	c := natstest.Start(t, 1, false)
	kv := openJSKVT(t, c, "twice")
	stored := func() uint64 { // a message stored again would move the last sequence
		info, err := kv.stream.Info(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		return info.State.LastSeq
	}
	for _, keys := range []int{1, 3} {
		var msgs []*nats.Msg
		for i := range keys {
			msgs = append(msgs, kv.message(fmt.Appendf(nil, "r%d-%d", keys, i), jsOp{value: []byte("v")}))
		}
		msgs[0].Header.Set(jetstream.MsgIDHeader, kv.commitID())
		if err := kv.send(msgs); err != nil {
			t.Fatal(err)
		}
		before := stored()
		if err := kv.send(msgs); err != nil {
			t.Fatalf("%d keys sent again: %v", keys, err)
		}
		if after := stored(); after != before {
			t.Fatalf("%d keys sent again: stored again (last sequence %d, was %d)", keys, after, before)
		}
	}
	commitT(t, kv, func(txn kvTxn) error { return txn.set([]byte("rz"), []byte("next")) })
}
