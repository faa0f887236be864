package queue

import (
	"context"
	"errors"
	"sync"
	"time"
)

// Checkpoints. Ack moves a cursor in memory and Stage keeps records in memory; a
// checkpoint writes both (with the deletion of log values no cursor needs any more) in
// one commit, every checkpoint interval and at Close. A crash loses at most the last
// interval's cursor moves and staged records: those entries are delivered again, which
// at-least-once allows, and nothing appended is lost. The cursors are taken before
// the staged records, so a record staged before an Ack is always as durable as the
// Ack (callers record an outcome, then acknowledge).

// DefaultCheckpointInterval is how often moved cursors and staged records are written.
const DefaultCheckpointInterval = 100 * time.Millisecond

// staged holds records written with Stage until a checkpoint writes them.
type staged struct {
	mu sync.Mutex
	m  map[string][]byte // a nil value deletes the key
}

func newStaged() *staged { return &staged{m: make(map[string][]byte)} }

func (s *staged) put(recs []Record) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, r := range recs {
		var v []byte
		if r.Value != nil {
			v = append(make([]byte, 0, len(r.Value)), r.Value...)
		}
		s.m[string(r.Key)] = v
	}
}

// get returns the staged value of key; found is false when key is not staged.
func (s *staged) get(key []byte) (val []byte, found bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.m[string(key)]
	if v != nil {
		v = append([]byte(nil), v...)
	}
	return v, ok
}

// forget drops staged values that a durable write of the same keys supersedes.
func (s *staged) forget(recs []Record) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.m) == 0 {
		return
	}
	for _, r := range recs {
		delete(s.m, string(r.Key))
	}
}

func (s *staged) take() map[string][]byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.m) == 0 {
		return nil
	}
	m := s.m
	s.m = make(map[string][]byte)
	return m
}

// restore gives back what a failed checkpoint did not write, unless staged again since.
func (s *staged) restore(m map[string][]byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for k, v := range m {
		if _, again := s.m[k]; !again {
			s.m[k] = v
		}
	}
}

func (s *staged) empty() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.m) == 0
}

// taken is what one checkpoint took to write, given back if its commit fails.
type taken struct {
	cursors cursors
	records map[string][]byte
}

// runCheckpoints writes a checkpoint every interval until stop is closed, and has
// storage compacted when enough was freed.
func (e *engine) runCheckpoints(every time.Duration) {
	defer close(e.cpDone)
	t := time.NewTicker(every)
	defer t.Stop()
	var idle idleClock
	for {
		select {
		case <-e.cpStop:
			return
		case now := <-t.C:
			freed := e.sched.freedBytes()
			if err := e.checkpoint(); err != nil {
				e.checkpointFailed(err)
				continue
			}
			if e.compactDue(freed, idle.idleFor(e.commits.Load(), now)) {
				e.compact(freed)
			}
		}
	}
}

// checkpointFailed logs a failed checkpoint; a full disk only when it starts.
func (e *engine) checkpointFailed(err error) {
	if !errors.Is(err, ErrNoSpace) {
		e.log.Warn().Err(err).Msg("queue checkpoint failed; will retry")
		return
	}
	if !e.spaceLow.Swap(true) {
		e.log.Warn().Err(err).Msg("queue checkpoints wait for disk space; acknowledgements stay in memory")
	}
}

// compactIdle is how long the queue commits nothing before freed space is reclaimed
// however little it is, so that an idle server returns to its baseline.
const compactIdle = time.Second

func (e *engine) compactDue(freed int64, idle time.Duration) bool {
	return freed > 0 && (freed >= e.compactAt || idle >= compactIdle)
}

func (e *engine) compact(freed int64) {
	start := time.Now()
	if err := e.submit(context.Background(), &request{op: opCompact}).err; err != nil {
		e.log.Warn().Err(err).Msg("queue: reclaim space")
		return
	}
	e.sched.compacted(freed)
	e.log.Debug().Int64("freed", freed).Dur("took", time.Since(start)).Msg("queue storage compacted")
}

// idleClock tells how long a counter has not moved.
type idleClock struct {
	last  int64
	since time.Time
}

func (c *idleClock) idleFor(n int64, now time.Time) time.Duration {
	if n != c.last || c.since.IsZero() {
		c.last, c.since = n, now
	}
	return now.Sub(c.since)
}

// checkpoint writes the moved cursors, staged records and freed log values, if any.
// With nothing to write it still counts (OnCheckpoint): every Ack before it is durable.
func (e *engine) checkpoint() error {
	e.cpMu.Lock()
	defer e.cpMu.Unlock()
	if !e.sched.pending() && e.staged.empty() {
		e.checkpointed(nil, nil)
		return nil
	}
	r := &request{op: opCheckpoint, took: &taken{}}
	res := e.submit(context.Background(), r)
	e.checkpointed(r, res.err)
	return res.err
}

// checkpointed gives back what a failed checkpoint took, or reports a written one.
func (e *engine) checkpointed(r *request, err error) {
	if err != nil && r != nil {
		e.sched.restoreCursors(r.took.cursors)
		e.staged.restore(r.took.records)
		return
	}
	if r != nil && e.spaceLow.Swap(false) {
		e.log.Info().Msg("queue checkpoints written again")
	}
	if e.onCheckpoint != nil {
		e.onCheckpoint()
	}
}

// Stage implements Queue.Stage.
func (e *engine) Stage(ctx context.Context, recs ...Record) error {
	if err := validateRecords(recs); err != nil {
		return err
	}
	return e.whileOpen(ctx, func() { e.staged.put(recs) })
}

// checkpoint plans the cursors, then the staged records (taken in that order), as
// mutations written records first, then cursors, then log deletions: committed in
// parts, any prefix of them is safe after a crash.
func (p *plan) checkpoint(t *taken) result {
	t.cursors = p.e.sched.takeCursors()
	t.records = p.e.staged.take()
	for k, v := range t.records {
		if v == nil {
			p.del(recordKey([]byte(k)))
		} else {
			p.set(recordKey([]byte(k)), v)
		}
	}
	for name, m := range t.cursors.metas {
		p.set(metaKey(name), encodeMeta(m))
	}
	for _, id := range t.cursors.free {
		p.del(logKey(id))
	}
	return result{}
}
