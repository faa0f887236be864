package queue

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"
)

// engine implements Engine over a kvStore. Every write goes through one goroutine, the
// writer (commit.go), which owns the durable state; reads go to the read cache or the
// store; the scheduler holds the in-memory index and cursors the writer publishes
// after each commit and Ack moves; a checkpointer writes moved cursors.
type engine struct {
	kv      kvStore
	sched   *scheduler
	cache   *logCache
	staged  *staged
	dead    *deadFilter // owned by the writer
	log     zerolog.Logger
	reqs    chan *request
	done    chan struct{} // closed when the writer has exited
	nextLog uint64        // owned by the writer

	maxBatch  int // requests per commit
	cpEvery   time.Duration
	compactAt int64      // freed log bytes that call for a compaction under load
	cpMu      sync.Mutex // one checkpoint at a time
	cpStop    chan struct{}
	cpDone    chan struct{}

	mu        sync.RWMutex // shared by callers while they use kv or submit; Close takes it
	closed    bool
	closeOnce sync.Once
	closeErr  error

	commits, committed atomic.Int64 // transactions and requests committed (benchmarks)
	keys               atomic.Int64 // keys set or deleted by committed transactions
	onCommit           func(requests int, took time.Duration)
	onCheckpoint       func()
	spaceLow           atomic.Bool // checkpoints are failing for lack of disk space
}

// Space returns nil while the queue takes new data, else an error wrapping
// ErrNoSpace that says how much is free and needed (for readiness probes).
func (e *engine) Space() error {
	if s := e.kv.space(); !s.allows(opAppend) {
		return s.err()
	}
	return nil
}

// engineOptions are the knobs every engine shares; zero fields take the defaults of
// withDefaults, the one place they live.
type engineOptions struct {
	maxBatch        int           // requests per group commit (1024)
	checkpointEvery time.Duration // DefaultCheckpointInterval
	cacheBytes      int           // the read cache (16 MiB)
	compactAt       int64         // freed log bytes that call for a compaction (0: only when idle)
	onCommit        func(requests int, took time.Duration)
	onCheckpoint    func()
}

func (o engineOptions) withDefaults() engineOptions {
	if o.maxBatch == 0 {
		o.maxBatch = 1024
	}
	if o.checkpointEvery == 0 {
		o.checkpointEvery = DefaultCheckpointInterval
	}
	if o.cacheBytes == 0 {
		o.cacheBytes = 16 << 20
	}
	if o.compactAt == 0 {
		o.compactAt = 1 << 62
	}
	return o
}

func newEngine(kv kvStore, log zerolog.Logger, o engineOptions) *engine {
	o = o.withDefaults()
	e := &engine{
		kv:        kv,
		sched:     newScheduler(),
		cache:     newLogCache(o.cacheBytes),
		staged:    newStaged(),
		dead:      newDeadFilter(),
		log:       log,
		reqs:      make(chan *request, o.maxBatch),
		done:      make(chan struct{}),
		maxBatch:  o.maxBatch,
		cpEvery:   o.checkpointEvery,
		compactAt: o.compactAt,
		cpStop:    make(chan struct{}),
		cpDone:    make(chan struct{}),
		nextLog:   1,

		onCommit:     o.onCommit,
		onCheckpoint: o.onCheckpoint,
	}
	e.sched.onFree = e.cache.remove
	return e
}

// start rebuilds the in-memory index from storage (load.go) and starts the writer and
// the checkpointer. Every non-empty destination is due at once.
func (e *engine) start() error {
	if err := e.load(); err != nil {
		return err
	}
	go e.runWriter()
	go e.runCheckpoints(e.cpEvery)
	return nil
}

// submit hands r to the writer and waits for its result. Once submitted, the request
// runs to completion even if ctx ends, so that an error always means "not applied".
func (e *engine) submit(ctx context.Context, r *request) result {
	wait := e.enqueue(ctx, r)
	return wait()
}

// enqueue hands r to the writer and returns a function that waits for its result.
// Requests enqueued by one goroutine are planned and committed in that order.
func (e *engine) enqueue(ctx context.Context, r *request) func() result {
	if err := ctx.Err(); err != nil {
		return func() result { return result{err: err} }
	}
	r.done = make(chan result, 1)
	e.mu.RLock()
	defer e.mu.RUnlock()
	if e.closed {
		return func() result { return result{err: ErrClosed} }
	}
	select {
	case e.reqs <- r:
	case <-ctx.Done():
		return func() result { return result{err: ctx.Err()} }
	}
	return func() result { return <-r.done }
}

// Append implements Queue.Append.
func (e *engine) Append(ctx context.Context, w Write) ([]uint64, error) {
	return e.Enqueue(ctx, w)()
}

// Enqueue implements Queue.Enqueue. Entries and records are validated before anything
// is written: one bad entry refuses the whole Write. Concurrent callers share one
// commit and one fsync. The entries are encoded here, on the caller's goroutine: the
// writer's time is the one every caller waits for.
func (e *engine) Enqueue(ctx context.Context, w Write) func() ([]uint64, error) {
	if err := validateWrite(w); err != nil {
		return func() ([]uint64, error) { return nil, err }
	}
	wait := e.enqueue(ctx, appendRequest(w))
	return func() ([]uint64, error) {
		res := wait()
		return res.seqs, res.err
	}
}

func appendRequest(w Write) *request {
	r := &request{op: opAppend, write: w}
	if len(w.Entries) > 0 {
		r.logs = encodeLogs(w.Entries, time.Now())
	}
	return r
}

// Ack implements Queue.Ack: it moves the cursor in memory; the next checkpoint
// writes it.
func (e *engine) Ack(ctx context.Context, dest string, seq uint64) error {
	if err := validateDest(dest); err != nil {
		return err
	}
	return e.whileOpen(ctx, func() { e.sched.ack(dest, seq) })
}

// whileOpen runs fn unless ctx has ended or Close has begun; Close waits for it.
func (e *engine) whileOpen(ctx context.Context, fn func()) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	e.mu.RLock()
	defer e.mu.RUnlock()
	if e.closed {
		return ErrClosed
	}
	fn()
	return nil
}

// Retry implements Queue.Retry. A zero at means due now. Reasons longer than
// maxReason bytes are truncated.
func (e *engine) Retry(ctx context.Context, dest string, seq uint64, at time.Time, reason string) error {
	if err := validateDest(dest); err != nil {
		return err
	}
	r := &request{op: opRetry, dest: dest, seq: seq, at: at, reason: truncate(reason)}
	return e.submit(ctx, r).err
}

// DeadLetter implements Queue.DeadLetter.
func (e *engine) DeadLetter(ctx context.Context, dest string, seq uint64, reason string) error {
	if err := validateDest(dest); err != nil {
		return err
	}
	r := &request{op: opDeadLetter, dest: dest, seq: seq, reason: truncate(reason)}
	return e.submit(ctx, r).err
}

// Delete implements Queue.Delete. The destination's meta goes too, so a destination
// appended to after Delete starts again at Seq 1. Watchers of dest are woken.
func (e *engine) Delete(ctx context.Context, dest string) error {
	if err := validateDest(dest); err != nil {
		return err
	}
	return e.submit(ctx, &request{op: opDelete, dest: dest}).err
}

// Replay implements DeadLetters.Replay.
func (e *engine) Replay(ctx context.Context, id string) (Entry, error) {
	if err := validateID(id); err != nil {
		return Entry{}, err
	}
	res := e.submit(ctx, &request{op: opReplay, id: id})
	return res.entry, res.err
}

// Next implements Scheduler.Next.
func (e *engine) Next(ctx context.Context, prefix string) (string, error) {
	return e.sched.next(ctx, prefix)
}

// Release implements Scheduler.Release.
func (e *engine) Release(dest string) { e.sched.release(dest) }

// Watch implements Scheduler.Watch. After Close the channel holds one signal, so a
// watcher wakes and finds ErrClosed on its next Read.
func (e *engine) Watch(dest string) (<-chan struct{}, func()) { return e.sched.watch(dest) }

// KeysWritten reports how many keys committed transactions have set or deleted since
// open: what storage pays for, as benchmarks and metrics count it.
func (e *engine) KeysWritten() int64 { return e.keys.Load() }

// Dests implements Stats.Dests; the list is sorted by destination id.
func (e *engine) Dests(prefix string) []DestStats { return e.sched.destList(prefix) }

// DestStats implements Stats.DestStats.
func (e *engine) DestStats(dest string) DestStats { return e.sched.destStats(dest) }

// Close stops accepting work (later calls get ErrClosed), writes a last checkpoint,
// lets the writer commit everything already submitted, wakes blocked Next callers
// with ErrClosed, and closes storage. It waits for every goroutine the engine
// started. Calling it again returns the first call's result.
func (e *engine) Close() error {
	e.closeOnce.Do(func() { e.closeErr = e.close() })
	return e.closeErr
}

func (e *engine) close() error {
	e.mu.Lock() // waits for Acks and submits in progress
	e.closed = true
	e.mu.Unlock()
	close(e.cpStop)
	<-e.cpDone
	cpErr := e.finalCheckpoint()
	close(e.reqs)
	<-e.done
	e.sched.close()
	e.mu.Lock() // readers still inside kv finish first
	defer e.mu.Unlock()
	if err := e.kv.close(); err != nil {
		return fmt.Errorf("queue: close storage: %w", err)
	}
	if cpErr != nil {
		return fmt.Errorf("queue: last checkpoint (acknowledgements since the previous one will be delivered again): %w", cpErr)
	}
	return nil
}

// finalCheckpoint writes the last checkpoint once no Ack or Stage can come: straight
// to the writer, which still runs.
func (e *engine) finalCheckpoint() error {
	e.cpMu.Lock()
	defer e.cpMu.Unlock()
	r := &request{op: opCheckpoint, took: &taken{}, done: make(chan result, 1)}
	e.reqs <- r
	err := (<-r.done).err
	e.checkpointed(r, err)
	return err
}

// reading runs fn while storage is guaranteed open.
func (e *engine) reading(ctx context.Context, fn func(kvReader) error) error {
	var err error
	if open := e.whileOpen(ctx, func() { err = e.kv.view(fn) }); open != nil {
		return open
	}
	return err
}
