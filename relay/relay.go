// Package relay is the producer side of notifyrelay: the OMA Chat API for group
// session data (chat*.go, subscription.go, status.go) and the operator delivery API
// (operator*.go). Webhook delivery of what they queue is the delivery package's;
// the chat answers it about subscriptions (Subscriptions) and is told the outcome
// of N1s (Settled).
//
// The relay owns the queue destinations of kinds destkind.Subscription ("s:") and
// destkind.Operator ("o:"); the bridge owns destkind.Channel ("c:").
package relay

import (
	"context"
	"go.opentelemetry.io/otel/trace"

	"github.com/rs/zerolog"

	"notifyrelay/api"
	"notifyrelay/config"
	"notifyrelay/delivery"
	"notifyrelay/telemetry"
)

// ChannelLookup recognises our own notification channels' callbackURLs, so that a
// chat subscription to one delivers straight into the channel's queue (no HTTP hop).
// The bridge implements it; app/ wires it.
type ChannelLookup interface {
	// CallbackDest returns the queue destination of the channel whose callbackURL is
	// notifyURL, and whether there is one.
	CallbackDest(notifyURL string) (dest string, ok bool)
}

// Queue is what the chat and operator APIs use of the queue.
type Queue interface {
	chatQueue
	operatorQueue
}

// Options is what the relay needs from the composition root.
type Options struct {
	Config   config.Config
	Log      zerolog.Logger
	Queue    Queue
	Auth     *api.Auth
	Channels ChannelLookup      // nil: no channels
	Book     *delivery.Book     // the delivery records the operator API reports
	Controls *delivery.Controls // pause and resume of webhook destinations
	Tracer   trace.Tracer       // a span per accepted delivery request (telemetry); nil: none
}

// Relay serves the chat and operator APIs.
type Relay struct {
	auth *api.Auth
	chat *chat
	ops  *operatorAPI
}

// New builds the relay; Start loads its chat state.
func New(o Options) (*Relay, error) {
	log := o.Log.With().Str("component", "relay").Logger()
	c := newChat(o.Queue, o.Config, log, o.Channels)
	c.tracer = telemetry.Or(o.Tracer)
	if o.Controls != nil {
		c.destGone = o.Controls.Forget
	}
	ops := &operatorAPI{tracer: telemetry.Or(o.Tracer), q: o.Queue, auth: o.Auth, cfg: o.Config, book: o.Book, ctl: o.Controls, subs: c.Target,
		idem: newIdemGate(o.Queue, o.Config.Delivery.IdempotencyWindow.D())}
	return &Relay{auth: o.Auth, chat: c, ops: ops}, nil
}

// Routes adds the chat and operator resources.
func (r *Relay) Routes(rt *api.Router) {
	r.chat.routes(rt, r.auth)
	r.ops.routes(rt)
}

// Start loads the chat state (sessions, subscriptions, pending N2s) from the
// queue's records; the relay has no background work of its own. It runs before
// delivery and the bridge start, which ask the chat about subscriptions.
func (r *Relay) Start(context.Context) error { return r.chat.load(r.chat.life) }

// Stop waits for the N2 appends still waiting for their commit (the queue, still
// open, answers them), then ends the chat's lifetime. Call it after whatever
// settles N1s has stopped.
func (r *Relay) Stop(context.Context) error {
	r.chat.finishing.Wait()
	r.chat.end()
	return nil
}

// Subscriptions is the chat as webhook delivery sees it: the notifyURLs of
// subscription destinations, the end of a subscription whose webhook answered 410,
// and the outcome of N1s.
func (r *Relay) Subscriptions() delivery.Subscriptions { return r.chat }

// Settled is told the outcome of a queued notification that carried a tag
// (oma.Envelope.Tag): delivered, or given up on. The bridge calls it for
// notifications it delivers into channels; the webhook workers for theirs. It drives
// the chat status notification (N2) in "delivered" mode.
func (r *Relay) Settled(tag string, delivered bool) { r.chat.Settled(tag, delivered) }

// ChannelGone ends the chat subscriptions whose notifyURL is the callbackURL of the
// channel behind dest (deleted or expired), as a webhook's 410 ends a webhook
// subscription. Once it returns the chat appends nothing more to dest, so the
// bridge can drop the channel's queue (settling what it held as not delivered).
func (r *Relay) ChannelGone(ctx context.Context, dest string) { r.chat.channelGone(ctx, dest) }
