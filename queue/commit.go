package queue

import (
	"errors"
	"fmt"
	"runtime"
	"time"
)

// Group commit. One goroutine, the writer, owns every write. It takes all requests
// waiting (up to maxBatch), plans each against the state left by the ones before it,
// puts them in one transaction and commits it with one fsync. Only then does it
// publish the new state to the scheduler and reply to each caller with its own
// result. A request that fails validation is answered at once and writes nothing; the
// others go on. A transaction that grows too big is committed and the rest continue in
// a fresh one.
//
// Commits are deliberately not pipelined: with callers that wait for their reply, a
// second batch forming during the first one's fsync splits the callers into two
// alternating groups, and each fsync then carries half as many entries (measured:
// ~22 instead of ~60 appends per commit with 64 producers, a third less throughput).

type opKind uint8

const (
	opAppend opKind = iota
	opAck
	opRetry
	opDeadLetter
	opDelete
	opReplay
	opCheckpoint
	opCompact
)

type request struct {
	op     opKind
	write  Write
	logs   []*encodedLog // write.Entries encoded
	took   *taken        // opCheckpoint: what it took to write
	dest   string
	seq    uint64
	at     time.Time
	reason string
	id     string
	done   chan result
}

type result struct {
	seqs  []uint64
	entry Entry
	err   error
}

type mutation struct {
	key, value []byte
	del        bool
}

// planned is a request turned into mutations, waiting for its batch to commit.
type planned struct {
	r       *request
	muts    []mutation
	logs    []*encodedLog // log values it writes
	effects []effect      // what the scheduler applies once committed
	res     result
}

// batch is one transaction being filled.
type batch struct {
	txn   kvTxn
	views map[string]*destView // destinations changed so far
	done  []planned
}

func (e *engine) newBatch() *batch {
	return &batch{txn: e.kv.begin(), views: make(map[string]*destView)}
}

func (e *engine) runWriter() {
	defer close(e.done)
	reqs := make([]*request, 0, e.maxBatch)
	target := 0 // recent largest batch, decaying: how many callers are busy
	for r := range e.reqs {
		reqs = e.gather(append(reqs[:0], r), target)
		target = max(len(reqs), target-target/8)
		e.commitBatch(reqs)
	}
}

// gather adds the requests already waiting. The callers just answered are usually
// about to send their next request, so while the batch is smaller than recent ones
// it yields the CPU to them a few times first: without this, batches alternate
// between the callers that made it and those that did not. An idle queue (target
// <= 1) never waits.
func (e *engine) gather(reqs []*request, target int) []*request {
	reqs = e.drain(reqs)
	for spin := 0; len(reqs) < target && spin < maxGatherSpins; spin++ {
		runtime.Gosched()
		reqs = e.drain(reqs)
	}
	return reqs
}

const maxGatherSpins = 16

// drain adds the requests already waiting, without blocking.
func (e *engine) drain(reqs []*request) []*request {
	for len(reqs) < e.maxBatch {
		select {
		case r, ok := <-e.reqs:
			if !ok {
				return reqs
			}
			reqs = append(reqs, r)
		default:
			return reqs
		}
	}
	return reqs
}

func (e *engine) commitBatch(reqs []*request) {
	b := e.newBatch()
	space := e.kv.space()
	for _, r := range reqs {
		if !space.allows(r.op) {
			r.done <- result{err: space.err()}
			continue
		}
		b = e.add(b, r)
	}
	e.flush(b)
}

// add plans r and puts its mutations in b, returning the batch to continue with.
func (e *engine) add(b *batch, r *request) *batch {
	switch r.op {
	case opCompact: // not a transaction: storage works alone
		e.flush(b)
		r.done <- result{err: noSpace(e.kv.compact())}
		return e.newBatch()
	case opCheckpoint: // may exceed one transaction: committed in parts, alone
		e.flush(b)
		p := newPlan(e, b)
		p.run(r)
		r.done <- result{err: e.commitInParts(p.muts)}
		return e.newBatch()
	}
	p := newPlan(e, b)
	res := p.run(r)
	if res.err != nil {
		r.done <- res
		return b
	}
	return e.place(b, planned{r: r, muts: p.muts, logs: p.logs, effects: p.effects, res: res}, p.views)
}

// place writes pl into b's transaction. When the transaction is full it commits what
// b had and retries pl alone in a fresh one.
func (e *engine) place(b *batch, pl planned, views []*destView) *batch {
	err := applyMuts(b.txn, pl.muts)
	if err != nil {
		b = e.rebuild(b)
		if errors.Is(err, errTxnFull) && len(b.done) > 0 {
			e.flush(b)
			b = e.newBatch()
			err = applyMuts(b.txn, pl.muts)
		}
	}
	if err != nil {
		b = e.rebuild(b)
		pl.r.done <- result{err: tooBig(err)}
		return b
	}
	for _, v := range views {
		b.views[v.name] = v
	}
	b.done = append(b.done, pl)
	return b
}

func tooBig(err error) error {
	if errors.Is(err, errTxnFull) {
		return fmt.Errorf("%w: the write does not fit in one atomic commit (%v)", ErrEntryTooBig, err)
	}
	return fmt.Errorf("queue: write: %w", err)
}

// rebuild replaces b's transaction, which may hold part of a failed request, with a
// fresh one holding only what b had accepted.
func (e *engine) rebuild(b *batch) *batch {
	b.txn.discard()
	b.txn = e.kv.begin()
	for _, pl := range b.done {
		if err := applyMuts(b.txn, pl.muts); err != nil {
			// They fitted before; failing now means storage is broken.
			e.failAll(b, fmt.Errorf("queue: rebuild transaction: %w", err))
			return e.newBatch()
		}
	}
	return b
}

func applyMuts(txn kvTxn, muts []mutation) error {
	for _, m := range muts {
		var err error
		if m.del {
			err = txn.del(m.key)
		} else {
			err = txn.set(m.key, m.value)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// flush commits b, publishes its changes, then replies to every request in it.
func (e *engine) flush(b *batch) {
	if len(b.done) == 0 {
		b.txn.discard()
		return
	}
	start := time.Now()
	if err := b.txn.commit(); err != nil {
		e.log.Error().Err(err).Int("requests", len(b.done)).Msg("queue commit failed")
		e.failAll(b, fmt.Errorf("queue: commit: %w", err))
		return
	}
	if e.onCommit != nil {
		e.onCommit(len(b.done), time.Since(start))
	}
	keys := 0
	for _, pl := range b.done {
		keys += len(pl.muts)
	}
	e.keys.Add(int64(keys))
	e.cache.putAll(b.done)
	e.sched.publish(b.done)
	e.commits.Add(1)
	e.committed.Add(int64(len(b.done)))
	for _, pl := range b.done {
		pl.r.done <- pl.res
	}
}

// commitInParts commits muts in order, in as many transactions as they need. A crash
// between two leaves the earlier ones applied: checkpoints order their mutations so
// that any prefix is safe (records, then cursors, then log deletions).
func (e *engine) commitInParts(muts []mutation) error {
	for len(muts) > 0 {
		txn := e.kv.begin()
		n := 0
		for ; n < len(muts); n++ {
			if err := applyMuts(txn, muts[n:n+1]); err != nil {
				if !errors.Is(err, errTxnFull) || n == 0 {
					txn.discard()
					return err
				}
				break
			}
		}
		if err := txn.commit(); err != nil {
			return fmt.Errorf("queue: commit checkpoint: %w", err)
		}
		e.keys.Add(int64(n))
		muts = muts[n:]
	}
	return nil
}

func (e *engine) failAll(b *batch, err error) {
	b.txn.discard()
	for _, pl := range b.done {
		pl.r.done <- result{err: err}
	}
	b.done = nil
}

// view returns dest as the writer last left it: changed in b, or as published.
func (e *engine) view(b *batch, dest string) destView {
	if v, ok := b.views[dest]; ok {
		return *v
	}
	return e.sched.snapshot(dest)
}
