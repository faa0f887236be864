package queue

import "sync"

// FuncWatcher is an optional capability of an engine: Watch without a channel, for
// consumers that keep no goroutine while idle (thousands of idle WebSockets).
type FuncWatcher interface {
	// WatchFunc calls fn whenever an entry is appended to dest or dest is deleted,
	// and once when the queue closes; stop ends the watch. fn runs on the queue's
	// writer with the scheduler locked: it must not block nor call the queue (hand
	// the work to a goroutine). Calls are not coalesced but never concurrent for
	// one watch; after stop returns, fn is not called again.
	WatchFunc(dest string, fn func()) (stop func())
}

// WatchFunc implements FuncWatcher.
func (e *engine) WatchFunc(dest string, fn func()) func() { return e.sched.watchFunc(dest, fn) }

// watchFunc implements FuncWatcher.WatchFunc.
func (s *scheduler) watchFunc(dest string, fn func()) func() {
	return s.addWatcher(dest, &watcher{fn: fn})
}

// addWatcher registers w on dest (signalled at once if the queue is closed) and
// returns its stop function.
func (s *scheduler) addWatcher(dest string, w *watcher) func() {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := s.watchers[dest]
	if m == nil {
		m = make(map[*watcher]struct{})
		s.watchers[dest] = m
	}
	m[w] = struct{}{}
	if s.closed {
		w.signal()
	}
	return sync.OnceFunc(func() { s.unwatch(dest, w) })
}

// signal wakes w; s.mu is held.
func (w *watcher) signal() {
	if w.fn != nil {
		w.fn()
		return
	}
	select {
	case w.ch <- struct{}{}:
	default: // one pending signal is enough: the watcher reads everything
	}
}
