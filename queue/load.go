package queue

import (
	"fmt"
)

// load rebuilds the in-memory picture from storage: every destination's meta, then
// one walk of the log that indexes the live entries (see codec.go for what is live),
// then the dead letter ids into their filter (a keys-only walk). Log values left with
// no live entry are deleted by the first checkpoint.
func (e *engine) load() error {
	if err := e.findNextLog(); err != nil {
		return err
	}
	if err := e.migrateV1(); err != nil {
		return err
	}
	metas, err := e.loadMetas()
	if err != nil {
		return err
	}
	if err := e.loadLog(metas); err != nil {
		return err
	}
	err = e.kv.view(func(r kvReader) error {
		return r.scanKeys([]byte{nsDead}, func(k []byte) error {
			e.dead.add(string(k[1:]))
			return nil
		})
	})
	if err != nil {
		return fmt.Errorf("queue: load dead letter ids: %w", err)
	}
	return nil
}

func (e *engine) loadMetas() (map[string]*destState, error) {
	dests := make(map[string]*destState)
	err := e.kv.view(func(r kvReader) error {
		return r.scan([]byte{nsMeta}, nil, func(k, v []byte) error {
			m, err := decodeMeta(v)
			if err != nil {
				return fmt.Errorf("queue: load %q: %w", k[1:], err)
			}
			name := string(k[1:])
			dests[name] = &destState{name: name, since: m.Since, head: m.Head, next: m.Head,
				attempts: m.Attempts, lastError: m.LastError, heapIdx: -1}
			e.nextLog = max(e.nextLog, m.Since+1)
			return nil
		})
	})
	return dests, err
}

// findNextLog sets the next log id above every log value and every meta's since.
func (e *engine) findNextLog() error {
	return e.kv.view(func(r kvReader) error {
		last, err := r.last([]byte{nsLog})
		if err != nil || last == nil {
			return err
		}
		e.nextLog = max(e.nextLog, logIDOf(last)+1)
		return nil
	})
}

// loadLog walks the log in order, indexing live entries and counting them per value.
func (e *engine) loadLog(dests map[string]*destState) error {
	s := e.sched
	err := e.kv.view(func(r kvReader) error {
		return r.scan([]byte{nsLog}, nil, func(k, v []byte) error {
			id := logIDOf(k)
			e.nextLog = max(e.nextLog, id+1)
			es, _, d := decodeLogHeaders(v) // not the data: its pages stay on disk
			if d.err != nil {
				return fmt.Errorf("queue: log value %d: %w", id, errCorrupt)
			}
			live := int32(0)
			for i, x := range es {
				st := dests[x.Dest]
				if st == nil || id < st.since || x.Seq < st.head {
					continue
				}
				if x.Seq != st.next {
					return fmt.Errorf("queue: log value %d: %q seq %d follows %d: %w", id, x.Dest, x.Seq, st.next-1, errCorrupt)
				}
				st.refs = append(st.refs, entryRef{log: id, idx: uint32(i)})
				st.next++
				live++
			}
			if live == 0 {
				s.free = append(s.free, id)
				s.freed += int64(len(v))
				return nil
			}
			s.logs[id] = logLive{live: live, size: int32(len(v)), at: es[0].Enqueued.UnixNano()}
			return nil
		})
	})
	if err != nil {
		return err
	}
	e.nextLog = max(e.nextLog, 1)
	s.mu.Lock()
	defer s.mu.Unlock()
	for name, st := range dests {
		s.dests[name] = st
		s.rescheduleLocked(st)
	}
	return nil
}
