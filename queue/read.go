package queue

import (
	"context"
	"errors"
	"fmt"
	"strings"
)

// Read implements Queue.Read. max must be positive. Entries come from the read cache
// when they were appended recently, else from storage; Data is shared with the cache
// and other readers: read it, never change it.
func (e *engine) Read(ctx context.Context, dest string, after uint64, limit int) ([]Entry, error) {
	if err := validateDest(dest); err != nil {
		return nil, err
	}
	if limit <= 0 {
		return nil, fmt.Errorf("read %q: max %d: %w", dest, limit, ErrBadArguments)
	}
	if err := e.whileOpen(ctx, func() {}); err != nil {
		return nil, err
	}
	view := func(fn func(kvReader) error) error { return e.reading(ctx, fn) }
	return e.readEntries(view, dest, after, limit)
}

// readEntries reads up to limit entries of dest after seq after, through view when
// they are not cached. An entry whose log value is gone was acknowledged meanwhile:
// the read ends before it.
func (e *engine) readEntries(view func(func(kvReader) error) error, dest string, after uint64, limit int) ([]Entry, error) {
	rv, ok := e.sched.readView(dest, after+1, limit)
	if !ok || len(rv.refs) == 0 {
		return nil, nil
	}
	out := make([]Entry, 0, len(rv.refs))
	for i, ref := range rv.refs {
		es, err := e.logValue(view, ref.log)
		if err != nil {
			return nil, err
		}
		if es == nil || int(ref.idx) >= len(es) {
			break
		}
		x := es[ref.idx]
		x.Seq = rv.first + uint64(i)
		if x.Seq == rv.head {
			x.Attempts, x.LastError = rv.attempts, rv.lastError
		}
		out = append(out, x)
	}
	return out, nil
}

// logValue returns the entries of log value id, from the cache or storage (then
// cached); nil if it is gone.
func (e *engine) logValue(view func(func(kvReader) error) error, id uint64) ([]Entry, error) {
	if es, ok := e.cache.get(id); ok {
		return es, nil
	}
	var es []Entry
	err := view(func(r kvReader) error {
		val, err := r.get(logKey(id))
		if errors.Is(err, errNoKey) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("queue: read log value %d: %w", id, err)
		}
		es, err = decodeLog(val)
		if err == nil {
			e.cache.put(id, val, es)
		}
		return err
	})
	return es, err
}

// Get implements Store.Get: a staged value first, else the stored one.
func (e *engine) Get(ctx context.Context, key []byte) ([]byte, error) {
	if len(key) == 0 {
		return nil, ErrEmptyRecord
	}
	if v, ok := e.staged.get(key); ok {
		if v == nil {
			return nil, fmt.Errorf("record %q: %w", key, ErrNotFound)
		}
		return v, nil
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

// Scan implements Store.Scan. It sees one consistent snapshot of the records; staged
// records are checkpointed first, so Scan sees them too.
func (e *engine) Scan(ctx context.Context, prefix []byte, fn func(key, value []byte) error) error {
	if !e.staged.empty() {
		if err := e.checkpoint(); err != nil {
			return err
		}
	}
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
