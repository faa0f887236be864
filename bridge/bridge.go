// Package bridge serves OMA notification channels: clients behind NAT create a
// channel and receive their notifications over a WebSocket (OMA or acknowledged
// mode) or by long polling; any OMA server POSTs notifications to the channel's
// callbackURL. Each channel is one queue destination, destkind.Channel ("c:<channelId>").
//
// Channel state lives in queue records under "nc/" and survives restarts; the
// notifications themselves live in the queue until delivered (see docs/channels.md
// for when each mode counts a notification delivered). Everything is safe for
// concurrent use.
package bridge

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"notifyrelay/api"
	"notifyrelay/config"
	"notifyrelay/queue"
)

// Options is what the bridge needs from the composition root.
type Options struct {
	Config     config.Config
	Log        zerolog.Logger
	Registerer prometheus.Registerer
	Queue      queue.Engine
	Auth       *api.Auth
	// OnSettled is told when a notification that carried a tag (oma.Envelope.Tag)
	// was delivered on a channel, or dropped with its channel (delivered=false).
	OnSettled func(tag string, delivered bool)
	// OnChannelGone is told that the channel behind dest was deleted or expired,
	// before its queue is dropped: whoever appends to dest must stop when it returns.
	OnChannelGone func(ctx context.Context, dest string)
}

// Bridge owns the channels and their connections.
type Bridge struct {
	opts    Options
	cfg     config.Channels
	log     zerolog.Logger
	q       queue.Engine
	hub     *hub
	metrics *metrics
	base    string // {public_url}{base_path}
	cbBase  string // normalised callbackURL prefix, for CallbackDest

	createMu sync.Mutex // makes "correlator unused → create" atomic

	connMu   sync.Mutex
	conns    map[*wsConn]struct{}
	polls    map[*poller]struct{}
	draining bool
	wg       sync.WaitGroup // writers, readers, the expiry loop
	stopExp  chan struct{}
	stopOnce sync.Once
	// stopping ends when Stop gives up waiting: answers still waiting for the
	// client's TCP acknowledgement stay queued.
	stopping    context.Context
	abandonWait context.CancelFunc
}

// New builds the bridge.
func New(o Options) (*Bridge, error) {
	base := o.Config.Public() + o.Config.BasePath
	b := &Bridge{
		opts: o, cfg: o.Config.Channels, q: o.Queue,
		log:     o.Log.With().Str("component", "bridge").Logger(),
		hub:     newHub(),
		base:    base,
		cbBase:  normalizeURL(base+"/notifications") + "/",
		conns:   map[*wsConn]struct{}{},
		polls:   map[*poller]struct{}{},
		stopExp: make(chan struct{}),
	}
	b.stopping, b.abandonWait = context.WithCancel(context.Background())
	var err error
	if b.metrics, err = newMetrics(o.Registerer, b); err != nil {
		return nil, fmt.Errorf("bridge metrics: %w", err)
	}
	return b, nil
}

// Routes adds the channel resources, callbackURLs, long poll and WebSocket routes.
// The fasthttp.Server must set KeepHijackedConns: the bridge owns the WebSocket
// connections it hijacks and closes them itself.
func (b *Bridge) Routes(rt *api.Router) {
	const ch = "/notificationchannel/v1/{userId}/channels"
	user := api.ForUser(b.opts.Auth)
	rt.Handle(ch, user, api.Methods{"GET": b.handleList, "POST": b.handleCreate})
	rt.Handle(ch+"/{channelId}", user, api.Methods{"GET": b.handleRead, "DELETE": b.handleDelete})
	rt.Handle(ch+"/{channelId}/channelLifetime", user, api.Methods{"GET": b.handleLifetimeGet, "PUT": b.handleLifetimePut})
	rt.Handle(ch+"/{channelId}/poll", user, api.Methods{"POST": b.handlePoll})
	rt.Handle(ch+"/{channelId}/ws", api.ForSocket(b.opts.Auth), api.Methods{"GET": b.handleWS})
	rt.HandleAdmit("/notifications/{token}", api.ForAnyone, api.Methods{"POST": b.handleCallback}, b.admitCallback)
}

// Start loads the channels from the queue's records and launches lifetime expiry.
// Channels that expired while the server was down are deleted at once.
func (b *Bridge) Start(ctx context.Context) error {
	if err := b.load(ctx); err != nil {
		return err
	}
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		b.expireLoop()
	}()
	return nil
}

// Drain closes every WebSocket with 1001 and answers pending long polls with an
// empty list, so the listener can shut down. New connections are refused with 503.
// Unacknowledged notifications stay queued.
func (b *Bridge) Drain(ctx context.Context) {
	b.connMu.Lock()
	b.draining = true
	conns := make([]*wsConn, 0, len(b.conns))
	for w := range b.conns {
		conns = append(conns, w)
	}
	for p := range b.polls {
		p.end(endDrain)
	}
	b.connMu.Unlock()
	for _, w := range conns {
		w.stop(closeGoingAway, "server shutting down")
	}
}

// AbortGrace is how long Stop still waits, once ctx ended, for goroutines whose
// sockets it cut.
const AbortGrace = 2 * time.Second

// Stop ends lifetime expiry and waits for every goroutine of the bridge. When ctx
// ends first it cuts what they wait on (sockets closed, long-poll answers not yet
// confirmed left queued) and waits at most AbortGrace more.
func (b *Bridge) Stop(ctx context.Context) error {
	defer b.abandonWait()
	b.Drain(ctx)
	b.stopOnce.Do(func() { close(b.stopExp) })
	done := make(chan struct{})
	go func() {
		b.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
	}
	b.abandonWait()
	b.abortConns()
	select {
	case <-done:
		b.log.Warn().Msg("shutdown_timeout reached: channel sockets cut, unconfirmed notifications stay queued")
		return nil
	case <-time.After(AbortGrace):
		return fmt.Errorf("bridge stop: goroutines still running %v after shutdown_timeout", AbortGrace)
	}
}

// abortConns closes every tracked WebSocket's socket at once.
func (b *Bridge) abortConns() {
	b.connMu.Lock()
	defer b.connMu.Unlock()
	for w := range b.conns {
		w.abort()
	}
}

// CallbackDest maps one of our callbackURLs to its channel's queue destination.
// Scheme and host compare case-insensitively and a trailing slash is ignored.
func (b *Bridge) CallbackDest(notifyURL string) (string, bool) {
	n := normalizeURL(notifyURL)
	token, ok := strings.CutPrefix(n, b.cbBase)
	if !ok || token == "" || strings.Contains(token, "/") {
		return "", false
	}
	c := b.hub.byToken(token)
	if c == nil {
		return "", false
	}
	return c.dest(), true
}

// normalizeURL lower-cases scheme and host, drops query, fragment and a trailing slash.
func normalizeURL(s string) string {
	u, err := url.Parse(strings.TrimSpace(s))
	if err != nil {
		return ""
	}
	return strings.ToLower(u.Scheme) + "://" + strings.ToLower(u.Host) + strings.TrimRight(u.EscapedPath(), "/")
}

// track registers a connection or poll unless the bridge is draining; the caller
// then owns one count of wg.
func (b *Bridge) track(w *wsConn, p *poller) bool {
	b.connMu.Lock()
	defer b.connMu.Unlock()
	if b.draining {
		return false
	}
	if w != nil {
		b.conns[w] = struct{}{}
	}
	if p != nil {
		b.polls[p] = struct{}{}
	}
	b.wg.Add(1)
	return true
}

// isDraining reports whether new connections are refused.
func (b *Bridge) isDraining() bool {
	b.connMu.Lock()
	defer b.connMu.Unlock()
	return b.draining
}

func (b *Bridge) untrack(w *wsConn, p *poller) {
	b.connMu.Lock()
	delete(b.conns, w)
	delete(b.polls, p)
	b.connMu.Unlock()
	b.wg.Done()
}
