package queue

import (
	"errors"
	"fmt"
	"time"
)

// plan turns one request into mutations. It reads through the batch's transaction, so
// it sees what earlier requests of the batch wrote, and records its destination
// changes apart, so a request that fails leaves the batch untouched.
type plan struct {
	e     *engine
	b     *batch
	views []*destView          // destinations this request changes
	index map[string]*destView // views by name, once there are many
	muts  []mutation
	now   time.Time
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
		return p.append(r.write, r.vals, r.at)
	case opAck:
		return result{err: p.ack(r.dest, r.seq)}
	case opRetry:
		return result{err: p.retry(r.dest, r.seq, r.at, r.reason)}
	case opDeadLetter:
		return result{err: p.deadLetter(r.dest, r.seq, r.reason)}
	case opDelete:
		return result{err: p.delete(r.dest)}
	case opReplay:
		return p.replay(r.id)
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

func (p *plan) putMeta(v *destView) { p.set(metaKey(v.name), encodeMeta(v.meta)) }

// append queues w's entries, encoded as vals at enqueue time now.
func (p *plan) append(w Write, vals [][]byte, now time.Time) result {
	for i, e := range w.Entries {
		if err := p.notDead(e.ID); err != nil {
			return result{err: fmt.Errorf("entry %d of write: %w", i, err)}
		}
	}
	seqs := make([]uint64, len(w.Entries))
	p.views = make([]*destView, 0, min(len(w.Entries), planIndexAt))
	for i, e := range w.Entries {
		seqs[i] = p.push(e.Dest, now, vals[i])
	}
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

// push adds an entry (encoded as val, enqueued at t) at the tail of dest and
// returns its seq.
func (p *plan) push(dest string, t time.Time, val []byte) uint64 {
	v := p.view(dest)
	if !v.exists {
		v.exists, v.meta = true, destMeta{Head: 1, Next: 1}
		p.putMeta(v) // appends leave the meta alone: open finds Next from the keys
	}
	if v.meta.depth() == 0 {
		v.oldest = t
	}
	seq := v.meta.Next
	v.meta.Next++
	v.appended = true
	p.set(entryKey(dest, seq), val)
	return seq
}

func (p *plan) ack(dest string, seq uint64) error {
	v := p.view(dest)
	if !v.exists || seq < v.meta.Head || v.meta.depth() == 0 {
		return nil
	}
	last := min(seq, v.meta.Next-1)
	for s := v.meta.Head; s <= last; s++ {
		p.del(entryKey(dest, s))
	}
	return p.moveHead(v, last+1)
}

// moveHead makes newHead the head of v: attempts and due time start afresh.
func (p *plan) moveHead(v *destView, newHead uint64) error {
	v.meta.Head, v.meta.Attempts, v.meta.LastError = newHead, 0, ""
	v.headMoved, v.retried, v.oldest = true, false, time.Time{}
	if newHead < v.meta.Next {
		b, err := p.b.txn.get(entryKey(v.name, newHead))
		if err != nil {
			return fmt.Errorf("queue: read new head %q/%d: %w", v.name, newHead, err)
		}
		v.oldest = enqueuedOf(b)
	}
	p.putMeta(v)
	return nil
}

func (p *plan) head(dest string, seq uint64) (*destView, error) {
	v := p.view(dest)
	if !v.exists || v.meta.depth() == 0 || seq != v.meta.Head {
		return nil, fmt.Errorf("dest %q seq %d (head %d, depth %d): %w",
			dest, seq, v.meta.Head, v.meta.depth(), ErrNotHead)
	}
	return v, nil
}

func (p *plan) retry(dest string, seq uint64, at time.Time, reason string) error {
	v, err := p.head(dest, seq)
	if err != nil {
		return err
	}
	v.meta.Attempts++
	v.meta.LastError = reason
	v.retried, v.retryAt = true, at
	p.putMeta(v)
	return nil
}

func (p *plan) deadLetter(dest string, seq uint64, reason string) error {
	v, err := p.head(dest, seq)
	if err != nil {
		return err
	}
	b, err := p.b.txn.get(entryKey(dest, seq))
	if err != nil {
		return fmt.Errorf("queue: read head %q/%d: %w", dest, seq, err)
	}
	e, err := decodeEntry(dest, seq, b)
	if err != nil {
		return err
	}
	e.Attempts, e.LastError = v.meta.Attempts, v.meta.LastError
	p.set(deadKey(e.ID), encodeDead(DeadLetter{Entry: e, Reason: reason, DeadAt: p.now}))
	p.e.dead.add(e.ID) // even if this commit fails: a false positive costs a lookup
	p.del(entryKey(dest, seq))
	return p.moveHead(v, seq+1)
}

func (p *plan) delete(dest string) error {
	v := p.view(dest)
	if !v.exists {
		return nil
	}
	for s := v.meta.Head; s < v.meta.Next; s++ {
		p.del(entryKey(dest, s))
	}
	p.del(metaKey(dest))
	*v = destView{name: dest, deleted: true}
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
	e.Seq = p.push(e.Dest, e.Enqueued, encodeEntry(e))
	return result{entry: e}
}
