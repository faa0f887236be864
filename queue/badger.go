package queue

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/dgraph-io/badger/v4/options"
	"github.com/rs/zerolog"
)

// Badger is the embedded, durable engine: github.com/dgraph-io/badger/v4 in one data
// directory. Append returns only after its commit is fsync'd; concurrent callers share
// commits. Entries stay on disk (and recent ones in a bounded cache); memory holds one
// small record per destination and a 16-byte ref per queued entry. See codec.go for
// the key layout and checkpoint.go for when acknowledgements are written.
type Badger struct {
	*engine
	dir string
}

var _ Engine = (*Badger)(nil)

// BadgerOptions tunes the Badger engine. Zero fields take the defaults below, chosen
// for a modest, bounded footprint (tens of MiB) rather than Badger's own defaults
// (64 MiB memtables x5, 256 MiB block cache), since a queue's working set is the head
// and tail of each destination, not the whole data set.
type BadgerOptions struct {
	// MemTableSize is each memtable's size (default 8 MiB). One atomic commit holds at
	// most about 15% of it, counting values above ValueThreshold as a pointer only: a
	// Write bigger than that fails with ErrEntryTooBig and writes nothing. With one
	// key per Append the memtables hold keys and pointers only, so they can be small;
	// their log is memory-mapped and counts in the resident set.
	MemTableSize int64
	// NumMemtables is how many memtables may wait for flushing (default 2).
	NumMemtables int
	// IndexCacheSize bounds the memory for table indexes and bloom filters (default
	// 16 MiB); without it they grow with the data on disk.
	IndexCacheSize int64
	// ValueThreshold: values of at least this size go to the value log (default 64
	// bytes, so every log value does). Log values are short-lived: kept in the LSM
	// tree, each would be copied by memtable flushes and compactions after it was
	// acknowledged (measured: half the append throughput). In the value log a value
	// is written once; the LSM tree holds only its key and a 12-byte pointer.
	ValueThreshold int64
	// ValueLogFileSize is the size of one value log file (default 16 MiB). GC frees
	// whole files, so smaller files give the space of acknowledged entries back sooner;
	// the file being written is memory-mapped and its pages count in the resident set
	// (64 MiB files: 188 MB of file pages resident under chat load; 16 MiB: 39 MB).
	ValueLogFileSize int64
	// NumCompactors (default 2, Badger's minimum when compacting).
	NumCompactors int
	// MaxBatch caps the requests in one group commit (default 1024).
	MaxBatch int
	// CheckpointInterval is how often acknowledgements (cursor moves) and staged
	// records are written (default DefaultCheckpointInterval). After a crash, what
	// was acknowledged within the last interval is delivered again.
	CheckpointInterval time.Duration
	// CacheBytes bounds the cache of recently appended log values that consumers read
	// from (default 16 MiB).
	CacheBytes int
	// GCInterval is how often value log GC runs (default 5 s; negative: never). Every
	// acknowledged entry leaves garbage in the value log: at full speed (~30 MB/s) a
	// minute between runs let 2 GB pile up; 5 s keeps it to a few hundred MB.
	GCInterval time.Duration
	// OnCommit, if set, is called by the writer after every successful group commit
	// with the number of requests it carried and how long the commit (with its
	// fsync) took. It must return quickly: it runs on the write path.
	OnCommit func(requests int, took time.Duration)
	// OnCheckpoint, if set, is called by the writer after every checkpoint committed:
	// every Ack made before the previous call is durable. It must return quickly.
	OnCheckpoint func()
	// NoSync turns fsync off. Then Append survives a process crash but not power loss:
	// for tests and benchmarks only, never in production.
	NoSync bool
}

func (o BadgerOptions) withDefaults() BadgerOptions {
	def := func(v *int64, d int64) {
		if *v == 0 {
			*v = d
		}
	}
	def(&o.MemTableSize, 8<<20)
	def(&o.IndexCacheSize, 16<<20)
	def(&o.ValueThreshold, 64)
	def(&o.ValueLogFileSize, 16<<20)
	if o.NumMemtables == 0 {
		o.NumMemtables = 2
	}
	if o.NumCompactors == 0 {
		o.NumCompactors = 2
	}
	if o.GCInterval == 0 {
		o.GCInterval = 5 * time.Second
	}
	return o
}

func (o BadgerOptions) badger(dir string, log zerolog.Logger) badger.Options {
	return badger.DefaultOptions(dir).
		WithLogger(badgerLogger{log}).
		WithLoggingLevel(badger.WARNING).
		WithSyncWrites(!o.NoSync).
		WithDetectConflicts(false). // one writer: nothing to conflict with
		WithMetricsEnabled(false).
		WithMemTableSize(o.MemTableSize).
		WithNumMemtables(o.NumMemtables).
		WithCompression(options.None). // no block cache needed; tables are read via mmap
		WithBlockCacheSize(0).
		WithIndexCacheSize(o.IndexCacheSize).
		WithValueThreshold(o.ValueThreshold).
		WithValueLogFileSize(o.ValueLogFileSize).
		WithNumCompactors(o.NumCompactors).
		WithNumLevelZeroTables(4).
		WithNumLevelZeroTablesStall(12)
}

// OpenBadger opens (creating if needed) the queue in dir. It fails with ErrLocked when
// another process (or another OpenBadger in this one) has dir open, and with a clear
// error when dir cannot be created or written. Every non-empty destination is due at
// once after opening. Logs go to log as given (the caller attaches its fields);
// Badger's own messages come through it at warn level and above.
func OpenBadger(dir string, opts BadgerOptions, log zerolog.Logger) (*Badger, error) {
	opts = opts.withDefaults()
	kv, err := openBadgerKV(dir, opts, log)
	if err != nil {
		return nil, err
	}
	e := newEngine(kv, log, engineOptions{maxBatch: opts.MaxBatch,
		checkpointEvery: opts.CheckpointInterval, cacheBytes: opts.CacheBytes,
		compactAt: 4 * opts.ValueLogFileSize, onCommit: opts.OnCommit, onCheckpoint: opts.OnCheckpoint})
	if err := e.start(); err != nil {
		_ = kv.close()
		return nil, fmt.Errorf("queue: open %q: %w", dir, err)
	}
	return &Badger{engine: e, dir: dir}, nil
}

func openBadgerKV(dir string, opts BadgerOptions, log zerolog.Logger) (*badgerKV, error) {
	if err := checkDir(dir); err != nil {
		return nil, err
	}
	db, err := badger.Open(opts.badger(dir, log))
	if err != nil {
		return nil, openError(dir, err)
	}
	kv := newBadgerKV(db, opts.GCInterval, log)
	kv.guard = &diskGuard{dir: dir, treeLen: func() int64 { lsm, _ := db.Size(); return lsm },
		// the next value log file and memtable log (both sparse, 2x their size),
		// a memtable flushed to a table, and as much again for the files of a
		// compaction and value log GC
		base: 2 * (2*opts.ValueLogFileSize + 3*opts.MemTableSize)}
	return kv, nil
}

// checkDir creates dir and proves it writable, so that the error names the real cause.
func checkDir(dir string) error {
	if dir == "" {
		return fmt.Errorf("queue: empty data directory: %w", ErrBadArguments)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("queue: create data directory: %w", err)
	}
	f, err := os.CreateTemp(dir, ".writable-*")
	if err != nil {
		return fmt.Errorf("queue: data directory %q is not writable: %w", dir, err)
	}
	f.Close()
	return os.Remove(f.Name())
}

// openError maps Badger's directory lock failure (which Badger reports as text only)
// to ErrLocked.
func openError(dir string, err error) error {
	if strings.Contains(err.Error(), "Cannot acquire directory lock") {
		return fmt.Errorf("%w: %s", ErrLocked, dir)
	}
	return fmt.Errorf("queue: open badger in %q: %w", dir, err)
}

// badgerKV adapts Badger to kvStore and runs value log GC.
type badgerKV struct {
	db    *badger.DB
	log   zerolog.Logger
	stop  chan struct{}
	wg    sync.WaitGroup
	gcMu  sync.Mutex // one of compact and collect at a time
	guard *diskGuard
}

func (kv *badgerKV) space() spaceState { return kv.guard.space() }

func newBadgerKV(db *badger.DB, gcEvery time.Duration, log zerolog.Logger) *badgerKV {
	kv := &badgerKV{db: db, log: log, stop: make(chan struct{})}
	if gcEvery > 0 {
		kv.wg.Add(1)
		go kv.runGC(gcEvery)
	}
	return kv
}

// runGC reclaims value log space left by acknowledged entries. Badger learns which
// values are garbage when compaction meets an entry's key and its deletion; then
// RunValueLogGC rewrites what is still live in the file with the most garbage (at
// least half of it) and deletes the file, one file per call. (Badger >= v4.9.6: older
// versions could bring a deleted key back after a rewrite, dgraph-io/badger#2286.)
func (kv *badgerKV) runGC(every time.Duration) {
	defer kv.wg.Done()
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-kv.stop:
			return
		case <-t.C:
		}
		kv.collect()
	}
}

// collect runs value log GC until no file qualifies or the queue closes.
func (kv *badgerKV) collect() {
	kv.gcMu.Lock()
	defer kv.gcMu.Unlock()
	for kv.db.RunValueLogGC(0.5) == nil {
		select {
		case <-kv.stop:
			return
		default:
		}
	}
}

// compact makes Badger learn which value log entries are garbage, which it otherwise
// does only when compaction meets a deleted key: with one key per Append, memtables
// fill slowly, and an idle server never compacts. It flushes the memtables (Badger's
// only public way is dropping a prefix, here that of a sentinel key written for it),
// compacts the tree into one level, then frees what value log files it can.
func (kv *badgerKV) compact() error {
	kv.gcMu.Lock()
	txn := kv.db.NewTransaction(true)
	err := txn.Set([]byte{nsFlush}, []byte{1})
	if err == nil {
		err = txn.Commit()
	}
	if err == nil {
		err = kv.db.DropPrefix([]byte{nsFlush})
	}
	if err == nil {
		err = kv.db.Flatten(1)
	}
	kv.gcMu.Unlock()
	if err != nil {
		return fmt.Errorf("queue: compact storage: %w", err)
	}
	kv.collect()
	return nil
}

func (kv *badgerKV) begin() kvTxn { return badgerTxn{kv.db.NewTransaction(true)} }

func (kv *badgerKV) view(fn func(kvReader) error) error {
	return kv.db.View(func(txn *badger.Txn) error { return fn(badgerTxn{txn}) })
}

func (kv *badgerKV) close() error {
	close(kv.stop)
	kv.wg.Wait()
	return kv.db.Close()
}

type badgerTxn struct{ txn *badger.Txn }

func (t badgerTxn) get(key []byte) ([]byte, error) {
	item, err := t.txn.Get(key)
	if errors.Is(err, badger.ErrKeyNotFound) {
		return nil, errNoKey
	}
	if err != nil {
		return nil, err
	}
	return item.ValueCopy(nil)
}

func (t badgerTxn) scan(prefix, start []byte, fn func(k, v []byte) error) error {
	it := t.txn.NewIterator(badger.IteratorOptions{Prefix: prefix, PrefetchValues: false})
	defer it.Close()
	if start == nil {
		start = prefix
	}
	for it.Seek(start); it.ValidForPrefix(prefix); it.Next() {
		item := it.Item()
		err := item.Value(func(v []byte) error { return fn(item.Key(), v) })
		if err != nil {
			return err
		}
	}
	return nil
}

func (t badgerTxn) hasFrom(prefix, start []byte) bool {
	it := t.txn.NewIterator(badger.IteratorOptions{Prefix: prefix})
	defer it.Close()
	it.Seek(start)
	return it.ValidForPrefix(prefix)
}

func (t badgerTxn) last(prefix []byte) ([]byte, error) {
	it := t.txn.NewIterator(badger.IteratorOptions{Prefix: prefix, Reverse: true})
	defer it.Close()
	it.Seek(append(append([]byte(nil), prefix...), 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff))
	if !it.ValidForPrefix(prefix) {
		return nil, nil
	}
	return it.Item().KeyCopy(nil), nil
}

func (t badgerTxn) scanKeys(prefix []byte, fn func(k []byte) error) error {
	it := t.txn.NewIterator(badger.IteratorOptions{Prefix: prefix, PrefetchValues: false})
	defer it.Close()
	for it.Seek(prefix); it.ValidForPrefix(prefix); it.Next() {
		if err := fn(it.Item().Key()); err != nil {
			return err
		}
	}
	return nil
}

func (t badgerTxn) set(key, value []byte) error { return txnErr(t.txn.Set(key, value)) }
func (t badgerTxn) del(key []byte) error        { return txnErr(t.txn.Delete(key)) }
func (t badgerTxn) commit() error               { return noSpace(t.txn.Commit()) }
func (t badgerTxn) discard()                    { t.txn.Discard() }

func txnErr(err error) error {
	if errors.Is(err, badger.ErrTxnTooBig) {
		return fmt.Errorf("%w: %w", errTxnFull, err)
	}
	return err
}

// badgerLogger routes Badger's own log lines into zerolog.
type badgerLogger struct{ l zerolog.Logger }

func (b badgerLogger) Errorf(f string, a ...any)   { b.emit(b.l.Error(), f, a) }
func (b badgerLogger) Warningf(f string, a ...any) { b.emit(b.l.Warn(), f, a) }
func (b badgerLogger) Infof(f string, a ...any)    { b.emit(b.l.Info(), f, a) }
func (b badgerLogger) Debugf(f string, a ...any)   { b.emit(b.l.Debug(), f, a) }

func (badgerLogger) emit(ev *zerolog.Event, f string, a []any) {
	ev.Str("source", "badger").Msg(strings.TrimSpace(fmt.Sprintf(f, a...)))
}
