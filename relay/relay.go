// Package relay is the producer side and the webhook side of notifyrelay: the OMA
// Chat API for group session data (chat*.go), the operator delivery API
// (operator*.go), and the workers that deliver queued notifications to webhook URLs
// with retries, backoff, dead letters and signatures (delivery*.go, webhook*.go).
//
// The relay owns the queue destinations of kinds destkind.Subscription ("s:") and
// destkind.Operator ("o:"); the bridge owns destkind.Channel ("c:").
package relay

import (
	"context"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"notifyrelay/api"
	"notifyrelay/config"
	"notifyrelay/queue"
)

// ChannelLookup recognises our own notification channels' callbackURLs, so that a
// chat subscription to one delivers straight into the channel's queue (no HTTP hop).
// The bridge implements it; app/ wires it.
type ChannelLookup interface {
	// CallbackDest returns the queue destination of the channel whose callbackURL is
	// notifyURL, and whether there is one.
	CallbackDest(notifyURL string) (dest string, ok bool)
}

// Options is what the relay needs from the composition root.
type Options struct {
	Config     config.Config
	Log        zerolog.Logger
	Registerer prometheus.Registerer
	Queue      queue.Engine
	Auth       *api.Auth
	Channels   ChannelLookup // nil: no channels
}

// Relay serves the chat and operator APIs and runs the webhook workers.
type Relay struct {
	opts Options
	log  zerolog.Logger
	chat *chatState   // chat sessions, subscriptions, pending N2s (chat*.go)
	dlv  *deliverer   // webhook workers (delivery*.go)
	ops  *operatorAPI // operator delivery API (operator*.go)
}

// New builds the relay; Start launches its workers.
func New(o Options) (*Relay, error) {
	r := &Relay{opts: o, log: o.Log.With().Str("component", "relay").Logger()}
	if err := r.loadChat(context.Background()); err != nil {
		return nil, err
	}
	if err := r.initDelivery(); err != nil {
		return nil, err
	}
	return r, nil
}

// Routes adds the chat and operator resources.
func (r *Relay) Routes(rt *api.Router) {
	r.chatRoutes(rt)
	r.ops.routes(rt)
}

// Start launches the webhook delivery workers.
func (r *Relay) Start(ctx context.Context) error {
	r.dlv.start()
	return nil
}

// Stop waits for in-flight webhook attempts (or gives them back to the queue).
func (r *Relay) Stop(ctx context.Context) error {
	err := r.dlv.stop(ctx)
	r.chat.finishing.Wait() // N2 appends: the queue, still open, answers them
	return err
}

// Settled is told the outcome of a queued notification that carried a tag
// (oma.Envelope.Tag): delivered, or given up on. The bridge calls it for
// notifications it delivers into channels; the webhook workers for theirs. It drives
// the chat status notification (N2) in "delivered" mode.
func (r *Relay) Settled(tag string, delivered bool) { r.settled(tag, delivered) }
