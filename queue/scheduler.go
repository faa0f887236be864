package queue

import (
	"container/heap"
	"context"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/google/btree"
)

// scheduler is the in-memory picture of every destination: its cursor and index
// (which log value holds each queued entry), when it is due, and who leases it, plus
// the live-entry count of every log value. The writer publishes each commit's effects
// into it; Ack moves a cursor here without touching storage (cursor.go). It holds
// O(queued entries) small refs, never entry data.
//
// A non-empty, unleased destination is in exactly one place: the ready set (due now,
// ordered by id so Next can find a prefix in O(log n)) or the timer heap (due later,
// one timer armed for the earliest, as nats' trackPending does). Next takes from the
// ready set round-robin per prefix; a destination that becomes ready while Next
// callers wait is handed straight to one of them through its channel.
type scheduler struct {
	mu       sync.Mutex
	dests    map[string]*destState
	ready    *btree.BTreeG[string]
	timers   dueHeap
	timer    *time.Timer
	waiters  map[string][]*waiter // blocked Next callers by prefix, oldest first
	nwaiters int
	watchers map[string]map[*watcher]struct{}
	cursor   map[string]string // last destination handed out per prefix
	closed   bool

	logs   map[uint64]logLive  // live entries per log value
	free   []uint64            // log values with no live entry, to delete at the next checkpoint
	freed  int64               // bytes of log values freed since the last compaction
	dirty  map[string]struct{} // destinations whose cursor moved since the last checkpoint
	onFree func(log uint64)    // drops a freed log value from the read cache
}

type destState struct {
	name       string
	since      uint64     // log id that created this incarnation
	head, next uint64     // queued entries are the seqs [head, next)
	refs       []entryRef // refs[i] holds seq head+i
	attempts   int        // Retry calls on the head
	lastError  string
	dueAt      time.Time // set by Retry; zero: due now
	leased     bool
	gone       bool // deleted while leased: kept until Release so the lease stays unique
	inReady    bool
	heapIdx    int // index in timers, -1 when absent
}

func (st *destState) depth() int { return int(st.next - st.head) }

func (st *destState) meta() destMeta {
	return destMeta{Head: st.head, Since: st.since, Attempts: st.attempts, LastError: st.lastError}
}

// destView is what the writer needs of a destination to plan a request.
type destView struct {
	name              string
	exists            bool
	deleted           bool // by an earlier request of the batch being planned
	since, head, next uint64
	attempts          int
	lastError         string
}

type waiter struct {
	prefix string
	ch     chan string // gets one leased destination, or is closed by close
}

// watcher is one Watch (ch) or WatchFunc (fn) of a destination.
type watcher struct {
	ch chan struct{}
	fn func()
}

// maxCursors bounds the round-robin memory when callers use many distinct prefixes.
const maxCursors = 4096

func newScheduler() *scheduler {
	return &scheduler{
		dests:    make(map[string]*destState),
		ready:    btree.NewG(32, func(a, b string) bool { return a < b }),
		waiters:  make(map[string][]*waiter),
		watchers: make(map[string]map[*watcher]struct{}),
		cursor:   make(map[string]string),
		logs:     make(map[uint64]logLive),
		dirty:    make(map[string]struct{}),
		onFree:   func(uint64) {},
	}
}

// snapshot returns the published state of dest for the writer to build on.
func (s *scheduler) snapshot(dest string) destView {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.dests[dest]
	if st == nil || st.gone {
		return destView{name: dest}
	}
	return destView{name: dest, exists: true, since: st.since, head: st.head, next: st.next,
		attempts: st.attempts, lastError: st.lastError}
}

func (s *scheduler) removeLocked(st *destState) {
	if st == nil {
		return
	}
	s.unscheduleLocked(st)
	if !st.leased {
		delete(s.dests, st.name)
		return
	}
	st.gone, st.dueAt = true, time.Time{}
	st.since, st.head, st.next, st.refs, st.attempts, st.lastError = 0, 0, 0, nil, 0, ""
}

// rescheduleLocked puts st where its state says: nowhere, the heap, or ready.
func (s *scheduler) rescheduleLocked(st *destState) {
	if st.inReady && !st.leased && st.depth() > 0 && !s.closed && st.dueAt.IsZero() {
		return // ready and due now, where it stays: spares two tree operations per append
	}
	s.unscheduleLocked(st)
	if st.leased || st.depth() == 0 || s.closed {
		return
	}
	if time.Until(st.dueAt) > 0 {
		heap.Push(&s.timers, st)
		s.armLocked()
		return
	}
	s.makeReadyLocked(st)
}

func (s *scheduler) unscheduleLocked(st *destState) {
	if st.inReady {
		s.ready.Delete(st.name)
		st.inReady = false
	}
	if st.heapIdx >= 0 {
		heap.Remove(&s.timers, st.heapIdx)
	}
}

func (s *scheduler) makeReadyLocked(st *destState) {
	if w := s.popWaiterLocked(st.name); w != nil {
		st.leased = true
		w.ch <- st.name // capacity 1, and each waiter is popped once
		return
	}
	s.ready.ReplaceOrInsert(st.name)
	st.inReady = true
}

// armLocked points the one timer at the earliest deadline.
func (s *scheduler) armLocked() {
	if len(s.timers) == 0 {
		return
	}
	d := time.Until(s.timers[0].dueAt)
	if s.timer == nil {
		s.timer = time.AfterFunc(d, s.onTimer)
		return
	}
	s.timer.Reset(d)
}

func (s *scheduler) onTimer() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	now := time.Now()
	for len(s.timers) > 0 && !s.timers[0].dueAt.After(now) {
		st := heap.Pop(&s.timers).(*destState)
		s.makeReadyLocked(st)
	}
	s.armLocked()
}

// next implements Scheduler.Next.
func (s *scheduler) next(ctx context.Context, prefix string) (string, error) {
	if err := ctx.Err(); err != nil {
		return "", err
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return "", ErrClosed
	}
	if name, ok := s.takeReadyLocked(prefix); ok {
		s.mu.Unlock()
		return name, nil
	}
	w := &waiter{prefix: prefix, ch: make(chan string, 1)}
	s.waiters[prefix] = append(s.waiters[prefix], w)
	s.nwaiters++
	s.mu.Unlock()
	return s.wait(ctx, w)
}

func (s *scheduler) wait(ctx context.Context, w *waiter) (string, error) {
	select {
	case name, ok := <-w.ch:
		if !ok {
			return "", ErrClosed
		}
		return name, nil
	case <-ctx.Done():
	}
	s.mu.Lock()
	removed := s.removeWaiterLocked(w)
	s.mu.Unlock()
	if !removed { // a destination was handed over meanwhile: give it back
		if name, ok := <-w.ch; ok {
			s.release(name)
		}
	}
	return "", ctx.Err()
}

// takeReadyLocked leases the first ready destination with prefix after the last one
// handed out for that prefix, wrapping around: every ready destination gets its turn.
func (s *scheduler) takeReadyLocked(prefix string) (string, bool) {
	from := prefix
	if c, ok := s.cursor[prefix]; ok {
		from = c + "\x00"
	}
	name, ok := s.firstReadyLocked(from, prefix)
	if !ok && from != prefix {
		name, ok = s.firstReadyLocked(prefix, prefix)
	}
	if !ok {
		return "", false
	}
	st := s.dests[name]
	s.unscheduleLocked(st)
	st.leased = true
	if len(s.cursor) >= maxCursors {
		clear(s.cursor)
	}
	s.cursor[prefix] = name
	return name, true
}

func (s *scheduler) firstReadyLocked(from, prefix string) (name string, ok bool) {
	s.ready.AscendGreaterOrEqual(from, func(item string) bool {
		name, ok = item, strings.HasPrefix(item, prefix)
		return false
	})
	return name, ok
}

// popWaiterLocked removes and returns the oldest waiter whose prefix matches dest. It
// looks up either each waiting prefix or each prefix of dest, whichever is fewer.
func (s *scheduler) popWaiterLocked(dest string) *waiter {
	if s.nwaiters == 0 {
		return nil
	}
	if len(s.waiters) <= len(dest)+1 {
		for p := range s.waiters {
			if strings.HasPrefix(dest, p) {
				return s.popPrefixLocked(p)
			}
		}
		return nil
	}
	for i := 0; i <= len(dest); i++ {
		if _, ok := s.waiters[dest[:i]]; ok {
			return s.popPrefixLocked(dest[:i])
		}
	}
	return nil
}

func (s *scheduler) popPrefixLocked(p string) *waiter {
	list := s.waiters[p]
	w := list[0]
	if len(list) == 1 {
		delete(s.waiters, p)
	} else {
		s.waiters[p] = list[1:]
	}
	s.nwaiters--
	return w
}

func (s *scheduler) removeWaiterLocked(w *waiter) bool {
	list := s.waiters[w.prefix]
	for i, x := range list {
		if x != w {
			continue
		}
		list = append(list[:i:i], list[i+1:]...)
		if len(list) == 0 {
			delete(s.waiters, w.prefix)
		} else {
			s.waiters[w.prefix] = list
		}
		s.nwaiters--
		return true
	}
	return false
}

// release implements Scheduler.Release.
func (s *scheduler) release(dest string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.dests[dest]
	if st == nil || !st.leased {
		return
	}
	st.leased = false
	if st.gone {
		delete(s.dests, dest)
		return
	}
	s.rescheduleLocked(st)
}

// watch implements Scheduler.Watch.
func (s *scheduler) watch(dest string) (<-chan struct{}, func()) {
	w := &watcher{ch: make(chan struct{}, 1)}
	return w.ch, s.addWatcher(dest, w)
}

func (s *scheduler) unwatch(dest string, w *watcher) {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := s.watchers[dest]
	delete(m, w)
	if len(m) == 0 {
		delete(s.watchers, dest)
	}
}

func (s *scheduler) signalLocked(dest string) {
	for w := range s.watchers[dest] {
		w.signal()
	}
}

// close wakes every blocked Next with ErrClosed and every watcher, and stops the timer.
func (s *scheduler) close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	s.closed = true
	for _, list := range s.waiters {
		for _, w := range list {
			close(w.ch)
		}
	}
	clear(s.waiters)
	s.nwaiters = 0
	if s.timer != nil {
		s.timer.Stop()
	}
	for dest := range s.watchers {
		s.signalLocked(dest)
	}
}

// dests implements Stats.Dests, sorted by id.
func (s *scheduler) destList(prefix string) []DestStats {
	s.mu.Lock()
	var out []DestStats
	for name, st := range s.dests {
		if st.depth() > 0 && strings.HasPrefix(name, prefix) {
			out = append(out, s.statsLocked(st))
		}
	}
	s.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].Dest < out[j].Dest })
	return out
}

func (s *scheduler) destStats(dest string) DestStats {
	s.mu.Lock()
	defer s.mu.Unlock()
	if st := s.dests[dest]; st != nil && st.depth() > 0 {
		return s.statsLocked(st)
	}
	return DestStats{Dest: dest}
}

func (s *scheduler) statsLocked(st *destState) DestStats {
	ds := DestStats{Dest: st.name, Depth: st.depth(), Oldest: s.oldestLocked(st),
		HeadAttempts: st.attempts, Leased: st.leased}
	if time.Until(st.dueAt) > 0 {
		ds.DueAt = st.dueAt
	}
	return ds
}

// dueHeap orders waiting destinations by due time.
type dueHeap []*destState

func (h dueHeap) Len() int           { return len(h) }
func (h dueHeap) Less(i, j int) bool { return h[i].dueAt.Before(h[j].dueAt) }
func (h dueHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].heapIdx, h[j].heapIdx = i, j
}

func (h *dueHeap) Push(x any) {
	st := x.(*destState)
	st.heapIdx = len(*h)
	*h = append(*h, st)
}

func (h *dueHeap) Pop() any {
	old := *h
	st := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	st.heapIdx = -1
	return st
}
