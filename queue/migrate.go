package queue

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// The first storage layout kept one key per entry ('e' len(dest):u16 dest seq:u64 →
// version | enqueued | id | data) and metas of version 1 (head, next, attempts, last
// error). migrateV1 rewrites such a directory into the log layout at open, one
// destination at a time: its entries become log values (committed in parts of at most
// maxLogValue), then one commit writes its new meta (since = the first of those
// values), then its old keys go. A crash anywhere leaves a directory the next open
// finishes: log values written before a crash are older than the since of the retry,
// so they are ignored and deleted like any garbage.

func (e *engine) migrateV1() error {
	var old []string
	err := e.kv.view(func(r kvReader) error {
		return r.scan([]byte{nsMeta}, nil, func(k, v []byte) error {
			if len(v) > 0 && v[0] == 1 {
				old = append(old, string(k[1:]))
			}
			return nil
		})
	})
	if err != nil {
		return err
	}
	for _, dest := range old {
		if err := e.migrateDest(dest); err != nil {
			return fmt.Errorf("queue: migrate %q to the log layout: %w", dest, err)
		}
	}
	return e.dropV1Keys()
}

// migrateDest moves one destination with a version 1 meta to the log layout.
func (e *engine) migrateDest(dest string) error {
	var m destMeta
	var es []Entry
	err := e.kv.view(func(r kvReader) error {
		v, err := r.get(metaKey(dest))
		if err != nil {
			return err
		}
		if m, err = decodeMetaV1(v); err != nil {
			return err
		}
		prefix := v1EntryPrefix(dest)
		return r.scan(prefix, nil, func(k, v []byte) error {
			x, err := decodeEntryV1(dest, binary.BigEndian.Uint64(k[len(k)-8:]), v)
			if x.Seq >= m.Head {
				es = append(es, x)
			}
			return err
		})
	})
	if err != nil {
		return err
	}
	m.Since = e.nextLog
	for len(es) > 0 {
		n := 1
		for size := entrySize(es[0]); n < len(es) && size+entrySize(es[n]) <= maxLogValue; n++ {
			size += entrySize(es[n])
		}
		if err := e.writeV1Part(es[:n]); err != nil {
			return err
		}
		es = es[n:]
	}
	return e.commitMuts([]mutation{{key: metaKey(dest), value: encodeMeta(m)}})
}

// writeV1Part writes entries (of one destination, in seq order) as one log value
// with their seqs and enqueue times (each part takes its first entry's time).
func (e *engine) writeV1Part(es []Entry) error {
	l := encodeLogs(es, es[0].Enqueued)[0]
	l.id = e.nextLog
	e.nextLog++
	for i := range es {
		l.setSeq(i, es[i].Seq)
	}
	return e.commitMuts([]mutation{{key: logKey(l.id), value: l.val}})
}

// dropV1Keys deletes every entry key of the first layout, a bounded number per commit.
func (e *engine) dropV1Keys() error {
	for {
		var muts []mutation
		err := e.kv.view(func(r kvReader) error {
			return r.scanKeys([]byte{nsV1}, func(k []byte) error {
				muts = append(muts, mutation{key: append([]byte(nil), k...), del: true})
				if len(muts) == 2048 {
					return errStopScan
				}
				return nil
			})
		})
		if err = scanQuiet(err); err != nil || len(muts) == 0 {
			return err
		}
		if err := e.commitMuts(muts); err != nil {
			return err
		}
	}
}

// commitMuts commits muts in one transaction (before the writer runs).
func (e *engine) commitMuts(muts []mutation) error {
	txn := e.kv.begin()
	if err := applyMuts(txn, muts); err != nil {
		txn.discard()
		return err
	}
	return txn.commit()
}

func v1EntryPrefix(dest string) []byte {
	k := append(make([]byte, 0, 3+len(dest)), nsV1)
	k = binary.BigEndian.AppendUint16(k, uint16(len(dest)))
	return append(k, dest...)
}

func decodeMetaV1(b []byte) (destMeta, error) {
	d := decoder{b: b}
	d.expect(1)
	m := destMeta{Head: d.u64()}
	d.u64() // next: the entry keys are the truth
	m.Attempts = int(d.uvarint())
	m.LastError = string(d.rest())
	if d.err != nil || m.Head == 0 {
		return destMeta{}, errors.Join(errCorrupt, d.err)
	}
	return m, nil
}

func decodeEntryV1(dest string, seq uint64, b []byte) (Entry, error) {
	d := decoder{b: b}
	d.expect(1)
	x := Entry{Dest: dest, Seq: seq, Enqueued: d.time(), ID: d.str()}
	x.Data = append([]byte(nil), d.rest()...)
	if d.err != nil {
		return Entry{}, fmt.Errorf("entry %d: %w", seq, errCorrupt)
	}
	return x, nil
}
