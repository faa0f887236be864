package bridge

import (
	"notifyrelay/destkind"

	"container/heap"
	"sort"
	"sync"
	"sync/atomic"
	"time"
)

// state is what is stored of a channel (record "nc/ch/<id>", JSON).
type state struct {
	ID               string    `json:"id"`
	User             string    `json:"user"`
	Type             string    `json:"type"`
	Format           string    `json:"format"` // XML or JSON: the create request's
	Correlator       string    `json:"correlator,omitempty"`
	AppTag           string    `json:"appTag,omitempty"`
	Fingerprint      string    `json:"fingerprint,omitempty"` // of the create request, for clientCorrelator
	MaxNotifications int       `json:"maxNotifications"`
	Lifetime         int       `json:"lifetime"` // seconds granted; each refresh restarts it
	Expires          time.Time `json:"expires"`
	Token            string    `json:"token"` // the callbackURL's capability
}

// channel is one live channel: its state (guarded by hub.mu) and its consumers.
type channel struct {
	st      state
	heapIdx int

	// life is held for reading while something is appended to the channel's queue
	// and for writing while the channel is deleted, so nothing lands in a deleted
	// channel's queue.
	life sync.RWMutex
	gone atomic.Bool // set under life's write lock

	mu   sync.Mutex // guards the consumers below
	conn *wsConn
	poll *poller
	// sending is closed once the long-poll answer being written is settled
	// (acknowledged, or failed and left queued); nil when none is in flight.
	sending chan struct{}
	// ackSent is the highest seq an acknowledged long-poll answer sent: acks are
	// capped at it (pollack.go).
	ackSent atomic.Uint64
}

func (c *channel) dest() string { return destkind.ChannelPrefix + c.st.ID }

// hub indexes the live channels and orders them by expiry (one heap, one timer).
type hub struct {
	mu      sync.Mutex
	byID    map[string]*channel
	byTok   map[string]*channel
	byCorr  map[string]*channel // user + "\x00" + clientCorrelator
	perUser map[string]int      // live channels by user, for limits.max_channels_per_user
	expires expiryHeap
	kick    chan struct{} // capacity 1: the earliest expiry changed
}

func newHub() *hub {
	return &hub{byID: map[string]*channel{}, byTok: map[string]*channel{}, byCorr: map[string]*channel{}, perUser: map[string]int{},
		kick: make(chan struct{}, 1)}
}

func corrKey(user, corr string) string { return user + "\x00" + corr }

func (h *hub) add(c *channel) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.byID[c.st.ID] = c
	h.byTok[c.st.Token] = c
	h.perUser[c.st.User]++
	if c.st.Correlator != "" {
		h.byCorr[corrKey(c.st.User, c.st.Correlator)] = c
	}
	heap.Push(&h.expires, c)
	h.nudge()
}

// remove drops c; false if it was already gone.
func (h *hub) remove(c *channel) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.byID[c.st.ID] != c {
		return false
	}
	delete(h.byID, c.st.ID)
	delete(h.byTok, c.st.Token)
	if h.perUser[c.st.User]--; h.perUser[c.st.User] <= 0 {
		delete(h.perUser, c.st.User)
	}
	if c.st.Correlator != "" && h.byCorr[corrKey(c.st.User, c.st.Correlator)] == c {
		delete(h.byCorr, corrKey(c.st.User, c.st.Correlator))
	}
	heap.Remove(&h.expires, c.heapIdx)
	return true
}

func (h *hub) get(id string) *channel {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.byID[id]
}

func (h *hub) byToken(tok string) *channel {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.byTok[tok]
}

func (h *hub) byCorrelator(user, corr string) *channel {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.byCorr[corrKey(user, corr)]
}

// snapshot returns a copy of c's state.
func (h *hub) snapshot(c *channel) state {
	h.mu.Lock()
	defer h.mu.Unlock()
	return c.st
}

// refresh restarts c's lifetime (with a new granted value when lifetime > 0) and
// returns the new state.
func (h *hub) refresh(c *channel, lifetime int, now time.Time) state {
	h.mu.Lock()
	defer h.mu.Unlock()
	if lifetime > 0 {
		c.st.Lifetime = lifetime
	}
	c.st.Expires = now.Add(time.Duration(c.st.Lifetime) * time.Second)
	if h.byID[c.st.ID] == c {
		heap.Fix(&h.expires, c.heapIdx)
		h.nudge()
	}
	return c.st
}

// list returns the states of user's channels ordered by id.
func (h *hub) list(user string) []state {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []state
	for _, c := range h.byID {
		if c.st.User == user {
			out = append(out, c.st)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// earliest returns the channel that expires first, or nil.
func (h *hub) earliest() (*channel, time.Time) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.expires) == 0 {
		return nil, time.Time{}
	}
	return h.expires[0], h.expires[0].st.Expires
}

// owned is how many live channels user has.
func (h *hub) owned(user string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.perUser[user]
}

// nudge wakes the expiry loop; h.mu is held.
func (h *hub) nudge() {
	select {
	case h.kick <- struct{}{}:
	default:
	}
}

// expiryHeap is a min-heap of channels by expiry; each channel knows its index.
type expiryHeap []*channel

func (e expiryHeap) Len() int           { return len(e) }
func (e expiryHeap) Less(i, j int) bool { return e[i].st.Expires.Before(e[j].st.Expires) }
func (e expiryHeap) Swap(i, j int) {
	e[i], e[j] = e[j], e[i]
	e[i].heapIdx, e[j].heapIdx = i, j
}
func (e *expiryHeap) Push(x any) {
	c := x.(*channel)
	c.heapIdx = len(*e)
	*e = append(*e, c)
}
func (e *expiryHeap) Pop() any {
	old := *e
	c := old[len(old)-1]
	old[len(old)-1] = nil // the backing array must not keep an expired channel alive
	*e = old[:len(old)-1]
	return c
}
