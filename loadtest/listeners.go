package loadtest

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"

	nrclient "notifyrelay/client"
)

// deliverFunc takes one received notification document for a receiver. body is
// only valid during the call.
type deliverFunc func(receiver string, body []byte, now time.Time)

// listeners owns the tool's channel clients: one notifyrelay/client Receive per
// WebSocket or long poll, all stopped and waited for by Close. The library does
// the protocol (acks, connCheck, reconnect, dedupe by seq): the load tool proves
// it under load.
type listeners struct {
	e       *env
	ctx     context.Context
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	lib     *nrclient.Client
	dialer  *websocket.Dialer
	deliver deliverFunc
	dropped atomic.Int64 // disconnects of sockets opened without reconnect wanted (channels scenario)
}

// reconnectWait bounds the wait before a receiver reconnects (as the tool's own
// receivers did before the library: 250 ms).
var reconnectWait = nrclient.Backoff{Min: 250 * time.Millisecond, Max: 250 * time.Millisecond}

func newListeners(e *env, deliver deliverFunc) *listeners {
	ctx, cancel := context.WithCancel(context.Background())
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1 << 16, IdleConnTimeout: time.Minute}}
	return &listeners{e: e, ctx: ctx, cancel: cancel, deliver: deliver,
		lib:    nrclient.New(nrclient.Options{BaseURL: firstTarget(e.o.Target), Token: e.o.Token, HTTPClient: hc}),
		dialer: &websocket.Dialer{HandshakeTimeout: e.o.Timeout, ReadBufferSize: 4096, WriteBufferSize: 1024}}
}

func (l *listeners) options(receiver string, mode nrclient.Mode) nrclient.ReceiveOptions {
	return nrclient.ReceiveOptions{
		Mode: mode,
		Handler: func(_ context.Context, n nrclient.Notification) error {
			l.deliver(receiver, n.Body, time.Now())
			return nil
		},
		Backoff:     reconnectWait,
		RenewEvery:  time.Hour, // the tool's channels live 24 h: no connCheck traffic in the figures
		PollTimeout: l.e.o.Timeout + 2*time.Minute,
		Dialer:      l.dialer,
	}
}

// websocket connects receiver to its channel and reads it until Close. It
// returns once the first connection is up (or its error). With reconnect a drop
// is counted as an error of the run; without (idle sockets), in dropped.
func (l *listeners) websocket(receiver string, ch channel, ack, reconnect bool) error {
	mode := nrclient.OMA
	if ack {
		mode = nrclient.Acknowledged
	}
	o := l.options(receiver, mode)
	first := make(chan error, 1)
	o.OnState = func(s nrclient.StateChange) {
		switch {
		case s.State == nrclient.Connected:
			trySend(first, nil)
		case s.State == nrclient.Stopped:
			trySend(first, cmp.Or(s.Err, context.Canceled))
		case s.State == nrclient.Disconnected && !trySend(first, s.Err):
			if reconnect {
				l.e.stats.Error("websocket " + closeKind(s.Err))
			} else {
				l.dropped.Add(1)
			}
		}
	}
	ctx, cancel := context.WithCancel(l.ctx)
	l.wg.Go(func() { defer cancel(); _ = l.lib.Receive(ctx, libChannel(ch), o) })
	if err := <-first; err != nil {
		cancel()
		return fmt.Errorf("websocket %s: %w", redact(ch.ChannelURL), err)
	}
	return nil
}

// trySend reports whether it could send v (only the first state is waited for).
func trySend(c chan error, v error) bool {
	select {
	case c <- v:
		return true
	default:
		return false
	}
}

func libChannel(ch channel) nrclient.Channel {
	return nrclient.Channel{ChannelURL: ch.ChannelURL, CallbackURL: ch.CallbackURL, ResourceURL: ch.ResourceURL}
}

func closeKind(err error) string {
	var ce *websocket.CloseError
	if errors.As(err, &ce) {
		return fmt.Sprintf("closed %d", ce.Code)
	}
	var se *nrclient.StatusError
	if errors.As(err, &se) {
		return fmt.Sprintf("dial http %d", se.Status)
	}
	if err != nil && strings.Contains(err.Error(), "dial") {
		return "dial"
	}
	return "read error"
}

// longPoll polls receiver's channel until Close.
func (l *listeners) longPoll(receiver string, ch channel) {
	o := l.options(receiver, nrclient.LongPoll)
	o.OnState = func(s nrclient.StateChange) {
		if s.State == nrclient.Disconnected && l.ctx.Err() == nil {
			l.e.stats.Error("long poll: " + pollErrorKind(s.Err))
		}
	}
	l.wg.Go(func() { _ = l.lib.Receive(l.ctx, libChannel(ch), o) })
}

func pollErrorKind(err error) string {
	var se *nrclient.StatusError
	if errors.As(err, &se) {
		return (&statusError{Status: se.Status, Body: []byte(se.Body)}).kind()
	}
	if err != nil && strings.Contains(err.Error(), "refused") {
		return "connection refused"
	}
	return "transport"
}

// Close stops every client and waits for them.
func (l *listeners) Close() {
	l.cancel()
	l.wg.Wait()
}
