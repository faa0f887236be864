package app

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"notifyrelay/api"
	"notifyrelay/bridge"
	"notifyrelay/config"
	"notifyrelay/queue"
	"notifyrelay/relay"
)

// openQueue opens the embedded Badger queue in data_dir.
func openQueue(cfg config.Config, log zerolog.Logger, reg prometheus.Registerer) (queue.Engine, error) {
	return queue.OpenBadger(cfg.DataDir, queue.BadgerOptions{}, log.With().Str("component", "queue").Logger())
}

// buildParts wires the relay and the bridge on the queue. They never import each
// other: the bridge recognises its callbackURLs for the relay (relay.ChannelLookup),
// and tells the relay the outcome of tagged notifications (OnSettled).
func buildParts(cfg config.Config, log zerolog.Logger, reg prometheus.Registerer, q queue.Engine) ([]Part, error) {
	auth := api.NewAuth(cfg.Auth.Tokens)
	var r *relay.Relay
	b, err := bridge.New(bridge.Options{Config: cfg, Log: log, Registerer: reg, Queue: q, Auth: auth,
		OnSettled: func(tag string, delivered bool) { r.Settled(tag, delivered) }})
	if err != nil {
		return nil, err
	}
	r, err = relay.New(relay.Options{Config: cfg, Log: log, Registerer: reg, Queue: q, Auth: auth, Channels: b})
	if err != nil {
		return nil, err
	}
	return []Part{r, b}, nil
}
