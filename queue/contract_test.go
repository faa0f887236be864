package queue

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// testEngine is the contract every engine passes. h.reopen closes and reopens durable
// engines between steps; for others it returns the same engine.
func testEngine(t *testing.T, h harness) {
	tests := []struct {
		name string
		fn   func(*testing.T, harness)
	}{
		{"FIFOSeq", testFIFOSeq},
		{"AtomicMultiDest", testAtomicMultiDest},
		{"ReadWindows", testReadWindows},
		{"CumulativeAck", testCumulativeAck},
		{"UnackedReadAgain", testUnackedReadAgain},
		{"Retry", testRetry},
		{"DeadLetter", testDeadLetter},
		{"Delete", testDelete},
		{"Stats", testStats},
		{"Records", testRecords},
		{"ReopenKeepsAll", testReopenKeepsAll},
		{"NextLease", testNextLease},
		{"NextWakes", testNextWakes},
		{"NextExclusiveConcurrent", testNextExclusiveConcurrent},
		{"Watch", testWatch},
		{"Close", testClose},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, h) })
	}
}

func TestBadgerContract(t *testing.T)       { testEngine(t, badgerHarness(false)) }
func TestBadgerReopenContract(t *testing.T) { testEngine(t, badgerHarness(true)) }

func TestMemoryContract(t *testing.T) {
	testEngine(t, harness{
		open: func(t *testing.T) Engine {
			m := NewMemory(testLogger(t))
			t.Cleanup(func() { _ = m.Close() })
			return m
		},
		reopen: func(t *testing.T, e Engine) Engine { return e },
	})
}

func testFIFOSeq(t *testing.T, h harness) {
	e := h.open(t)
	for i, want := range []uint64{1, 2, 3} {
		seqs := mustAppend(t, e, entry("a", fmt.Sprint("id", i), fmt.Sprint("data", i)))
		if seqs[0] != want {
			t.Fatalf("append %d: seq %d, want %d", i, seqs[0], want)
		}
	}
	e = h.reopen(t, e)
	es := mustRead(t, e, "a", 0, 10)
	if got := seqsOf(es); got != "1:id0 2:id1 3:id2 " {
		t.Fatalf("read: %s", got)
	}
	for i, x := range es {
		if string(x.Data) != fmt.Sprint("data", i) || x.Dest != "a" || x.Enqueued.IsZero() {
			t.Fatalf("entry %d: %+v", i, x)
		}
	}
}

func testAtomicMultiDest(t *testing.T, h harness) {
	e := h.open(t)
	w := Write{
		Entries: []Entry{entry("a", "1", "x"), entry("b", "2", "y"), entry("a", "3", "z")},
		Records: []Record{{Key: []byte("state"), Value: []byte("v1")}},
	}
	seqs, err := e.Append(ctxT(t), w)
	if err != nil || fmt.Sprint(seqs) != "[1 1 2]" {
		t.Fatalf("append: %v %v", seqs, err)
	}
	e = h.reopen(t, e)
	if got := seqsOf(mustRead(t, e, "a", 0, 10)); got != "1:1 2:3 " {
		t.Fatalf("a: %s", got)
	}
	if got := seqsOf(mustRead(t, e, "b", 0, 10)); got != "1:2 " {
		t.Fatalf("b: %s", got)
	}
	if v, err := e.Get(ctxT(t), []byte("state")); err != nil || string(v) != "v1" {
		t.Fatalf("record: %q %v", v, err)
	}
	// One bad entry refuses the whole write.
	bad := Write{Entries: []Entry{entry("a", "4", "ok"), entry("", "5", "no dest")},
		Records: []Record{{Key: []byte("state"), Value: []byte("v2")}}}
	_, err = e.Append(ctxT(t), bad)
	wantErr(t, err, ErrEmptyDest)
	if got := seqsOf(mustRead(t, e, "a", 0, 10)); got != "1:1 2:3 " {
		t.Fatalf("after refused write: %s", got)
	}
	if v, _ := e.Get(ctxT(t), []byte("state")); string(v) != "v1" {
		t.Fatalf("record changed by refused write: %q", v)
	}
}

func testReadWindows(t *testing.T, h harness) {
	e := h.open(t)
	for i := 1; i <= 10; i++ {
		mustAppend(t, e, entry("w", fmt.Sprint(i), "d"))
	}
	e = h.reopen(t, e)
	if got := seqsOf(mustRead(t, e, "w", 3, 4)); got != "4:4 5:5 6:6 7:7 " {
		t.Fatalf("after 3 max 4: %s", got)
	}
	if got := seqsOf(mustRead(t, e, "w", 8, 100)); got != "9:9 10:10 " {
		t.Fatalf("after 8: %s", got)
	}
	if es := mustRead(t, e, "w", 10, 5); len(es) != 0 {
		t.Fatalf("after tail: %s", seqsOf(es))
	}
	if es := mustRead(t, e, "unknown", 0, 5); len(es) != 0 {
		t.Fatalf("unknown dest: %s", seqsOf(es))
	}
	_, err := e.Read(ctxT(t), "w", 0, 0)
	wantErr(t, err, ErrBadArguments)
}

func testCumulativeAck(t *testing.T, h harness) {
	e := h.open(t)
	for i := 1; i <= 5; i++ {
		mustAppend(t, e, entry("k", fmt.Sprint(i), "d"))
	}
	ctx := ctxT(t)
	if err := e.Ack(ctx, "k", 3); err != nil {
		t.Fatal(err)
	}
	e = h.reopen(t, e)
	if got := seqsOf(mustRead(t, e, "k", 0, 10)); got != "4:4 5:5 " {
		t.Fatalf("after ack 3: %s", got)
	}
	for _, seq := range []uint64{2, 0, 100} { // already gone, nothing, past the tail
		if err := e.Ack(ctx, "k", seq); err != nil {
			t.Fatalf("ack %d: %v", seq, err)
		}
	}
	if err := e.Ack(ctx, "nobody", 7); err != nil {
		t.Fatalf("ack unknown: %v", err)
	}
	if d := e.DestStats("k").Depth; d != 0 {
		t.Fatalf("depth %d after acking all", d)
	}
	e = h.reopen(t, e)
	if seqs := mustAppend(t, e, entry("k", "6", "d")); seqs[0] != 6 {
		t.Fatalf("seq after drain: %d, want 6", seqs[0])
	}
}

func testUnackedReadAgain(t *testing.T, h harness) {
	e := h.open(t)
	mustAppend(t, e, entry("u", "1", "a"), entry("u", "2", "b"))
	first := seqsOf(mustRead(t, e, "u", 0, 10))
	e = h.reopen(t, e)
	if again := seqsOf(mustRead(t, e, "u", 0, 10)); again != first || first != "1:1 2:2 " {
		t.Fatalf("read %q then %q", first, again)
	}
}

func testRetry(t *testing.T, h harness) {
	e := h.open(t)
	ctx := ctxT(t)
	mustAppend(t, e, entry("r", "1", "a"), entry("r", "2", "b"))
	d := mustNext(t, e, "r", time.Second)
	wantErr(t, e.Retry(ctx, d, 2, time.Time{}, "not head"), ErrNotHead)
	wantErr(t, e.Retry(ctx, "empty", 1, time.Time{}, "nothing"), ErrNotHead)
	if err := e.Retry(ctx, d, 1, time.Now(), "first"); err != nil {
		t.Fatal(err)
	}
	at := time.Now().Add(300 * time.Millisecond)
	if err := e.Retry(ctx, d, 1, at, "boom"); err != nil {
		t.Fatal(err)
	}
	e.Release(d)
	st := e.DestStats("r")
	if st.HeadAttempts != 2 || st.DueAt.IsZero() || st.Leased {
		t.Fatalf("stats after retry: %+v", st)
	}
	if got := mustNext(t, e, "r", 5*time.Second); got != "r" || time.Now().Before(at) {
		t.Fatalf("next %q at %v, due %v", got, time.Now(), at)
	}
	head := mustRead(t, e, "r", 0, 10)
	if seqsOf(head) != "1:1 2:2 " || head[0].Attempts != 2 || head[0].LastError != "boom" ||
		head[1].Attempts != 0 {
		t.Fatalf("after retry: %+v", head)
	}
	e = h.reopen(t, e)
	if err := e.Ack(ctx, "r", 1); err != nil {
		t.Fatal(err)
	}
	if st := e.DestStats("r"); st.HeadAttempts != 0 || st.Depth != 1 {
		t.Fatalf("after ack: %+v", st)
	}
}

func testDeadLetter(t *testing.T, h harness) {
	e := h.open(t)
	ctx := ctxT(t)
	mustAppend(t, e, entry("dl/a", "x1", "one"), entry("dl/a", "x2", "two"),
		entry("dl/a", "x3", "three"), entry("other/b", "y1", "why"))
	wantErr(t, e.DeadLetter(ctx, "dl/a", 2, "not head"), ErrNotHead)
	if err := e.Retry(ctx, "dl/a", 1, time.Time{}, "503"); err != nil {
		t.Fatal(err)
	}
	for _, dl := range []struct {
		dest string
		seq  uint64
	}{{"dl/a", 1}, {"dl/a", 2}, {"other/b", 1}} {
		if err := e.DeadLetter(ctx, dl.dest, dl.seq, "gone"); err != nil {
			t.Fatalf("dead letter %v: %v", dl, err)
		}
	}
	e = h.reopen(t, e)
	if got := seqsOf(mustRead(t, e, "dl/a", 0, 10)); got != "3:x3 " {
		t.Fatalf("after dead letters: %s", got)
	}
	dl, err := e.GetDeadLetter(ctx, "x1")
	if err != nil || dl.Dest != "dl/a" || dl.Seq != 1 || string(dl.Data) != "one" ||
		dl.Reason != "gone" || dl.Attempts != 1 || dl.LastError != "503" || dl.DeadAt.IsZero() {
		t.Fatalf("get dead letter: %+v %v", dl, err)
	}
	testDeadLetterList(t, e)
	_, err = e.Append(ctx, Write{Entries: []Entry{entry("dl/a", "x1", "again")}})
	wantErr(t, err, ErrDuplicateID)
	testReplay(t, h, e, dl)
}

func testDeadLetterList(t *testing.T, e Engine) {
	ctx := ctxT(t)
	page := func(prefix, after string, limit int) string {
		list, next, err := e.DeadLetters(ctx, prefix, after, limit)
		if err != nil {
			t.Fatalf("dead letters: %v", err)
		}
		s := ""
		for _, dl := range list {
			s += dl.ID + " "
		}
		return s + "next=" + next
	}
	cases := []struct{ prefix, after, want string }{
		{"", "", "x1 x2 y1 next="},
		{"dl/", "", "x1 next=x1"},
		{"dl/", "x1", "x2 next="},
		{"other/", "", "y1 next="},
		{"none/", "", "next="},
	}
	for _, c := range cases {
		limit := 10
		if c.prefix == "dl/" {
			limit = 1
		}
		if got := page(c.prefix, c.after, limit); got != c.want {
			t.Fatalf("dead letters %q after %q: %q, want %q", c.prefix, c.after, got, c.want)
		}
	}
	_, _, err := e.DeadLetters(ctx, "", "", 0)
	wantErr(t, err, ErrBadArguments)
}

func testReplay(t *testing.T, h harness, e Engine, dl DeadLetter) {
	ctx := ctxT(t)
	got, err := e.Replay(ctx, "x1")
	if err != nil || got.ID != "x1" || got.Dest != "dl/a" || got.Seq != 4 ||
		string(got.Data) != "one" || !got.Enqueued.Equal(dl.Enqueued) || got.Attempts != 0 {
		t.Fatalf("replay: %+v %v", got, err)
	}
	_, err = e.Replay(ctx, "x1")
	wantErr(t, err, ErrNotFound)
	e = h.reopen(t, e)
	_, err = e.GetDeadLetter(ctx, "x1")
	wantErr(t, err, ErrNotFound)
	if got := seqsOf(mustRead(t, e, "dl/a", 0, 10)); got != "3:x3 4:x1 " {
		t.Fatalf("after replay: %s", got)
	}
}

func testDelete(t *testing.T, h harness) {
	e := h.open(t)
	ctx := ctxT(t)
	mustAppend(t, e, entry("del", "1", "a"), entry("del", "2", "b"), entry("keep", "3", "c"))
	if err := e.DeadLetter(ctx, "del", 1, "x"); err != nil {
		t.Fatal(err)
	}
	e = h.reopen(t, e)
	wake, stop := e.Watch("del")
	defer stop()
	if err := e.Delete(ctx, "del"); err != nil {
		t.Fatal(err)
	}
	gotSignal(t, wake, time.Second)
	if err := e.Delete(ctx, "never"); err != nil {
		t.Fatalf("delete unknown: %v", err)
	}
	e = h.reopen(t, e)
	if es := mustRead(t, e, "del", 0, 10); len(es) != 0 || e.DestStats("del").Depth != 0 {
		t.Fatalf("after delete: %s", seqsOf(es))
	}
	if _, err := e.GetDeadLetter(ctx, "1"); err != nil {
		t.Fatalf("dead letter lost by delete: %v", err)
	}
	if got := seqsOf(mustRead(t, e, "keep", 0, 10)); got != "1:3 " {
		t.Fatalf("other dest: %s", got)
	}
	if seqs := mustAppend(t, e, entry("del", "4", "d")); seqs[0] != 1 {
		t.Fatalf("seq after delete: %d", seqs[0])
	}
}

func testStats(t *testing.T, h harness) {
	e := h.open(t)
	before := time.Now()
	mustAppend(t, e, entry("s/a", "1", "x"), entry("s/a", "2", "x"))
	mustAppend(t, e, entry("s/b", "3", "x"), entry("t/c", "4", "x"))
	e = h.reopen(t, e)
	list := e.Dests("s/")
	if len(list) != 2 || list[0].Dest != "s/a" || list[0].Depth != 2 || list[1].Depth != 1 {
		t.Fatalf("dests: %+v", list)
	}
	if o := list[0].Oldest; o.Before(before.Add(-time.Second)) || o.After(time.Now()) {
		t.Fatalf("oldest %v, appended after %v", o, before)
	}
	if n := len(e.Dests("")); n != 3 {
		t.Fatalf("all dests: %d", n)
	}
	if st := e.DestStats("nope"); st.Depth != 0 || !st.Oldest.IsZero() {
		t.Fatalf("unknown: %+v", st)
	}
	es := mustRead(t, e, "s/a", 0, 2)
	if err := e.Ack(ctxT(t), "s/a", 1); err != nil {
		t.Fatal(err)
	}
	if st := e.DestStats("s/a"); st.Depth != 1 || !st.Oldest.Equal(es[1].Enqueued) {
		t.Fatalf("after ack: %+v, want oldest %v", st, es[1].Enqueued)
	}
}

func testRecords(t *testing.T, h harness) {
	e := h.open(t)
	ctx := ctxT(t)
	w := Write{Records: []Record{{Key: []byte("k/b"), Value: []byte("2")},
		{Key: []byte("k/a"), Value: []byte("1")}, {Key: []byte("other"), Value: []byte("3")},
		{Key: []byte{0, 'm', 'x'}, Value: []byte("binary")}}}
	if _, err := e.Append(ctx, w); err != nil {
		t.Fatal(err)
	}
	e = h.reopen(t, e)
	scan := func(prefix string) string {
		var s bytes.Buffer
		err := e.Scan(ctx, []byte(prefix), func(k, v []byte) error {
			fmt.Fprintf(&s, "%s=%s ", k, v)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		return s.String()
	}
	if got := scan("k/"); got != "k/a=1 k/b=2 " {
		t.Fatalf("scan: %q", got)
	}
	del := Write{Records: []Record{{Key: []byte("k/a")}}}
	if _, err := e.Append(ctx, del); err != nil {
		t.Fatal(err)
	}
	_, err := e.Get(ctx, []byte("k/a"))
	wantErr(t, err, ErrNotFound)
	if v, err := e.Get(ctx, []byte{0, 'm', 'x'}); err != nil || string(v) != "binary" {
		t.Fatalf("binary key: %q %v", v, err)
	}
	stop := errors.New("stop")
	wantErr(t, e.Scan(ctx, nil, func(k, v []byte) error { return stop }), stop)
	_, err = e.Get(ctx, nil)
	wantErr(t, err, ErrEmptyRecord)
	_, err = e.Append(ctx, Write{Records: []Record{{Value: []byte("x")}}})
	wantErr(t, err, ErrEmptyRecord)
}

func testReopenKeepsAll(t *testing.T, h harness) {
	e := h.open(t)
	ctx := ctxT(t)
	mustAppend(t, e, entry("ra", "1", "a"), entry("rb", "2", "b"), entry("rb", "3", "c"))
	if err := e.Retry(ctx, "ra", 1, time.Now().Add(time.Hour), "later"); err != nil {
		t.Fatal(err)
	}
	if err := e.DeadLetter(ctx, "rb", 1, "bad"); err != nil {
		t.Fatal(err)
	}
	e = h.reopen(t, e)
	if st := e.DestStats("ra"); st.HeadAttempts != 1 || st.Depth != 1 {
		t.Fatalf("ra: %+v", st)
	}
	if got := seqsOf(mustRead(t, e, "rb", 0, 10)); got != "2:3 " {
		t.Fatalf("rb: %s", got)
	}
	if _, err := e.GetDeadLetter(ctx, "2"); err != nil {
		t.Fatal(err)
	}
}

func testNextLease(t *testing.T, h harness) {
	e := h.open(t)
	mustAppend(t, e, entry("n/a", "1", "x"), entry("n/b", "2", "x"), entry("p/c", "3", "x"))
	e = h.reopen(t, e)
	a := mustNext(t, e, "n/", time.Second)
	b := mustNext(t, e, "n/", time.Second)
	if a == b || a[:2] != "n/" || b[:2] != "n/" {
		t.Fatalf("leases %q %q", a, b)
	}
	noNext(t, e, "n/", 50*time.Millisecond)
	if !e.DestStats(a).Leased {
		t.Fatalf("%s not leased", a)
	}
	e.Release(a)
	if got := mustNext(t, e, "n/", time.Second); got != a {
		t.Fatalf("after release: %q, want %q", got, a)
	}
	if err := e.Ack(ctxT(t), b, 1); err != nil {
		t.Fatal(err)
	}
	e.Release(b) // empty now: not handed out again
	e.Release(b) // a second release is harmless
	noNext(t, e, "n/", 50*time.Millisecond)
	if got := mustNext(t, e, "p/", time.Second); got != "p/c" {
		t.Fatalf("prefix p/: %q", got)
	}
}

func testNextWakes(t *testing.T, h harness) {
	e := h.open(t)
	got := make(chan string, 1)
	go func() {
		d, err := e.Next(ctxT(t), "wk/")
		if err != nil {
			d = err.Error()
		}
		got <- d
	}()
	mustAppend(t, e, entry("other", "0", "x")) // another prefix wakes no one
	mustAppend(t, e, entry("wk/a", "1", "x"))
	select {
	case d := <-got:
		if d != "wk/a" {
			t.Fatalf("woke with %q", d)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("Next not woken by Append")
	}
	ctx, cancel := context.WithCancel(ctxT(t))
	cancel()
	_, err := e.Next(ctx, "wk/")
	wantErr(t, err, context.Canceled)
}

// testNextExclusiveConcurrent checks that no destination is ever leased twice.
func testNextExclusiveConcurrent(t *testing.T, h harness) {
	e := h.open(t)
	for i := 0; i < 20; i++ {
		mustAppend(t, e, entry(fmt.Sprintf("x/%d", i%5), fmt.Sprint(i), "d"))
	}
	var held sync.Map
	var leases, dup atomic.Int64
	ctx, cancel := context.WithTimeout(ctxT(t), 300*time.Millisecond)
	defer cancel()
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				d, err := e.Next(ctx, "x/")
				if err != nil {
					return
				}
				if _, loaded := held.LoadOrStore(d, true); loaded {
					dup.Add(1)
				}
				leases.Add(1)
				held.Delete(d)
				e.Release(d)
			}
		}()
	}
	wg.Wait()
	if dup.Load() != 0 || leases.Load() < 10 {
		t.Fatalf("%d double leases in %d", dup.Load(), leases.Load())
	}
}

func testWatch(t *testing.T, h harness) {
	e := h.open(t)
	wake, stop := e.Watch("wt")
	other, stopOther := e.Watch("wt2")
	defer stopOther()
	mustAppend(t, e, entry("wt", "1", "x"))
	mustAppend(t, e, entry("wt", "2", "x"))
	gotSignal(t, wake, time.Second)
	select { // two appends, one coalesced signal
	case <-wake:
		t.Fatal("signal not coalesced")
	default:
	}
	select {
	case <-other:
		t.Fatal("watch of another dest woken")
	default:
	}
	stop()
	mustAppend(t, e, entry("wt", "3", "x"))
	select {
	case <-wake:
		t.Fatal("stopped watch woken")
	default:
	}
}

func testClose(t *testing.T, h harness) {
	e := h.open(t)
	errc := make(chan error, 1)
	go func() {
		_, err := e.Next(context.Background(), "c/")
		errc <- err
	}()
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-errc:
		wantErr(t, err, ErrClosed)
	case <-time.After(2 * time.Second):
		t.Fatal("Next not woken by Close")
	}
	_, err := e.Append(ctxT(t), Write{Entries: []Entry{entry("c/a", "1", "x")}})
	wantErr(t, err, ErrClosed)
	_, err = e.Read(ctxT(t), "c/a", 0, 1)
	wantErr(t, err, ErrClosed)
	_, err = e.Next(ctxT(t), "c/")
	wantErr(t, err, ErrClosed)
	if err := e.Close(); err != nil {
		t.Fatalf("second close: %v", err)
	}
}
