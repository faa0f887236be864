package queue

import (
	"errors"
	"fmt"
	"time"
)

// plan turns one request into mutations, and into the effects the scheduler applies
// once they are committed. It sees what earlier requests of the batch did through the
// batch's views and transaction, and records its own destination changes apart, so a
// request that fails leaves the batch untouched.
type plan struct {
	e       *engine
	b       *batch
	views   []*destView          // destinations this request changes
	index   map[string]*destView // views by name, once there are many
	muts    []mutation
	logs    []*encodedLog
	effects []effect
	now     time.Time
}

// planIndexAt is how many views a plan searches linearly before it indexes them:
// most requests touch one destination, a chat change ten.
const planIndexAt = 16

func newPlan(e *engine, b *batch) *plan {
	return &plan{e: e, b: b, now: time.Now()}
}

func (p *plan) run(r *request) result {
	switch r.op {
	case opAppend:
		return p.append(r.write, r.logs)
	case opRetry:
		return result{err: p.retry(r.dest, r.seq, r.at, r.reason)}
	case opDeadLetter:
		return result{err: p.deadLetter(r.dest, r.seq, r.reason)}
	case opDelete:
		return result{err: p.delete(r.dest)}
	case opReplay:
		return p.replay(r.id)
	case opCheckpoint:
		return p.checkpoint(r.took)
	}
	return result{err: fmt.Errorf("queue: unknown op %d: %w", r.op, ErrBadArguments)}
}

// view returns dest as this request sees it: its own changes, else as the writer
// last left it.
func (p *plan) view(dest string) *destView {
	if v := p.find(dest); v != nil {
		return v
	}
	v := p.e.view(p.b, dest)
	p.views = append(p.views, &v)
	switch {
	case p.index != nil:
		p.index[dest] = &v
	case len(p.views) > planIndexAt:
		p.index = make(map[string]*destView, 2*len(p.views))
		for _, v := range p.views {
			p.index[v.name] = v
		}
	}
	return &v
}

func (p *plan) find(dest string) *destView {
	if p.index != nil {
		return p.index[dest]
	}
	for _, v := range p.views {
		if v.name == dest {
			return v
		}
	}
	return nil
}

func (p *plan) set(k, v []byte) { p.muts = append(p.muts, mutation{key: k, value: v}) }
func (p *plan) del(k []byte)    { p.muts = append(p.muts, mutation{key: k, del: true}) }

func (p *plan) putMeta(v *destView) {
	p.set(metaKey(v.name), encodeMeta(destMeta{Head: v.head, Since: v.since, Attempts: v.attempts, LastError: v.lastError}))
}

// append queues w's entries, encoded as logs, and writes its records.
func (p *plan) append(w Write, logs []*encodedLog) result {
	for i, e := range w.Entries {
		if err := p.notDead(e.ID); err != nil {
			return result{err: fmt.Errorf("entry %d of write: %w", i, err)}
		}
	}
	seqs := make([]uint64, 0, len(w.Entries))
	p.views = make([]*destView, 0, min(len(w.Entries), planIndexAt))
	for _, l := range logs {
		seqs = append(seqs, p.pushLog(l)...)
	}
	p.e.staged.forget(w.Records)
	for _, r := range w.Records {
		if r.Value == nil {
			p.del(recordKey(r.Key))
		} else {
			p.set(recordKey(r.Key), r.Value)
		}
	}
	return result{seqs: seqs}
}

func (p *plan) notDead(id string) error {
	if !p.e.dead.mayContain(id) {
		return nil
	}
	_, err := p.b.txn.get(deadKey(id))
	switch {
	case err == nil:
		return fmt.Errorf("id %q is dead-lettered: %w", id, ErrDuplicateID)
	case errors.Is(err, errNoKey):
		return nil
	}
	return fmt.Errorf("queue: check dead letters: %w", err)
}

// pushLog gives l the next log id and each of its entries the next seq of its
// destination, and writes it.
func (p *plan) pushLog(l *encodedLog) []uint64 {
	l.id = p.e.nextLog
	p.e.nextLog++
	seqs := make([]uint64, len(l.entries))
	for i := range l.entries {
		seqs[i] = p.push(l, i)
	}
	p.set(logKey(l.id), l.val)
	p.logs = append(p.logs, l)
	return seqs
}

// push assigns entry i of l the next seq of its destination, creating the
// destination (its meta, with since = l's id) if it does not exist.
func (p *plan) push(l *encodedLog, i int) uint64 {
	dest := l.entries[i].Dest
	v := p.view(dest)
	ef := effect{kind: effPush, dest: dest, ref: entryRef{log: l.id, idx: uint32(i)}}
	if !v.exists || v.deleted {
		*v = destView{name: dest, exists: true, since: l.id, head: 1, next: 1}
		ef.create, ef.since = true, l.id
		p.putMeta(v)
	}
	ef.seq = v.next
	v.next++
	l.setSeq(i, ef.seq)
	p.effects = append(p.effects, ef)
	return ef.seq
}

// head checks that seq is the head of dest. The head is read from the scheduler, not
// from the batch: Ack moves it there directly.
func (p *plan) head(dest string, seq uint64) (*destView, error) {
	v := p.view(dest)
	if cur := p.e.sched.snapshot(dest); v.exists && cur.exists && cur.since == v.since {
		v.head, v.attempts, v.lastError = cur.head, cur.attempts, cur.lastError
	}
	if !v.exists || v.next == v.head || seq != v.head {
		return nil, fmt.Errorf("dest %q seq %d (head %d, depth %d): %w",
			dest, seq, v.head, v.next-v.head, ErrNotHead)
	}
	return v, nil
}

func (p *plan) retry(dest string, seq uint64, at time.Time, reason string) error {
	v, err := p.head(dest, seq)
	if err != nil {
		return err
	}
	v.attempts++
	v.lastError = reason
	p.putMeta(v)
	p.effects = append(p.effects, effect{kind: effRetry, dest: dest, seq: seq, at: at,
		attempts: v.attempts, reason: reason})
	return nil
}

func (p *plan) deadLetter(dest string, seq uint64, reason string) error {
	v, err := p.head(dest, seq)
	if err != nil {
		return err
	}
	es, err := p.e.readEntries(p.e.kv.view, dest, seq-1, 1)
	if err != nil || len(es) == 0 {
		return fmt.Errorf("queue: read head %q/%d: %w", dest, seq, errors.Join(err, errCorrupt))
	}
	e := es[0]
	p.set(deadKey(e.ID), encodeDead(DeadLetter{Entry: e, Reason: reason, DeadAt: p.now}))
	p.e.dead.add(e.ID) // even if this commit fails: a false positive costs a lookup
	v.head, v.attempts, v.lastError = seq+1, 0, ""
	p.putMeta(v)
	p.effects = append(p.effects, effect{kind: effDead, dest: dest, seq: seq})
	return nil
}

func (p *plan) delete(dest string) error {
	v := p.view(dest)
	if !v.exists {
		return nil
	}
	p.del(metaKey(dest))
	*v = destView{name: dest, deleted: true}
	p.effects = append(p.effects, effect{kind: effDelete, dest: dest})
	return nil
}

func (p *plan) replay(id string) result {
	b, err := p.b.txn.get(deadKey(id))
	if errors.Is(err, errNoKey) {
		return result{err: fmt.Errorf("dead letter %q: %w", id, ErrNotFound)}
	}
	if err != nil {
		return result{err: fmt.Errorf("queue: read dead letter %q: %w", id, err)}
	}
	dl, err := decodeDead(id, b)
	if err != nil {
		return result{err: err}
	}
	p.del(deadKey(id))
	e := Entry{ID: dl.ID, Dest: dl.Dest, Data: dl.Data, Enqueued: dl.Enqueued}
	l := encodeLogs([]Entry{e}, e.Enqueued)[0]
	e.Seq = p.pushLog(l)[0]
	return result{entry: e}
}
