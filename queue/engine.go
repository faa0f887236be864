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
// writer (commit.go), which owns the durable state; reads go to the store directly;
// the scheduler holds the in-memory picture the writer publishes after each commit.
type engine struct {
	kv    kvStore
	sched *scheduler
	dead  *deadFilter // owned by the writer
	log   zerolog.Logger
	reqs  chan *request
	done  chan struct{} // closed when the writer has exited

	maxBatch  int // requests per commit
	trimChunk int // entries removed per commit when Ack or Delete remove many

	mu     sync.RWMutex // shared by callers while they use kv or submit; Close takes it
	closed bool

	commits, committed atomic.Int64 // transactions and requests committed (benchmarks)
	onCommit           func(requests int, took time.Duration)
}

func newEngine(kv kvStore, log zerolog.Logger, maxBatch int) *engine {
	e := &engine{
		kv:        kv,
		sched:     newScheduler(),
		dead:      newDeadFilter(),
		log:       log,
		reqs:      make(chan *request, maxBatch),
		done:      make(chan struct{}),
		maxBatch:  maxBatch,
		trimChunk: 2048,
	}
	return e
}

// start loads every destination's meta (O(destinations)) and the dead letter ids
// into a fixed-size filter (a keys-only walk), and starts the writer. Every non-empty
// destination is due at once.
func (e *engine) start() error {
	views, err := loadDests(e.kv)
	if err != nil {
		return err
	}
	e.sched.publish(views)
	err = e.kv.view(func(r kvReader) error {
		return r.scanKeys([]byte{nsDead}, func(k []byte) error {
			e.dead.add(string(k[1:]))
			return nil
		})
	})
	if err != nil {
		return fmt.Errorf("queue: load dead letter ids: %w", err)
	}
	go e.runWriter()
	return nil
}

func loadDests(kv kvStore) (map[string]*destView, error) {
	views := make(map[string]*destView)
	err := kv.view(func(r kvReader) error {
		return r.scan([]byte{nsMeta}, nil, func(k, v []byte) error {
			m, err := decodeMeta(v)
			if err != nil {
				return fmt.Errorf("queue: load %q: %w", k[1:], err)
			}
			dest := string(k[1:])
			views[dest] = &destView{name: dest, meta: m, exists: true}
			return nil
		})
	})
	if err != nil {
		return nil, err
	}
	return views, kv.view(func(r kvReader) error { return loadTails(r, views) })
}

// loadTails finds each destination's next seq (one past its last entry: appends do
// not rewrite the meta) and the enqueue time of its head. The reverse seek for the
// last entry runs only when something lies beyond the meta's Next: in a destination
// whose entries were all acknowledged, it would walk back through every deletion
// marker not yet compacted away (30 s for 10,000 channels after a kill -9).
func loadTails(r kvReader, views map[string]*destView) error {
	for _, v := range views {
		if !r.hasFrom(entryPrefix(v.name), entryKey(v.name, v.meta.Next)) {
			continue // nothing appended since the meta was written: Next is right
		}
		last, err := r.last(entryPrefix(v.name))
		if err != nil {
			return fmt.Errorf("queue: load tail of %q: %w", v.name, err)
		}
		if last != nil {
			v.meta.Next = max(v.meta.Next, seqOfEntryKey(last)+1)
		}
		if v.meta.depth() == 0 {
			continue
		}
		b, err := r.get(entryKey(v.name, v.meta.Head))
		if err != nil {
			return fmt.Errorf("queue: load head of %q: %w", v.name, err)
		}
		v.oldest = enqueuedOf(b)
	}
	return nil
}

// submit hands r to the writer and waits for its result. Once submitted, the request
// runs to completion even if ctx ends, so that an error always means "not applied".
func (e *engine) submit(ctx context.Context, r *request) result {
	if err := ctx.Err(); err != nil {
		return result{err: err}
	}
	r.done = make(chan result, 1)
	e.mu.RLock()
	if e.closed {
		e.mu.RUnlock()
		return result{err: ErrClosed}
	}
	select {
	case e.reqs <- r:
	case <-ctx.Done():
		e.mu.RUnlock()
		return result{err: ctx.Err()}
	}
	e.mu.RUnlock()
	return <-r.done
}

// Append implements Queue.Append. Entries and records are validated before anything
// is written: one bad entry refuses the whole Write. Concurrent callers share one
// commit and one fsync. The entries are encoded here, on the caller's goroutine: the
// writer's time is the one every caller waits for.
func (e *engine) Append(ctx context.Context, w Write) ([]uint64, error) {
	if err := validateWrite(w); err != nil {
		return nil, err
	}
	res := e.submit(ctx, appendRequest(w))
	return res.seqs, res.err
}

func appendRequest(w Write) *request {
	now := time.Now()
	return &request{op: opAppend, write: w, at: now, vals: encodeEntries(w.Entries, now)}
}

// Ack implements Queue.Ack.
func (e *engine) Ack(ctx context.Context, dest string, seq uint64) error {
	if err := validateDest(dest); err != nil {
		return err
	}
	return e.submit(ctx, &request{op: opAck, dest: dest, seq: seq}).err
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

// Dests implements Stats.Dests; the list is sorted by destination id.
func (e *engine) Dests(prefix string) []DestStats { return e.sched.destList(prefix) }

// DestStats implements Stats.DestStats.
func (e *engine) DestStats(dest string) DestStats { return e.sched.destStats(dest) }

// Close stops accepting work (later calls get ErrClosed), lets the writer commit
// everything already submitted, wakes blocked Next callers with ErrClosed, and closes
// storage. It waits for every goroutine the engine started. Calling it again is a no-op.
func (e *engine) Close() error {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return nil
	}
	e.closed = true
	close(e.reqs)
	e.mu.Unlock()
	<-e.done
	e.sched.close()
	e.mu.Lock() // readers still inside kv finish first
	defer e.mu.Unlock()
	if err := e.kv.close(); err != nil {
		return fmt.Errorf("queue: close storage: %w", err)
	}
	return nil
}

// reading runs fn while storage is guaranteed open.
func (e *engine) reading(ctx context.Context, fn func(kvReader) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	e.mu.RLock()
	defer e.mu.RUnlock()
	if e.closed {
		return ErrClosed
	}
	return e.kv.view(fn)
}
