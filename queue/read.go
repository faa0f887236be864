package queue

import (
	"context"
	"errors"
	"fmt"
	"strings"
)

// Read implements Queue.Read. It reads one consistent snapshot of storage; max must
// be positive.
func (e *engine) Read(ctx context.Context, dest string, after uint64, limit int) ([]Entry, error) {
	if err := validateDest(dest); err != nil {
		return nil, err
	}
	if limit <= 0 {
		return nil, fmt.Errorf("read %q: max %d: %w", dest, limit, ErrBadArguments)
	}
	var out []Entry
	err := e.reading(ctx, func(r kvReader) error {
		// The head and its attempts come from the scheduler's copy of the meta (no
		// storage read), taken after the storage snapshot opened, so never older than
		// it: entries it shows as removed are skipped, and entries the snapshot lacks
		// (appended since) are simply not returned yet.
		v := e.sched.snapshot(dest)
		if !v.exists {
			return nil
		}
		var err error
		out, err = readEntries(ctx, r, dest, v.meta, after, limit)
		return err
	})
	return out, err
}

// readEntries reads from storage the entries of dest after seq after, given its
// meta m. The meta's Next is not used: the keys are the truth.
func readEntries(ctx context.Context, r kvReader, dest string, m destMeta, after uint64, limit int) ([]Entry, error) {
	start := max(after+1, m.Head)
	if limit == 1 {
		return readOne(r, dest, start, m)
	}
	var out []Entry
	err := r.scan(entryPrefix(dest), entryKey(dest, start), func(k, v []byte) error {
		seq := seqOfEntryKey(k)
		if len(out) == limit {
			return errStopScan
		}
		e, err := decodeEntry(dest, seq, v)
		if err != nil {
			return err
		}
		if seq == m.Head {
			e.Attempts, e.LastError = m.Attempts, m.LastError
		}
		out = append(out, e)
		return ctx.Err()
	})
	return out, scanQuiet(err)
}

// readOne reads the entry at seq with a point lookup, which Bloom filters keep
// cheaper than an iterator over every level (webhook workers read one entry per
// delivery). A destination's seqs have no gaps, so if seq is missing nothing
// follows it.
func readOne(r kvReader, dest string, seq uint64, m destMeta) ([]Entry, error) {
	b, err := r.get(entryKey(dest, seq))
	if errors.Is(err, errNoKey) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("queue: read %q/%d: %w", dest, seq, err)
	}
	e, err := decodeEntry(dest, seq, b)
	if err != nil {
		return nil, err
	}
	if seq == m.Head {
		e.Attempts, e.LastError = m.Attempts, m.LastError
	}
	return []Entry{e}, nil
}

// Get implements Store.Get.
func (e *engine) Get(ctx context.Context, key []byte) ([]byte, error) {
	if len(key) == 0 {
		return nil, ErrEmptyRecord
	}
	var val []byte
	err := e.reading(ctx, func(r kvReader) error {
		var err error
		val, err = r.get(recordKey(key))
		return err
	})
	if errors.Is(err, errNoKey) {
		return nil, fmt.Errorf("record %q: %w", key, ErrNotFound)
	}
	return val, err
}

// Scan implements Store.Scan. It sees one consistent snapshot of the records.
func (e *engine) Scan(ctx context.Context, prefix []byte, fn func(key, value []byte) error) error {
	p := recordKey(prefix)
	return e.reading(ctx, func(r kvReader) error {
		return r.scan(p, p, func(k, v []byte) error {
			if err := ctx.Err(); err != nil {
				return err
			}
			return fn(k[1:], v)
		})
	})
}

// GetDeadLetter implements DeadLetters.GetDeadLetter.
func (e *engine) GetDeadLetter(ctx context.Context, id string) (DeadLetter, error) {
	if err := validateID(id); err != nil {
		return DeadLetter{}, err
	}
	var dl DeadLetter
	err := e.reading(ctx, func(r kvReader) error {
		b, err := r.get(deadKey(id))
		if err != nil {
			return err
		}
		dl, err = decodeDead(id, b)
		return err
	})
	if errors.Is(err, errNoKey) {
		return DeadLetter{}, fmt.Errorf("dead letter %q: %w", id, ErrNotFound)
	}
	return dl, err
}

// DeadLetters implements DeadLetters.DeadLetters. It walks dead letters in id order
// and skips those of other destinations, so a narrow destPrefix over many dead
// letters costs a longer walk, never more memory.
func (e *engine) DeadLetters(ctx context.Context, destPrefix, after string, limit int) ([]DeadLetter, string, error) {
	if limit <= 0 {
		return nil, "", fmt.Errorf("dead letters: limit %d: %w", limit, ErrBadArguments)
	}
	var list []DeadLetter
	var more bool
	start := deadKey(after)
	if after != "" {
		start = append(start, 0) // strictly greater than after
	}
	err := e.reading(ctx, func(r kvReader) error {
		return r.scan([]byte{nsDead}, start, func(k, v []byte) error {
			if !strings.HasPrefix(deadDestOf(v), destPrefix) {
				return ctx.Err()
			}
			if len(list) == limit {
				more = true
				return errStopScan
			}
			dl, err := decodeDead(string(k[1:]), v)
			list = append(list, dl)
			return errors.Join(err, ctx.Err())
		})
	})
	if err = scanQuiet(err); err != nil {
		return nil, "", err
	}
	if !more {
		return list, "", nil
	}
	return list, list[len(list)-1].ID, nil
}
