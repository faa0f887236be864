package loadtest

import (
	"math/bits"
	"sync"
)

// Tracker checks delivery per flow. A stream is one producer's numbered sequence
// (an operator destination, a chat changer); a flow is one receiver's view of one
// stream. Every accepted sequence number of a stream must arrive exactly once, in
// order, on each of the stream's flows. Safe for concurrent use.
type Tracker struct {
	mu      sync.RWMutex
	streams map[string]*stream
	flows   map[flowKey]*flow
	kinds   map[string]string // receiver → its kind (webhook, websocket-ack, …)
}

type flowKey struct{ receiver, stream string }

type stream struct {
	mu       sync.Mutex
	accepted bitset
	epochs   []uint16 // by seq: the server life that accepted it (see Epochs)
	flows    []*flow
}

type flow struct {
	mu       sync.Mutex
	kind     string
	received bitset
	max      int // highest seq seen, 0 = none
	dups     int64
	dupsIn   []int64 // by epoch of arrival
	ooo      int64
}

// Arrival is what the tracker makes of one received notification.
type Arrival int

// The outcomes of Receive.
const (
	First      Arrival = iota // first receipt, in order
	OutOfOrder                // first receipt, but a later seq already came
	Duplicate                 // seen before on this flow
	Unexpected                // no such flow
)

// NewTracker returns an empty tracker.
func NewTracker() *Tracker {
	return &Tracker{streams: map[string]*stream{}, flows: map[flowKey]*flow{}, kinds: map[string]string{}}
}

// SetKind names the kind of receiver (before Expect), for counts by kind.
func (t *Tracker) SetKind(receiver, kind string) {
	t.mu.Lock()
	t.kinds[receiver] = kind
	t.mu.Unlock()
}

// Expect declares that receiver must get every accepted notification of streamID.
func (t *Tracker) Expect(receiver, streamID string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	s := t.streams[streamID]
	if s == nil {
		s = &stream{}
		t.streams[streamID] = s
	}
	k := flowKey{receiver, streamID}
	if t.flows[k] == nil {
		f := &flow{kind: t.kinds[receiver]}
		t.flows[k] = f
		s.flows = append(s.flows, f)
	}
}

// Accepted records that the server acknowledged seq of streamID (seq ≥ 1).
func (t *Tracker) Accepted(streamID string, seq int) { t.AcceptedIn(streamID, seq, 0) }

// AcceptedIn is Accepted by the server in its life epoch (0 before the first kill,
// k after the k-th).
func (t *Tracker) AcceptedIn(streamID string, seq, epoch int) {
	t.mu.RLock()
	s := t.streams[streamID]
	t.mu.RUnlock()
	if s == nil {
		return
	}
	s.mu.Lock()
	s.accepted.set(seq)
	for seq >= len(s.epochs) {
		s.epochs = append(s.epochs, 0)
	}
	s.epochs[seq] = uint16(epoch)
	s.mu.Unlock()
}

// Receive records that receiver got seq of streamID.
func (t *Tracker) Receive(receiver, streamID string, seq int) Arrival {
	return t.ReceiveIn(receiver, streamID, seq, 0)
}

// ReceiveIn is Receive during the server's life epoch (a duplicate is counted
// against it).
func (t *Tracker) ReceiveIn(receiver, streamID string, seq, epoch int) Arrival {
	t.mu.RLock()
	f := t.flows[flowKey{receiver, streamID}]
	t.mu.RUnlock()
	if f == nil || seq < 1 {
		return Unexpected
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.received.has(seq) {
		f.dups++
		for epoch >= len(f.dupsIn) {
			f.dupsIn = append(f.dupsIn, 0)
		}
		f.dupsIn[epoch]++
		return Duplicate
	}
	f.received.set(seq)
	if seq < f.max {
		f.ooo++
		return OutOfOrder
	}
	f.max = seq
	return First
}

// Counts sums the tracker's findings.
type Counts struct {
	Expected   int64 `json:"expected"`   // accepted × receivers
	Received   int64 `json:"received"`   // of those, how many arrived
	Lost       int64 `json:"lost"`       // expected but not (yet) received
	Duplicates int64 `json:"duplicates"` // extra receipts
	OutOfOrder int64 `json:"outOfOrder"` // receipts after a later seq of the same flow
	Flows      int   `json:"flows"`
}

// Count compares what was accepted with what each flow received.
func (t *Tracker) Count() Counts {
	t.mu.RLock()
	defer t.mu.RUnlock()
	c := Counts{Flows: len(t.flows)}
	for _, s := range t.streams {
		s.mu.Lock()
		for _, f := range s.flows {
			f.mu.Lock()
			exp, got := s.accepted.count(), s.accepted.intersect(&f.received)
			c.Expected += exp
			c.Received += got
			c.Lost += exp - got
			c.Duplicates += f.dups
			c.OutOfOrder += f.ooo
			f.mu.Unlock()
		}
		s.mu.Unlock()
	}
	return c
}

// KindCounts are one receiver kind's figures.
type KindCounts struct {
	Expected   int64 `json:"expected"`
	Lost       int64 `json:"lost"`
	Duplicates int64 `json:"duplicates"`
}

// Epochs splits the findings by server life, for runs that kill the server:
// row e holds, per receiver kind, what was accepted in epoch e (and how much of it
// never arrived) and the duplicates that arrived in epoch e. Rows 0…epochs.
func (t *Tracker) Epochs(epochs int) []map[string]KindCounts {
	rows := make([]map[string]KindCounts, epochs+1)
	for i := range rows {
		rows[i] = map[string]KindCounts{}
	}
	t.mu.RLock()
	defer t.mu.RUnlock()
	for _, s := range t.streams {
		s.mu.Lock()
		for _, f := range s.flows {
			f.mu.Lock()
			s.addTo(rows, f)
			f.mu.Unlock()
		}
		s.mu.Unlock()
	}
	return rows
}

// addTo adds flow f of s to rows; the caller holds both locks.
func (s *stream) addTo(rows []map[string]KindCounts, f *flow) {
	for seq := range s.epochs {
		if !s.accepted.has(seq) {
			continue
		}
		e := min(int(s.epochs[seq]), len(rows)-1)
		c := rows[e][f.kind]
		c.Expected++
		if !f.received.has(seq) {
			c.Lost++
		}
		rows[e][f.kind] = c
	}
	for e, n := range f.dupsIn {
		e = min(e, len(rows)-1)
		c := rows[e][f.kind]
		c.Duplicates += n
		rows[e][f.kind] = c
	}
}

// bitset is a growable set of small positive ints.
type bitset struct{ w []uint64 }

func (b *bitset) set(i int) {
	for i/64 >= len(b.w) {
		b.w = append(b.w, 0)
	}
	b.w[i/64] |= 1 << (i % 64)
}

func (b *bitset) has(i int) bool {
	return i/64 < len(b.w) && b.w[i/64]&(1<<(i%64)) != 0
}

func (b *bitset) count() int64 {
	var n int64
	for _, w := range b.w {
		n += int64(bits.OnesCount64(w))
	}
	return n
}

func (b *bitset) intersect(o *bitset) int64 {
	var n int64
	for i := 0; i < len(b.w) && i < len(o.w); i++ {
		n += int64(bits.OnesCount64(b.w[i] & o.w[i]))
	}
	return n
}
