package app

import (
	"context"
	"go.opentelemetry.io/otel/trace"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"notifyrelay/api"
	"notifyrelay/bridge"
	"notifyrelay/config"
	"notifyrelay/delivery"
	"notifyrelay/queue"
	"notifyrelay/relay"
)

// queueHooks observe the engine's group commits (requests per commit, commit
// latency with its fsync or replication) and checkpoints.
type queueHooks struct {
	onCommit     func(n int, took time.Duration)
	onCheckpoint func()
}

// queueMetrics registers the commit and checkpoint metrics, once per App (a
// standby may open the engine many times before it gets it).
func (a *App) queueMetrics() queueHooks {
	a.hooksOnce.Do(func() {
		batch := prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "notifyrelay_queue_commit_batch_size",
			Help:    "Requests (appends, acks, retries…) carried by one group commit.",
			Buckets: prometheus.ExponentialBuckets(1, 2, 11),
		})
		fsync := prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "notifyrelay_queue_commit_seconds",
			Help:    "Duration of one group commit, its fsync (or JetStream acknowledgement) included.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2, 14),
		})
		checkpoints := prometheus.NewCounter(prometheus.CounterOpts{
			Name: "notifyrelay_queue_checkpoints_total",
			Help: "Checkpoints written: acknowledgements up to the last one survive a crash.",
		})
		a.reg.MustRegister(batch, fsync, checkpoints)
		a.hooks = queueHooks{onCheckpoint: checkpoints.Inc, onCommit: func(n int, took time.Duration) {
			batch.Observe(float64(n))
			fsync.Observe(took.Seconds())
		}}
	})
	return a.hooks
}

// registerEngine registers the metrics read from the engine in use.
func (a *App) registerEngine(q countedEngine) {
	a.reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "notifyrelay_queue_keys_written_total",
		Help: "Storage keys set or deleted by queue commits (log values, cursors, records).",
	}, func() float64 { return float64(q.KeysWritten()) }))
	a.reg.MustRegister(newQueueCollector(q))
}

// countedEngine is an engine that counts the keys it writes (both engines do).
type countedEngine interface {
	queue.Engine
	KeysWritten() int64
}

// openEngine opens the engine of queue.engine: Badger in data_dir, or a JetStream
// stream; a JetStream prefix another node holds fails at once (*queue.HeldError).
func openEngine(cfg config.Config, log zerolog.Logger, h queueHooks, meta string) (countedEngine, error) {
	if cfg.Queue.Engine == "jetstream" {
		j := cfg.Queue.JetStream
		o := queue.JetStreamOptions{URLs: j.URLs, Replicas: j.Replicas, Prefix: j.Prefix,
			LockTTL: j.LockTTL.D(), Advertise: j.Advertise, Meta: meta, MaxBatchMsgs: j.MaxBatchMsgs, CheckpointInterval: cfg.Queue.CheckpointInterval.D(),
			OnCommit: h.onCommit, OnCheckpoint: h.onCheckpoint, LockWait: -1}
		return queue.OpenJetStream(o, log)
	}
	return queue.OpenBadger(cfg.DataDir, queue.BadgerOptions{
		CheckpointInterval: cfg.Queue.CheckpointInterval.D(),
		ValueLogFileSize:   int64(cfg.Queue.ValueLogFileSize),
		MemTableSize:       int64(cfg.Queue.MemTableSize),
		OnCommit:           h.onCommit,
		OnCheckpoint:       h.onCheckpoint,
	}, log)
}

// buildParts wires the relay, webhook delivery and the bridge on the queue, in the
// order they start (they stop in the reverse one: the bridge and the webhook
// workers, which settle N1s, before the relay, which waits for the N2s that
// causes). The relay and the bridge never import each other: the bridge recognises
// its callbackURLs for the relay (relay.ChannelLookup), tells the relay the outcome
// of tagged notifications (OnSettled) and which channels ended (OnChannelGone:
// their chat subscriptions end too). Webhook delivery asks the chat about its
// subscriptions (relay.Subscriptions) and shares the delivery records with the
// operator API (delivery.Book).
func buildParts(cfg config.Config, log zerolog.Logger, reg prometheus.Registerer, q queue.Engine, auth *api.Auth, tr trace.Tracer) ([]Part, error) {
	var r *relay.Relay
	b, err := bridge.New(bridge.Options{Config: cfg, Log: log, Registerer: reg, Queue: q, Auth: auth,
		OnSettled:     func(tag string, delivered bool) { r.Settled(tag, delivered) },
		OnChannelGone: func(ctx context.Context, dest string) { r.ChannelGone(ctx, dest) }, Tracer: tr})
	if err != nil {
		return nil, err
	}
	book := delivery.NewBook(q)
	ctl, err := delivery.NewControls(context.Background(), q, cfg.Delivery, log, reg)
	if err != nil {
		return nil, err
	}
	r, err = relay.New(relay.Options{Config: cfg, Log: log, Queue: q, Auth: auth, Channels: b, Book: book, Controls: ctl, Tracer: tr})
	if err != nil {
		return nil, err
	}
	d, err := delivery.New(delivery.Options{Config: cfg.Delivery, Log: log, Registerer: reg, Queue: q, Tracer: tr,
		Book: book, Controls: ctl, Subscriptions: r.Subscriptions()})
	if err != nil {
		return nil, err
	}
	return []Part{r, d, b}, nil
}
