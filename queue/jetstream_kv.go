package queue

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/synadia-io/orbit.go/jetstreamext"
)

// jsKV is kvStore on one JetStream stream with one subject per key and at most one
// message per subject (the key's value). Keys are arbitrary bytes; a key's subject
// is <prefix>.q.<hex of its first byte>.x<hex of the rest>: the first byte (the
// queue's namespace, codec.go) gets its own token so that a scan lists only its
// namespace, and hex keeps every token valid whatever the bytes.
//
// A transaction is one atomic batch publish (ADR-50, nats-server >= 2.12): the
// stream applies all of its messages or none. A deletion is a message with the
// header KV-Operation: DEL (as JetStream KV writes them) that replaces the value
// and expires after deleteMarkerTTL, so deleted keys leave nothing behind.
//
// Reads go to the stream leader. Scans list the subjects under a filter and sort
// them here, then get each value: simple, and enough for one node at a time (the
// first step of the scale-out). They are not snapshots: a scan running during a
// commit may see some keys before it and others after it; the engine's own reads
// tolerate that (a log value gone was acknowledged meanwhile).
type jsKV struct {
	nc      *nats.Conn
	js      jetstream.JetStream
	stream  jetstream.Stream
	name    string // stream name
	subj    string // subject prefix
	timeout time.Duration
	maxMsgs int     // messages in one atomic batch at most
	lock    *jsLock // this node's hold on the prefix

	commitMu sync.Mutex    // one commit at a time: each expects the last one's sequence
	who      []byte        // this node's claim on the fence subject (jetstream_fence.go)
	last     uint64        // the stream's last sequence, as this node's commits left it
	idPrefix string        // unique per open: commit ids (Nats-Msg-Id) never repeat
	commits  atomic.Uint64 // commits sent, for their ids

	scanBudget int // bytes a streamed scan holds out of key order (streamScanBytes; tests lower it)
}

// Limits of one transaction. JetStream refuses atomic batches of more than 1000
// messages; the byte bound keeps one commit within what a client sends before the
// server has to push back.
const (
	jsMaxTxnMsgs    = 1000 // the NATS server's default limits.batch.max_msgs
	jsMaxTxnBytes   = 32 << 20
	deleteMarkerTTL = "1s"
	kvOpHeader      = "KV-Operation"
)

func (kv *jsKV) subject(key []byte) string {
	return kv.subj + "." + hex.EncodeToString(key[:1]) + ".x" + hex.EncodeToString(key[1:])
}

// filter is the subject filter that covers every key starting with prefix.
func (kv *jsKV) filter(prefix []byte) string {
	if len(prefix) == 0 {
		return kv.subj + ".>"
	}
	return kv.subj + "." + hex.EncodeToString(prefix[:1]) + ".>"
}

func (kv *jsKV) keyOf(subject string) ([]byte, bool) {
	ns, rest, ok := strings.Cut(strings.TrimPrefix(subject, kv.subj+"."), ".x")
	a, err1 := hex.DecodeString(ns)
	b, err2 := hex.DecodeString(rest)
	if !ok || len(a) != 1 || err1 != nil || err2 != nil {
		return nil, false
	}
	return append(a, b...), true
}

func (kv *jsKV) ctx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), kv.timeout)
}

func (kv *jsKV) begin() kvTxn { return &jsTxn{kv: kv, pending: map[string]jsOp{}} }

func (kv *jsKV) view(fn func(kvReader) error) error { return fn(jsReader{kv}) }

// compact has nothing to do: deleted keys expire by themselves.
func (kv *jsKV) compact() error { return nil }

// space reports no limit: the NATS servers manage their own storage.
func (kv *jsKV) space() spaceState { return spaceState{} }

func (kv *jsKV) close() error {
	kv.lock.release()
	kv.nc.Close()
	return nil
}

// get returns the value of key, or errNoKey when it has none or a delete marker.
func (kv *jsKV) get(key []byte) ([]byte, error) {
	ctx, cancel := kv.ctx()
	defer cancel()
	m, err := kv.stream.GetLastMsgForSubject(ctx, kv.subject(key))
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return nil, errNoKey
	}
	if err != nil {
		return nil, fmt.Errorf("queue: jetstream get: %w", err)
	}
	if m.Header.Get(kvOpHeader) != "" {
		return nil, errNoKey
	}
	if m.Data == nil {
		return []byte{}, nil
	}
	return m.Data, nil
}

// keys lists the keys with prefix that are >= start, sorted. Deleted keys whose
// marker has not expired yet are listed too: readers skip them on get.
func (kv *jsKV) keys(prefix, start []byte) ([][]byte, error) {
	ctx, cancel := kv.ctx()
	defer cancel()
	info, err := kv.stream.Info(ctx, jetstream.WithSubjectFilter(kv.filter(prefix)))
	if err != nil {
		return nil, fmt.Errorf("queue: jetstream list keys: %w", err)
	}
	out := make([][]byte, 0, len(info.State.Subjects))
	for s := range info.State.Subjects {
		k, ok := kv.keyOf(s)
		if ok && bytes.HasPrefix(k, prefix) && bytes.Compare(k, start) >= 0 {
			out = append(out, k)
		}
	}
	slices.SortFunc(out, bytes.Compare)
	return out, nil
}

// jsReader reads the stream as it is at each call.
type jsReader struct{ kv *jsKV }

func (r jsReader) get(key []byte) ([]byte, error) { return r.kv.get(key) }

// scan gets the values of scanAhead keys at a time, concurrently: a get is one
// round trip to the stream leader, and the engine's open reads every log value
// (a takeover's load time; BenchmarkJetStreamOpen).
func (r jsReader) scan(prefix, start []byte, fn func(k, v []byte) error) error {
	keys, err := r.kv.keys(prefix, start)
	if err != nil {
		return err
	}
	if len(keys) >= streamScanMin {
		if keys, err = r.kv.streamScan(prefix, keys, fn); err != nil {
			return err
		}
	}
	for len(keys) > 0 {
		n := min(len(keys), scanAhead)
		values, err := r.kv.getAll(keys[:n])
		if err != nil {
			return err
		}
		for i, k := range keys[:n] {
			if values[i] == nil {
				continue // deleted since listed, or a delete marker
			}
			if err := fn(k, values[i]); err != nil {
				return err
			}
		}
		keys = keys[n:]
	}
	return nil
}

const scanAhead = 64

// A scan of at least streamScanMin keys reads the namespace's values with one
// ordered consumer (the last message of each subject, streamed) instead of a get
// per key: at open the engine reads every log value, and a backlog of
// unacknowledged appends is what a takeover must load. Values go to the caller as
// soon as every key before them is settled, so the scan holds only what arrives
// out of key order, at most streamScanBytes (log values arrive nearly in order:
// their keys grow with time).
const (
	streamScanMin   = 256
	streamScanBytes = 64 << 20
)

// streamScan calls fn, in key order, for each of keys (sorted) that has a value,
// reading them through an ordered consumer on prefix. It returns the keys it did
// not get to: all those from the first one still missing when the values held
// out of order passed kv.scanBudget, for the caller to get one by one.
func (kv *jsKV) streamScan(prefix []byte, keys [][]byte, fn func(k, v []byte) error) (rest [][]byte, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), 4*kv.timeout)
	defer cancel()
	c, err := kv.stream.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{kv.filter(prefix)}, DeliverPolicy: jetstream.DeliverLastPerSubjectPolicy,
		InactiveThreshold: 5 * time.Second})
	if err != nil {
		return nil, fmt.Errorf("queue: jetstream read %x: %w", prefix, err)
	}
	o := newInOrder(keys, fn)
	for {
		batch, err := c.Fetch(1000, jetstream.FetchMaxWait(time.Second))
		if err != nil {
			return nil, fmt.Errorf("queue: jetstream read %x: %w", prefix, err)
		}
		got, done := 0, false
		for m := range batch.Messages() {
			got++
			if k, isKey := kv.keyOf(m.Subject()); isKey {
				var v []byte // nil: deleted
				if m.Headers().Get(kvOpHeader) == "" {
					if v = m.Data(); v == nil {
						v = []byte{} // an empty value is not a deleted one
					}
				}
				if err := o.arrive(k, v); err != nil {
					return nil, err
				}
			}
			md, err := m.Metadata()
			if done = err != nil || md.NumPending == 0; done {
				break // the fetch would wait for the rest of its 1000 until FetchMaxWait
			}
		}
		if err := batch.Error(); err != nil {
			return nil, fmt.Errorf("queue: jetstream read %x: %w", prefix, err)
		}
		if o.held > kv.scanBudget {
			return o.keys[o.next:], nil
		}
		if done || got == 0 {
			return nil, o.finish()
		}
	}
}

// inOrder hands values that arrive in any order to fn in the order of keys.
type inOrder struct {
	keys    [][]byte          // sorted
	pending map[string][]byte // arrived, not yet handed over (nil: no value)
	next    int               // keys[next] is the first not handed over
	held    int               // bytes in pending
	fn      func(k, v []byte) error
}

func newInOrder(keys [][]byte, fn func(k, v []byte) error) *inOrder {
	return &inOrder{keys: keys, pending: map[string][]byte{}, fn: fn}
}

// arrive takes the value of k (nil: deleted) and hands over what it unblocks.
func (o *inOrder) arrive(k, v []byte) error {
	if _, listed := slices.BinarySearchFunc(o.keys[o.next:], k, bytes.Compare); !listed {
		return nil // before start, handed over already, or written since the keys were listed
	}
	o.pending[string(k)] = v
	o.held += len(v)
	for o.next < len(o.keys) {
		v, ok := o.pending[string(o.keys[o.next])]
		if !ok {
			return nil
		}
		if err := o.handOver(o.next, v); err != nil {
			return err
		}
	}
	return nil
}

// finish hands over the rest once the stream is read: a key that never came
// has no value any more.
func (o *inOrder) finish() error {
	for o.next < len(o.keys) {
		if err := o.handOver(o.next, o.pending[string(o.keys[o.next])]); err != nil {
			return err
		}
	}
	return nil
}

func (o *inOrder) handOver(i int, v []byte) error {
	k := o.keys[i]
	delete(o.pending, string(k))
	o.held -= len(v)
	o.next++
	if v == nil {
		return nil
	}
	return o.fn(k, v)
}

// getAll gets the values of keys concurrently; nil for a key without a value.
func (kv *jsKV) getAll(keys [][]byte) ([][]byte, error) {
	values := make([][]byte, len(keys))
	errs := make([]error, len(keys))
	var wg sync.WaitGroup
	for i, k := range keys {
		wg.Add(1)
		go func() {
			defer wg.Done()
			values[i], errs[i] = kv.get(k)
			if errors.Is(errs[i], errNoKey) {
				values[i], errs[i] = nil, nil
			}
		}()
	}
	wg.Wait()
	return values, errors.Join(errs...)
}

func (r jsReader) scanKeys(prefix []byte, fn func(k []byte) error) error {
	return r.scan(prefix, prefix, func(k, _ []byte) error { return fn(k) })
}

func (r jsReader) last(prefix []byte) ([]byte, error) {
	keys, err := r.kv.keys(prefix, prefix)
	if err != nil {
		return nil, err
	}
	for _, k := range slices.Backward(keys) {
		_, err := r.kv.get(k)
		if err == nil {
			return k, nil
		}
		if !errors.Is(err, errNoKey) {
			return nil, err
		}
	}
	return nil, nil
}

func (r jsReader) hasFrom(prefix, start []byte) bool {
	keys, err := r.kv.keys(prefix, start)
	if err != nil {
		return false
	}
	for _, k := range keys {
		if _, err := r.kv.get(k); err == nil {
			return true
		}
	}
	return false
}

type jsOp struct {
	value []byte
	del   bool
}

// jsTxn buffers writes until commit, then publishes them as one atomic batch.
type jsTxn struct {
	kv      *jsKV
	pending map[string]jsOp
	order   []string // keys in first-write order
	size    int
}

func (t *jsTxn) get(key []byte) ([]byte, error) {
	if op, ok := t.pending[string(key)]; ok {
		if op.del {
			return nil, errNoKey
		}
		return bytes.Clone(op.value), nil
	}
	return t.kv.get(key)
}

func (t *jsTxn) set(key, value []byte) error {
	return t.put(key, jsOp{value: bytes.Clone(value)})
}

func (t *jsTxn) del(key []byte) error { return t.put(key, jsOp{del: true}) }

func (t *jsTxn) put(key []byte, op jsOp) error {
	k := string(key)
	if _, ok := t.pending[k]; !ok {
		if len(t.pending) >= t.kv.maxMsgs {
			return fmt.Errorf("%w: %d messages in one atomic batch", errTxnFull, len(t.pending))
		}
		if len(t.pending) > 0 && t.size+len(op.value) > jsMaxTxnBytes {
			return fmt.Errorf("%w: %d bytes in one atomic batch", errTxnFull, t.size)
		}
		t.order = append(t.order, k)
	}
	t.pending[k] = op
	t.size += len(op.value)
	return nil
}

func (t *jsTxn) discard() { t.pending, t.order = nil, nil }

// commit publishes the transaction: one message alone, more as one atomic batch,
// fenced (jetstream_fence.go). An error after the request was sent (a timeout)
// leaves it unknown whether the batch was applied; the engine reports the write as
// failed.
func (t *jsTxn) commit() error {
	msgs := make([]*nats.Msg, 0, len(t.order))
	for _, k := range t.order {
		msgs = append(msgs, t.kv.message([]byte(k), t.pending[k]))
	}
	t.discard()
	if len(msgs) == 0 {
		return nil
	}
	if err := t.kv.lock.check(); err != nil {
		return err
	}
	return jsCommitErr(t.kv.publish(msgs))
}

// publish commits msgs under the fence (jetstream_fence.go), with an id on its
// first message (Nats-Msg-Id) so that it can be sent again when its outcome is
// unknown: the stream stores it at most once.
func (kv *jsKV) publish(msgs []*nats.Msg) error {
	kv.commitMu.Lock()
	defer kv.commitMu.Unlock()
	msgs[0].Header.Set(jetstream.MsgIDHeader, kv.commitID())
	return kv.send(msgs)
}

// send publishes msgs until the stream has them. A timeout, or no responder while
// the stream elects a leader, leaves the outcome unknown: send once more. A
// refusal for the last sequence while the fence is still ours, or an answer that
// the id is already stored, means an earlier attempt landed: resynchronise.
func (kv *jsKV) send(msgs []*nats.Msg) error {
	var err error
	unknown := 0
	for range 4 {
		err = kv.publishFenced(msgs)
		switch {
		case err == nil:
			return nil
		case alreadyStored(err):
			return kv.resync()
		case wrongLastSeq(err):
			if err := kv.refused(err); err != nil {
				return err
			}
		case unknownOutcome(err) && unknown == 0:
			unknown++
		default:
			return err
		}
	}
	return err
}

// commitID names one commit for the stream's duplicate window.
func (kv *jsKV) commitID() string {
	return kv.idPrefix + strconv.FormatUint(kv.commits.Add(1), 36)
}

func (kv *jsKV) publishFenced(msgs []*nats.Msg) error {
	ctx, cancel := kv.ctx()
	defer cancel()
	kv.expect(msgs[0])
	var seq uint64
	var err error
	if len(msgs) == 1 {
		var ack *jetstream.PubAck
		if ack, err = kv.js.PublishMsg(ctx, msgs[0]); err == nil {
			seq = ack.Sequence
			if ack.Duplicate {
				err = errAlreadyStored
			}
		}
	} else {
		seq, err = kv.publishBatch(ctx, msgs)
	}
	if err == nil {
		kv.last = seq
	}
	return err
}

var errAlreadyStored = errors.New("queue: jetstream commit already stored")

func alreadyStored(err error) bool {
	var apiErr *jetstream.APIError
	return errors.Is(err, errAlreadyStored) ||
		errors.As(err, &apiErr) && apiErr.ErrorCode == jsErrAtomicPublishDuplicate
}

// jsErrAtomicPublishDuplicate: an atomic batch whose message id the stream has.
const jsErrAtomicPublishDuplicate = 10201

func unknownOutcome(err error) bool {
	return errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nats.ErrTimeout) ||
		errors.Is(err, nats.ErrNoResponders) || errors.Is(err, jetstream.ErrNoStreamResponse)
}

func (kv *jsKV) message(key []byte, op jsOp) *nats.Msg {
	m := nats.NewMsg(kv.subject(key))
	if op.del {
		m.Header.Set(kvOpHeader, "DEL")
		m.Header.Set(jetstream.MsgTTLHeader, deleteMarkerTTL)
		return m
	}
	m.Data = op.value
	return m
}

// publishBatch publishes msgs as one atomic batch and returns the stream
// sequence of its last message. No ack is awaited before the commit: the batches
// are small, and a refused first message fails the commit all the same.
func (kv *jsKV) publishBatch(ctx context.Context, msgs []*nats.Msg) (uint64, error) {
	ack, err := jetstreamext.PublishMsgBatch(ctx, kv.js, msgs,
		jetstreamext.BatchFlowControl{AckFirst: false, AckTimeout: kv.timeout})
	if err != nil {
		return 0, err
	}
	return ack.Sequence, nil
}

func jsCommitErr(err error) error {
	if err != nil {
		return fmt.Errorf("queue: jetstream commit: %w", err)
	}
	return nil
}
