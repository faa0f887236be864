package bridge

import (
	"context"
	"sync"
)

// connSet holds the bridge's long-lived connections (WebSockets, waiting long
// polls) and owns the goroutines that serve them and settle what they sent. Its
// life is their context: the queue calls of sockets and answers, and their waits
// for the client's TCP acknowledgement. It ends when the bridge stops, or gives up
// waiting (shutdown_timeout): what is not acknowledged then stays queued.
type connSet struct {
	mu       sync.Mutex
	socks    map[*wsConn]struct{}
	polls    map[*poller]struct{}
	draining bool
	wg       sync.WaitGroup // sockets' readers and writers, polls, answers settling

	life context.Context
	end  context.CancelFunc
}

func newConnSet() *connSet {
	s := &connSet{socks: map[*wsConn]struct{}{}, polls: map[*poller]struct{}{}}
	s.life, s.end = context.WithCancel(context.Background())
	return s
}

// track registers a socket or poll unless the bridge is draining; the caller then
// owns one count of wg, given back by untrack.
func (s *connSet) track(w *wsConn, p *poller) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.draining {
		return false
	}
	if w != nil {
		s.socks[w] = struct{}{}
	}
	if p != nil {
		s.polls[p] = struct{}{}
	}
	s.wg.Add(1)
	return true
}

func (s *connSet) untrack(w *wsConn, p *poller) {
	s.mu.Lock()
	delete(s.socks, w)
	delete(s.polls, p)
	s.mu.Unlock()
	s.wg.Done()
}

// isDraining reports whether new connections are refused.
func (s *connSet) isDraining() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.draining
}

// drain refuses new connections, ends the waiting polls and returns the open
// sockets, for the caller to close.
func (s *connSet) drain() []*wsConn {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.draining = true
	socks := make([]*wsConn, 0, len(s.socks))
	for w := range s.socks {
		socks = append(socks, w)
	}
	for p := range s.polls {
		p.end(endDrain)
	}
	return socks
}

// abort closes every tracked socket at once.
func (s *connSet) abort() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for w := range s.socks {
		w.abort()
	}
}
