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
}

type flowKey struct{ receiver, stream string }

type stream struct {
	mu       sync.Mutex
	accepted bitset
	flows    []*flow
}

type flow struct {
	mu       sync.Mutex
	received bitset
	max      int // highest seq seen, 0 = none
	dups     int64
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
	return &Tracker{streams: map[string]*stream{}, flows: map[flowKey]*flow{}}
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
		f := &flow{}
		t.flows[k] = f
		s.flows = append(s.flows, f)
	}
}

// Accepted records that the server acknowledged seq of streamID (seq ≥ 1).
func (t *Tracker) Accepted(streamID string, seq int) {
	t.mu.RLock()
	s := t.streams[streamID]
	t.mu.RUnlock()
	if s == nil {
		return
	}
	s.mu.Lock()
	s.accepted.set(seq)
	s.mu.Unlock()
}

// Receive records that receiver got seq of streamID.
func (t *Tracker) Receive(receiver, streamID string, seq int) Arrival {
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
