package client

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strings"
	"time"

	"github.com/gorilla/websocket"
)

// Mode is how Receive gets the channel's notifications.
type Mode int

// The modes (docs/channels.md §3, §4).
const (
	// Acknowledged: WebSocket subprotocol notifyrelay.ack.v1. Each notification
	// carries its seq and is acknowledged after the handler returned: at least
	// once across disconnects, server crashes and client crashes.
	Acknowledged Mode = iota
	// OMA: WebSocket in the standard OMA mode. No seq; the server counts a frame
	// delivered once the client's TCP stack acknowledged it.
	OMA
	// LongPoll: acknowledged long polling of a LongPolling channel (POST
	// channelURL?ack=N, our extension). Each notification carries its seq, and
	// the next poll acknowledges what the handler accepted: at least once, as in
	// Acknowledged.
	LongPoll
	// OMALongPoll: plain OMA long polling of a LongPolling channel, for servers
	// without acknowledged long polling. No seq; an answer counts as delivered
	// once fully received.
	OMALongPoll
)

// Notification is one notification document.
type Notification struct {
	Seq         uint64 // Acknowledged and LongPoll: the channel's sequence number; 0 in the OMA modes
	PrevSeq     uint64 // Acknowledged and LongPoll: the seq of the notification before it (0: none or unknown)
	ContentType string // application/json or application/xml
	Root        string // local name of the document's root, e.g. chatSessionDataNotification
	Body        []byte // the document as the producer POSTed it; the handler may keep it
}

// Gap reports notifications the receiver never got: seqs From through To.
type Gap struct{ From, To uint64 }

// State is where Receive is.
type State int

// The states, in the order a connection goes through them.
const (
	Connecting   State = iota // dialling, or the first long poll is out
	Connected                 // the socket is open, or a long poll was answered
	Disconnected              // lost; Err says why, it retries after Retry
	Stopped                   // Receive returned; Err is what it returned (nil: ctx ended)
)

func (m Mode) String() string {
	return [...]string{"acknowledged", "OMA", "long poll", "OMA long poll"}[m]
}

// polls reports whether m long-polls (a LongPolling channel) rather than holding a WebSocket.
func (m Mode) polls() bool { return m == LongPoll || m == OMALongPoll }

// seqs reports whether m's notifications carry seqs and are acknowledged after the handler.
func (m Mode) seqs() bool { return m == Acknowledged || m == LongPoll }

func (s State) String() string {
	return [...]string{"connecting", "connected", "disconnected", "stopped"}[s]
}

// StateChange is reported to ReceiveOptions.OnState.
type StateChange struct {
	State State
	Err   error
	Retry time.Duration // Disconnected: the wait before the next attempt
}

// Backoff bounds the wait between reconnects: it doubles from Min to Max, each
// wait drawn between half of it and all of it, so clients a restart dropped do
// not come back all at once.
type Backoff struct{ Min, Max time.Duration }

// ReceiveOptions configures Receive. Handler is required.
type ReceiveOptions struct {
	Mode Mode
	// Handler gets each notification, one at a time, in the channel's order. In
	// Acknowledged and LongPoll modes a notification is acknowledged once Handler
	// returned nil; an error leaves it unacknowledged and Receive reconnects or
	// polls again (after the backoff), so it comes again. In the OMA modes the
	// server already counted it delivered: an error ends Receive with it.
	Handler func(ctx context.Context, n Notification) error
	// LastSeq (Acknowledged and LongPoll) is the last seq the handler processed
	// before, as the caller persisted it: anything up to it is acknowledged and
	// skipped, and gaps are counted from it. 0 for a new channel.
	LastSeq uint64
	OnGap   func(Gap)         // Acknowledged and LongPoll: notifications never received
	OnState func(StateChange) // connection state changes
	Window  int               // Acknowledged: ?window= (0: the server's channels.window)
	Backoff Backoff           // default 250 ms to 30 s
	// RenewEvery is how often a connCheck restarts the channel's lifetime on a
	// WebSocket (a long poll restarts it by itself). Default: a third of the
	// channel's Lifetime, at most 60 s.
	RenewEvery  time.Duration
	ReadTimeout time.Duration     // a socket silent this long is dropped (the server pings every 50 s); default 90 s
	PollTimeout time.Duration     // the longest a long poll may take (server: channels.poll_timeout); default 2 min
	Dialer      *websocket.Dialer // default: websocket.DefaultDialer's settings
}

// Receive gets the channel's notifications until ctx ends (then it returns nil),
// reconnecting after any failure that a retry can cure. It returns an error only
// when it cannot go on: the channel is gone (errors.Is(err, ErrChannelGone)), the
// token is refused (a *StatusError), the server has no acknowledged long polling
// (ErrNoAckedLongPoll), or, in the OMA modes, the handler failed.
func (c *Client) Receive(ctx context.Context, ch Channel, o ReceiveOptions) error {
	if o.Handler == nil {
		return errors.New("client: ReceiveOptions.Handler is required")
	}
	if polled := strings.HasPrefix(ch.ChannelURL, "http"); polled != o.Mode.polls() {
		return fmt.Errorf("client: mode %v does not fit the channel's URL (LongPoll and OMALongPoll need a LongPolling channel, the others a WebSockets one)", o.Mode)
	}
	r := &receiver{c: c, ch: ch, o: withDefaults(o, ch), last: o.LastSeq}
	err := r.run(ctx)
	r.state(Stopped, err, 0)
	return err
}

func withDefaults(o ReceiveOptions, ch Channel) ReceiveOptions {
	if o.Backoff.Min <= 0 {
		o.Backoff.Min = 250 * time.Millisecond
	}
	if o.Backoff.Max < o.Backoff.Min {
		o.Backoff.Max = max(30*time.Second, o.Backoff.Min)
	}
	if o.RenewEvery <= 0 {
		o.RenewEvery = time.Minute
		if ch.Lifetime > 0 {
			o.RenewEvery = max(min(o.RenewEvery, ch.Lifetime/3), time.Second)
		}
	}
	if o.ReadTimeout <= 0 {
		o.ReadTimeout = 90 * time.Second
	}
	if o.PollTimeout <= 0 {
		o.PollTimeout = 2 * time.Minute
	}
	if o.Dialer == nil {
		d := *websocket.DefaultDialer
		o.Dialer = &d
	}
	return o
}

// receiver is one Receive call.
type receiver struct {
	c    *Client
	ch   Channel
	o    ReceiveOptions
	last uint64 // Acknowledged and LongPoll: the last seq handled
}

// run connects again and again until ctx ends or a fatal error.
func (r *receiver) run(ctx context.Context) error {
	for attempt := 0; ; attempt++ {
		r.state(Connecting, nil, 0)
		began := time.Now()
		progress, err := r.session(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if fatal(err) {
			return err
		}
		if progress || time.Since(began) > r.o.Backoff.Max {
			attempt = 0
		}
		wait := r.o.Backoff.delay(attempt)
		r.state(Disconnected, err, wait)
		if !sleep(ctx, wait) {
			return nil
		}
	}
}

// session is one connection (or one run of long polls) until it fails; progress
// reports whether it handled anything.
func (r *receiver) session(ctx context.Context) (bool, error) {
	if r.o.Mode.polls() {
		return r.pollSession(ctx)
	}
	return r.wsSession(ctx)
}

// handlerError is a Handler's failure; it ends Receive in the OMA modes.
type handlerError struct {
	err   error
	retry bool
}

func (e *handlerError) Error() string { return "notification handler: " + e.err.Error() }
func (e *handlerError) Unwrap() error { return e.err }

func fatal(err error) bool {
	var he *handlerError
	if errors.As(err, &he) {
		return !he.retry
	}
	if errors.Is(err, ErrNoAckedLongPoll) {
		return true
	}
	var se *StatusError
	if !errors.As(err, &se) {
		return false
	}
	switch se.Status {
	case http.StatusBadRequest, http.StatusUnauthorized, http.StatusForbidden, http.StatusNotFound, http.StatusMethodNotAllowed, http.StatusNotAcceptable:
		return true
	}
	return false
}

func (r *receiver) state(s State, err error, retry time.Duration) {
	if r.o.OnState != nil {
		r.o.OnState(StateChange{State: s, Err: err, Retry: retry})
	}
}

// delay is the wait before reconnect attempt n (0-based).
func (b Backoff) delay(n int) time.Duration {
	d := b.Min
	for i := 0; i < n && d < b.Max; i++ {
		d *= 2
	}
	d = min(d, b.Max)
	return d/2 + rand.N(d/2+1)
}

// sleep waits d or until ctx ends; it reports whether ctx is still live.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
