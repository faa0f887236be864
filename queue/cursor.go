package queue

import "time"

// The in-memory side of the log: per destination a cursor (head) and the refs of its
// queued entries; per log value how many of its entries are still queued. All of it
// lives under the scheduler's lock, so Ack is a few memory operations and no write:
// moved cursors are written by the next checkpoint (checkpoint.go).

// entryRef locates one queued entry: its log value and its index there.
type entryRef struct {
	log uint64
	idx uint32
}

// logLive counts the queued entries of one log value.
type logLive struct {
	live int32
	size int32 // bytes of the value
	at   int64 // enqueue time of its entries, Unix nanoseconds
}

// effect is one committed change for the scheduler to apply, in commit order.
type effect struct {
	kind     effectKind
	dest     string
	seq      uint64
	ref      entryRef // effPush
	create   bool     // effPush: the push creates this incarnation, since the log id
	since    uint64
	at       time.Time // effRetry: due time
	attempts int       // effRetry
	reason   string    // effRetry
}

type effectKind uint8

const (
	effPush effectKind = iota
	effRetry
	effDead
	effDelete
)

// publish applies a commit, under one lock: each request's log values, then its
// effects, in commit order, waking whoever waits on them.
func (s *scheduler) publish(done []planned) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, pl := range done {
		for _, l := range pl.logs {
			s.logs[l.id] = logLive{live: int32(len(l.entries)), size: int32(len(l.val)),
				at: l.entries[0].Enqueued.UnixNano()}
		}
		for i := range pl.effects {
			s.applyLocked(&pl.effects[i])
		}
	}
}

func (s *scheduler) applyLocked(ef *effect) {
	st := s.dests[ef.dest]
	switch ef.kind {
	case effPush:
		st = s.pushLocked(st, ef)
	case effRetry:
		if st == nil || st.gone || st.head != ef.seq {
			return
		}
		st.attempts, st.lastError, st.dueAt = ef.attempts, ef.reason, ef.at
	case effDead:
		if st == nil || st.gone || st.head != ef.seq || st.depth() == 0 {
			return
		}
		s.advanceLocked(st, 1)
		delete(s.dirty, st.name) // DeadLetter wrote the cursor itself
	case effDelete:
		if st != nil && !st.gone {
			s.dropRefsLocked(st.refs)
			delete(s.dirty, st.name)
			s.removeLocked(st)
		}
		s.signalLocked(ef.dest)
		return
	}
	s.rescheduleLocked(st)
}

// pushLocked adds one appended entry at the tail of its destination.
func (s *scheduler) pushLocked(st *destState, ef *effect) *destState {
	if st == nil {
		st = &destState{name: ef.dest, heapIdx: -1}
		s.dests[ef.dest] = st
	}
	if ef.create || st.gone {
		st.gone, st.since, st.head, st.next, st.refs = false, ef.since, ef.seq, ef.seq, nil
		st.attempts, st.lastError, st.dueAt = 0, "", time.Time{}
	}
	st.refs = append(st.refs, ef.ref)
	st.next = ef.seq + 1
	s.signalLocked(ef.dest)
	return st
}

// advanceLocked moves st's cursor past its first n entries: the next head is due at
// once, with no attempts.
func (s *scheduler) advanceLocked(st *destState, n int) {
	s.dropRefsLocked(st.refs[:n])
	st.refs = st.refs[n:]
	if len(st.refs) == 0 {
		st.refs = nil // let the array go
	}
	st.head += uint64(n)
	st.attempts, st.lastError, st.dueAt = 0, "", time.Time{}
	s.dirty[st.name] = struct{}{}
}

// dropRefsLocked counts refs as no longer queued; a log value left with none is
// freed: dropped from the read cache now, deleted from storage at the next checkpoint.
func (s *scheduler) dropRefsLocked(refs []entryRef) {
	for _, r := range refs {
		l := s.logs[r.log]
		l.live--
		if l.live > 0 {
			s.logs[r.log] = l
			continue
		}
		delete(s.logs, r.log)
		s.free = append(s.free, r.log)
		s.freed += int64(l.size)
		s.onFree(r.log)
	}
}

// ack implements Queue.Ack in memory.
func (s *scheduler) ack(dest string, seq uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.dests[dest]
	if st == nil || st.gone || seq < st.head || st.depth() == 0 {
		return
	}
	s.advanceLocked(st, int(min(seq, st.next-1)-st.head+1))
	s.rescheduleLocked(st)
}

func (s *scheduler) oldestLocked(st *destState) time.Time {
	if len(st.refs) == 0 {
		return time.Time{}
	}
	return time.Unix(0, s.logs[st.refs[0].log].at)
}

// readView is what Read needs of a destination: refs of up to limit entries from
// seq first on, and the head's attempts.
type readView struct {
	first     uint64
	refs      []entryRef
	head      uint64
	attempts  int
	lastError string
}

func (s *scheduler) readView(dest string, from uint64, limit int) (readView, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.dests[dest]
	if st == nil || st.gone {
		return readView{}, false
	}
	from = max(from, st.head)
	if from >= st.next {
		return readView{}, true
	}
	i := int(from - st.head)
	n := min(limit, len(st.refs)-i)
	return readView{first: from, refs: append([]entryRef(nil), st.refs[i:i+n]...), head: st.head,
		attempts: st.attempts, lastError: st.lastError}, true
}

// cursors is what one checkpoint writes: the moved cursors and the log values to
// delete, taken together so that no log value is deleted before the cursors that
// made it garbage are durable.
type cursors struct {
	metas map[string]destMeta
	free  []uint64
}

func (s *scheduler) takeCursors() cursors {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := cursors{metas: make(map[string]destMeta, len(s.dirty)), free: s.free}
	for name := range s.dirty {
		if st := s.dests[name]; st != nil && !st.gone {
			c.metas[name] = st.meta()
		}
	}
	clear(s.dirty)
	s.free = nil
	return c
}

// restoreCursors gives back what a failed checkpoint did not write.
func (s *scheduler) restoreCursors(c cursors) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for name := range c.metas {
		s.dirty[name] = struct{}{}
	}
	s.free = append(s.free, c.free...)
}

// freedBytes reports the bytes of log values freed since the last compaction.
func (s *scheduler) freedBytes() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.freed
}

// compacted forgets n freed bytes, reclaimed by a compaction.
func (s *scheduler) compacted(n int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.freed -= n
}

// pending reports whether a checkpoint has anything to write.
func (s *scheduler) pending() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.dirty) > 0 || len(s.free) > 0
}
