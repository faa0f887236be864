package queue

import "errors"

// The engine (engine.go) keeps every queue rule in one place and stores through this
// small ordered key/value layer: Badger on disk (badger.go), a JetStream stream
// (jetstream_kv.go) or a btree in memory (memory.go). The engines thus share
// validation, the group-commit writer and the scheduler, and differ only in storage.

// errNoKey is what kv reads return for a missing key.
var errNoKey = errors.New("queue: no such key")

// errTxnFull is what kvTxn.set and del return when the transaction cannot take more;
// the writer then commits what it has and retries in a fresh transaction.
var errTxnFull = errors.New("queue: transaction full")

type kvReader interface {
	// get returns a copy of the value of key, or errNoKey.
	get(key []byte) ([]byte, error)
	// scan calls fn for each key with prefix that is >= start, in key order, until fn
	// returns an error (errStopScan ends it quietly). Slices are valid only during fn.
	scan(prefix, start []byte, fn func(key, value []byte) error) error
	// last returns the greatest key with prefix, or nil.
	last(prefix []byte) ([]byte, error)
	// hasFrom reports whether some key with prefix is >= start (a forward seek).
	hasFrom(prefix, start []byte) bool
	// scanKeys is scan without reading values.
	scanKeys(prefix []byte, fn func(key []byte) error) error
}

// kvTxn is one atomic write. Reads see its own writes.
type kvTxn interface {
	// get returns a copy of the value of key, or errNoKey.
	get(key []byte) ([]byte, error)
	set(key, value []byte) error
	del(key []byte) error
	// commit applies the transaction atomically and durably (when the store is).
	commit() error
	discard()
}

type kvStore interface {
	begin() kvTxn
	view(fn func(kvReader) error) error
	// compact reclaims the space of deleted keys now. Only the writer calls it: no
	// transaction commits meanwhile.
	compact() error
	// space is the free space and the reserve the writer keeps (space.go).
	space() spaceState
	close() error
}

// errStopScan ends a scan early without an error.
var errStopScan = errors.New("stop scan")

func scanQuiet(err error) error {
	if errors.Is(err, errStopScan) {
		return nil
	}
	return err
}
