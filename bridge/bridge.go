// Package bridge serves OMA notification channels: clients behind NAT create a
// channel and receive their notifications over a WebSocket (OMA or acknowledged
// mode) or by long polling; any OMA server POSTs notifications to the channel's
// callbackURL. Each channel is one queue destination, destkind.Channel ("c:<channelId>").
//
// The channel store (store.go, hub.go, resources.go, callback.go) keeps channel
// state in queue records under "nc/", which survive restarts; the notifications
// themselves live in the queue until a transport delivers them: the WebSocket
// (wsTransport: ws.go, upgrade.go, writer.go, receipt.go) or the long poll
// (pollTransport: poll.go, pollanswer.go), each given only the narrow interfaces
// it uses (socketQueue, pollQueue, channelStore, acker, connSet). See
// docs/channels.md for when each mode counts a notification delivered.
// Everything is safe for concurrent use.
package bridge

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"go.opentelemetry.io/otel/trace"

	"notifyrelay/api"
	"notifyrelay/config"
	"notifyrelay/queue"
	"notifyrelay/telemetry"
)

// Queue is what the bridge uses of the queue. Each part takes less: the channel
// store (storeQueue), the WebSocket and long-poll transports (socketQueue,
// pollQueue), the acknowledgements (acker).
type Queue interface {
	Append(ctx context.Context, w queue.Write) ([]uint64, error)
	Read(ctx context.Context, dest string, after uint64, max int) ([]queue.Entry, error)
	Ack(ctx context.Context, dest string, seq uint64) error
	Delete(ctx context.Context, dest string) error
	Scan(ctx context.Context, prefix []byte, fn func(key, value []byte) error) error
	Dests(prefix string) []queue.DestStats
	DestStats(dest string) queue.DestStats
	Watch(dest string) (wake <-chan struct{}, stop func())
}

// Options is what the bridge needs from the composition root.
type Options struct {
	Config     config.Config
	Log        zerolog.Logger
	Registerer prometheus.Registerer
	Queue      Queue // may also be a queue.FuncWatcher
	Auth       *api.Auth
	// OnSettled is told when a notification that carried a tag (oma.Envelope.Tag)
	// was delivered on a channel, or dropped with its channel (delivered=false).
	OnSettled func(tag string, delivered bool)
	// OnChannelGone is told that the channel behind dest was deleted or expired,
	// before its queue is dropped: whoever appends to dest must stop when it returns.
	OnChannelGone func(ctx context.Context, dest string)
	// Tracer makes the accept span of callbackURL POSTs and a span per
	// notification delivered on a channel (telemetry); nil: none.
	Tracer trace.Tracer
}

// Bridge puts together the channel store (the channels, their records, lifetimes
// and callbackURLs) and the two transports that deliver a channel's queue: the
// WebSocket (ws*.go, writer.go, receipt.go) and the long poll (poll*.go). Each
// takes only what it uses of the others and of the queue.
type Bridge struct {
	auth    *api.Auth
	log     zerolog.Logger
	metrics *metrics
	store   *store
	ws      *wsTransport
	poll    *pollTransport
	conns   *connSet
}

// New builds the bridge.
func New(o Options) (*Bridge, error) {
	m, err := newMetrics(o.Registerer, o.Queue.Dests)
	if err != nil {
		return nil, fmt.Errorf("bridge metrics: %w", err)
	}
	log := o.Log.With().Str("component", "bridge").Logger()
	conns := newConnSet()
	acks := &acker{q: o.Queue, onSettled: o.OnSettled, tracer: telemetry.Or(o.Tracer), metrics: m, log: log}
	st := newStore(o, conns.life, m, log)
	return &Bridge{auth: o.Auth, log: log, metrics: m, store: st, conns: conns,
		ws: &wsTransport{cfg: o.Config.Channels, public: o.Config.Public(), q: o.Queue, channels: st,
			acks: acks, conns: conns, metrics: m, log: log},
		poll: &pollTransport{cfg: o.Config.Channels, q: o.Queue, channels: st,
			acks: acks, conns: conns, metrics: m, log: log},
	}, nil
}

// Routes adds the channel resources, callbackURLs, long poll and WebSocket routes.
// The fasthttp.Server must set KeepHijackedConns: the bridge owns the WebSocket
// connections it hijacks and closes them itself.
func (b *Bridge) Routes(rt *api.Router) {
	const ch = "/notificationchannel/v1/{userId}/channels"
	user, st := api.ForUser(b.auth), b.store
	rt.Handle(ch, user, api.Methods{"GET": st.handleList, "POST": st.handleCreate})
	rt.Handle(ch+"/{channelId}", user, api.Methods{"GET": st.handleRead, "DELETE": st.handleDelete})
	rt.Handle(ch+"/{channelId}/channelLifetime", user, api.Methods{"GET": st.handleLifetimeGet, "PUT": st.handleLifetimePut})
	rt.Handle(ch+"/{channelId}/poll", user, api.Methods{"POST": b.poll.handlePoll})
	rt.Handle(ch+"/{channelId}/ws", api.ForSocket(b.auth), api.Methods{"GET": b.ws.handleWS})
	// The console's view of the channels, beside the relay's operator API.
	rt.Handle("/relay/v1/channels", api.ForOperator(b.auth), api.Methods{"GET": st.listChannels})
	rt.HandleAdmit("/notifications/{token}", api.ForAnyone, api.Methods{"POST": st.handleCallback}, st.admitCallback)
}

// Start loads the channels from the queue's records and launches lifetime expiry.
// Channels that expired while the server was down are deleted at once.
func (b *Bridge) Start(ctx context.Context) error {
	return b.store.start(ctx)
}

// Drain closes every WebSocket with 1001 and answers pending long polls with an
// empty list, so the listener can shut down. New connections are refused with 503.
// Unacknowledged notifications stay queued.
func (b *Bridge) Drain(ctx context.Context) {
	for _, w := range b.conns.drain() {
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
	defer b.conns.end()
	b.Drain(ctx)
	b.store.stop()
	done := make(chan struct{})
	go func() {
		b.conns.wg.Wait()
		b.store.wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
	}
	b.conns.end()
	b.conns.abort()
	select {
	case <-done:
		b.log.Warn().Msg("shutdown_timeout reached: channel sockets cut, unconfirmed notifications stay queued")
		return nil
	case <-time.After(AbortGrace):
		return fmt.Errorf("bridge stop: goroutines still running %v after shutdown_timeout", AbortGrace)
	}
}

// CallbackDest maps one of our callbackURLs to its channel's queue destination.
// Scheme and host compare case-insensitively and a trailing slash is ignored.
func (b *Bridge) CallbackDest(notifyURL string) (string, bool) {
	return b.store.callbackDest(notifyURL)
}

// normalizeURL lower-cases scheme and host, drops query, fragment and a trailing slash.
func normalizeURL(s string) string {
	u, err := url.Parse(strings.TrimSpace(s))
	if err != nil {
		return ""
	}
	return strings.ToLower(u.Scheme) + "://" + strings.ToLower(u.Host) + strings.TrimRight(u.EscapedPath(), "/")
}
