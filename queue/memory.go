package queue

import (
	"bytes"
	"strings"
	"sync"

	"github.com/google/btree"
	"github.com/rs/zerolog"
)

// Memory is the in-memory engine: the same rules, writer and scheduler as Badger
// (it runs the same engine code over a btree instead of Badger), but nothing survives
// Close or a crash, and entries are held in memory. For tests and ephemeral use.
type Memory struct {
	*engine
}

var _ Engine = (*Memory)(nil)

// NewMemory returns an empty in-memory engine. Close it to stop its writer goroutine.
func NewMemory(log zerolog.Logger) *Memory {
	e := newEngine(newMemKV(), log, engineOptions{})
	_ = e.start() // loading an empty store cannot fail
	return &Memory{engine: e}
}

type memItem struct {
	key   string
	value []byte
}

// memKV is an ordered map. Views read a copy-on-write clone, so a long Scan neither
// blocks writers nor sees half a commit.
type memKV struct {
	mu   sync.Mutex
	tree *btree.BTreeG[memItem]
}

func newMemKV() *memKV {
	less := func(a, b memItem) bool { return a.key < b.key }
	return &memKV{tree: btree.NewG(32, less)}
}

func (kv *memKV) begin() kvTxn { return &memTxn{kv: kv, pending: map[string]*memItem{}} }

func (kv *memKV) view(fn func(kvReader) error) error {
	kv.mu.Lock()
	snap := kv.tree.Clone()
	kv.mu.Unlock()
	return fn(memReader{snap})
}

func (kv *memKV) close() error   { return nil }
func (kv *memKV) compact() error { return nil } // deleted keys are gone at once

func (kv *memKV) space() spaceState { return spaceState{} } // no limit

func (kv *memKV) get(key string) ([]byte, error) {
	kv.mu.Lock()
	defer kv.mu.Unlock()
	it, ok := kv.tree.Get(memItem{key: key})
	if !ok {
		return nil, errNoKey
	}
	return bytes.Clone(it.value), nil
}

// memTxn buffers writes until commit; a nil value in pending marks a delete.
type memTxn struct {
	kv      *memKV
	pending map[string]*memItem
}

func (t *memTxn) get(key []byte) ([]byte, error) {
	if it, ok := t.pending[string(key)]; ok {
		if it.value == nil {
			return nil, errNoKey
		}
		return bytes.Clone(it.value), nil
	}
	return t.kv.get(string(key))
}

func (t *memTxn) set(key, value []byte) error {
	v := append(make([]byte, 0, len(value)), value...) // never nil: nil means delete
	t.pending[string(key)] = &memItem{key: string(key), value: v}
	return nil
}

func (t *memTxn) del(key []byte) error {
	t.pending[string(key)] = &memItem{key: string(key)}
	return nil
}

func (t *memTxn) commit() error {
	t.kv.mu.Lock()
	defer t.kv.mu.Unlock()
	for _, it := range t.pending {
		if it.value == nil {
			t.kv.tree.Delete(*it)
		} else {
			t.kv.tree.ReplaceOrInsert(*it)
		}
	}
	t.pending = nil
	return nil
}

func (t *memTxn) discard() { t.pending = nil }

// memReader reads one snapshot.
type memReader struct{ tree *btree.BTreeG[memItem] }

func (r memReader) get(key []byte) ([]byte, error) {
	it, ok := r.tree.Get(memItem{key: string(key)})
	if !ok {
		return nil, errNoKey
	}
	return bytes.Clone(it.value), nil
}

func (r memReader) scan(prefix, start []byte, fn func(k, v []byte) error) error {
	if start == nil {
		start = prefix
	}
	var err error
	r.tree.AscendGreaterOrEqual(memItem{key: string(start)}, func(it memItem) bool {
		if !strings.HasPrefix(it.key, string(prefix)) {
			return false
		}
		err = fn([]byte(it.key), it.value)
		return err == nil
	})
	return err
}

func (r memReader) scanKeys(prefix []byte, fn func(k []byte) error) error {
	return r.scan(prefix, prefix, func(k, _ []byte) error { return fn(k) })
}

func (r memReader) last(prefix []byte) ([]byte, error) {
	var key []byte
	upper := string(prefix) + strings.Repeat("\xff", 9) // above any seq suffix
	r.tree.DescendLessOrEqual(memItem{key: upper}, func(it memItem) bool {
		if strings.HasPrefix(it.key, string(prefix)) {
			key = []byte(it.key)
		}
		return false
	})
	return key, nil
}

func (r memReader) hasFrom(prefix, start []byte) bool {
	found := false
	_ = r.scan(prefix, start, func(_, _ []byte) error {
		found = true
		return errStopScan
	})
	return found
}
