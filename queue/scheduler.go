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

// scheduler is the in-memory picture of every destination: its durable meta (a copy,
// published by the writer after each commit), when it is due, and who leases it. It
// holds O(destinations) memory and never touches entries.
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
}

type destState struct {
	name    string
	meta    destMeta
	oldest  time.Time // Enqueued of the head
	dueAt   time.Time // set by Retry; zero: due now
	leased  bool
	gone    bool // deleted while leased: kept until Release so the lease stays unique
	inReady bool
	heapIdx int // index in timers, -1 when absent
}

// destView is a destination as the writer sees and changes it during one batch; the
// scheduler applies it after the commit.
type destView struct {
	name      string
	meta      destMeta
	oldest    time.Time
	exists    bool // has meta
	headMoved bool // head acked or dead-lettered: the new head is due now
	retried   bool // Retry set retryAt on the current head
	retryAt   time.Time
	appended  bool
	deleted   bool
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
	return destView{name: dest, meta: st.meta, oldest: st.oldest, exists: true}
}

// publish applies committed changes and wakes whoever waits on them.
func (s *scheduler) publish(views map[string]*destView) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, v := range views {
		s.applyLocked(v)
	}
}

func (s *scheduler) applyLocked(v *destView) {
	st := s.dests[v.name]
	if v.appended || v.deleted {
		s.signalLocked(v.name)
	}
	if !v.exists {
		s.removeLocked(st)
		return
	}
	if st == nil {
		st = &destState{name: v.name, heapIdx: -1}
		s.dests[v.name] = st
	}
	st.gone = false
	st.meta, st.oldest = v.meta, v.oldest
	if v.headMoved {
		st.dueAt = time.Time{}
	}
	if v.retried {
		st.dueAt = v.retryAt
	}
	s.rescheduleLocked(st)
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
	st.gone, st.meta, st.oldest, st.dueAt = true, destMeta{}, time.Time{}, time.Time{}
}

// rescheduleLocked puts st where its state says: nowhere, the heap, or ready.
func (s *scheduler) rescheduleLocked(st *destState) {
	s.unscheduleLocked(st)
	if st.leased || st.meta.depth() == 0 || s.closed {
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
		if st.meta.depth() > 0 && strings.HasPrefix(name, prefix) {
			out = append(out, st.stats())
		}
	}
	s.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].Dest < out[j].Dest })
	return out
}

func (s *scheduler) destStats(dest string) DestStats {
	s.mu.Lock()
	defer s.mu.Unlock()
	if st := s.dests[dest]; st != nil && st.meta.depth() > 0 {
		return st.stats()
	}
	return DestStats{Dest: dest}
}

func (st *destState) stats() DestStats {
	ds := DestStats{Dest: st.name, Depth: st.meta.depth(), Oldest: st.oldest,
		HeadAttempts: st.meta.Attempts, Leased: st.leased}
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
