package queue

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"
)

// JetStream is the engine on NATS JetStream storage: the same engine code as Badger
// (log, cursors, group commit, scheduler, checkpoints) over a JetStream stream that
// holds one subject per key (jetstream_kv.go). This first step runs one notifyrelay
// node on it; the node still keeps the in-memory index and leases, so one node at a
// time holds a prefix (jetstream_lock.go).
//
// Durability: a commit returns once JetStream acknowledged it, that is once a quorum
// of the stream's replicas stored it. The NATS file store fsyncs only every
// sync_interval (2 minutes by default), so with the server's defaults an
// acknowledged commit survives a crash of the notifyrelay process and of a minority
// of NATS servers, but not power loss of a quorum. `sync_interval: always` in the
// NATS servers' jetstream block fsyncs before the ack: the same guarantee as Badger.
type JetStream struct {
	*engine
	lock *jsLock
}

// Lost is closed when this node lost the prefix's lock: its engine refuses every
// commit from then on, and the node must stop (jetstream_lock.go).
func (j *JetStream) Lost() <-chan struct{} { return j.lock.lost }

var _ Engine = (*JetStream)(nil)

// JetStreamOptions configures the JetStream engine. Zero fields take defaults.
type JetStreamOptions struct {
	// URLs of the NATS servers (default nats://127.0.0.1:4222).
	URLs []string
	// Replicas of the stream (default 1): 3 on a 3-node cluster.
	Replicas int
	// Prefix names this deployment's stream (<Prefix>_queue) and subjects
	// (<Prefix>.q.>): deployments with different prefixes share a NATS cluster
	// without seeing each other. Letters, digits, - and _ (default notifyrelay).
	Prefix string
	// Timeout bounds one JetStream call (default 10 s).
	Timeout time.Duration
	// LockWait is how long Open waits for the prefix's lock while another node
	// holds it (default LockTTL + 2 s: a dead holder's lock expires meanwhile),
	// then fails with a *HeldError, an ErrLocked (jetstream_lock.go). Negative:
	// one attempt.
	LockWait time.Duration
	// LockTTL is how long the prefix's lock outlives its holder's last renewal
	// (default 10 s): the longest another node waits to take over from a dead one.
	LockTTL time.Duration
	// Advertise is the address other nodes reach this one at, kept in the lock so
	// that a standby node can forward to the holder.
	Advertise string
	// Meta is opaque to the queue, kept in the lock beside Advertise: what a
	// standby needs to know of the holder (the server keeps its public URL there,
	// which every node of a prefix must share).
	Meta string
	// MaxBatchMsgs is the most messages (keys) one commit may write, at most the
	// NATS servers' jetstream limits.batch.max_msgs (default 1000, as theirs). A
	// write needing more fails with ErrEntryTooBig.
	MaxBatchMsgs int
	// MaxBatch, CheckpointInterval, CacheBytes, OnCommit and OnCheckpoint: as in
	// BadgerOptions.
	MaxBatch           int
	CheckpointInterval time.Duration
	CacheBytes         int
	OnCommit           func(requests int, took time.Duration)
	OnCheckpoint       func()
}

// DefaultJetStreamPrefix is the prefix when none is configured.
const DefaultJetStreamPrefix = "notifyrelay"

var prefixRE = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// ValidJetStreamPrefix reports whether p can name streams and subject tokens.
func ValidJetStreamPrefix(p string) bool { return prefixRE.MatchString(p) }

func (o JetStreamOptions) withDefaults() JetStreamOptions {
	if len(o.URLs) == 0 {
		o.URLs = []string{nats.DefaultURL}
	}
	if o.Replicas == 0 {
		o.Replicas = 1
	}
	if o.Prefix == "" {
		o.Prefix = DefaultJetStreamPrefix
	}
	if o.Timeout == 0 {
		o.Timeout = 10 * time.Second
	}
	if o.MaxBatchMsgs == 0 {
		o.MaxBatchMsgs = jsMaxTxnMsgs
	}
	if o.LockTTL == 0 {
		o.LockTTL = defaultLockTTL
	}
	if o.LockWait == 0 {
		o.LockWait = o.LockTTL + 2*time.Second
	}
	return o
}

// OpenJetStream connects to the NATS servers, creates (or updates) this prefix's
// stream and loads the queue from it. Every non-empty destination is due at once.
func OpenJetStream(opts JetStreamOptions, log zerolog.Logger) (*JetStream, error) {
	opts = opts.withDefaults()
	if !ValidJetStreamPrefix(opts.Prefix) {
		return nil, fmt.Errorf("queue: jetstream prefix %q: want 1-64 letters, digits, - or _: %w", opts.Prefix, ErrBadArguments)
	}
	if opts.Replicas < 1 || opts.Replicas > 5 {
		return nil, fmt.Errorf("queue: jetstream replicas %d: want 1 to 5: %w", opts.Replicas, ErrBadArguments)
	}
	kv, err := openJSKV(opts, log)
	if err != nil {
		return nil, err
	}
	// No compactAt: compact is a no-op, deleted keys expire by themselves.
	e := newEngine(kv, log, engineOptions{maxBatch: opts.MaxBatch,
		checkpointEvery: opts.CheckpointInterval, cacheBytes: opts.CacheBytes,
		onCommit: opts.OnCommit, onCheckpoint: opts.OnCheckpoint})
	if err := e.start(); err != nil {
		_ = kv.close()
		return nil, fmt.Errorf("queue: open jetstream stream %s: %w", kv.name, err)
	}
	return &JetStream{engine: e, lock: kv.lock}, nil
}

func openJSKV(o JetStreamOptions, log zerolog.Logger) (*jsKV, error) {
	nc, err := nats.Connect(strings.Join(o.URLs, ","), nats.Name("notifyrelay queue"),
		nats.MaxReconnects(-1), nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
			log.Warn().Err(err).Msg("nats")
		}))
	if err != nil {
		return nil, fmt.Errorf("queue: connect to nats %v: %w", o.URLs, err)
	}
	js, err := jetstream.New(nc, jetstream.WithDefaultTimeout(o.Timeout))
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("queue: jetstream: %w", err)
	}
	kv := &jsKV{nc: nc, js: js, name: o.Prefix + "_queue", subj: o.Prefix + ".q", timeout: o.Timeout, scanBudget: streamScanBytes,
		maxMsgs: o.MaxBatchMsgs}
	if err := kv.createStream(o.Replicas); err != nil {
		nc.Close()
		return nil, err
	}
	if kv.lock, err = acquireLock(js, o, log); err != nil {
		nc.Close()
		return nil, err
	}
	if err := kv.claim(kv.lock.value); err != nil {
		kv.lock.release()
		nc.Close()
		return nil, err
	}
	return kv, nil
}

// createStream creates or updates the stream, retrying for a while: right after a
// NATS cluster starts, JetStream calls time out until its meta leader is elected.
func (kv *jsKV) createStream(replicas int) error {
	cfg := jetstream.StreamConfig{
		Name:     kv.name,
		Subjects: []string{kv.subj + ".>"},
		Storage:  jetstream.FileStorage,
		Replicas: replicas,
		// One message per subject: a key's value. A new value replaces the old one.
		MaxMsgsPerSubject:  1,
		AllowAtomicPublish: true,
		AllowMsgTTL:        true, // delete markers expire (deleteMarkerTTL)
		// Reads go to the stream leader, which has applied every acknowledged
		// commit; Direct Get could be answered by a lagging follower.
		AllowDirect: false,
	}
	deadline := time.Now().Add(3 * kv.timeout)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), min(kv.timeout, 2*time.Second))
		s, err := kv.js.CreateOrUpdateStream(ctx, cfg)
		cancel()
		if err == nil {
			kv.stream = s
			return nil
		}
		if time.Now().After(deadline) || !retryable(err) {
			return fmt.Errorf("queue: create jetstream stream %s: %w", kv.name, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func retryable(err error) bool {
	return errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nats.ErrTimeout) ||
		errors.Is(err, jetstream.ErrJetStreamNotEnabled) || errors.Is(err, nats.ErrNoResponders)
}
