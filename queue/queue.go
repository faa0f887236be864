// Package queue is the durable, ordered, at-least-once queue every notification
// passes through. It knows nothing of OMA or HTTP: destinations are opaque ids and
// entries opaque bytes.
//
// Each destination is a FIFO whose entries carry a sequence number that starts at 1
// and grows by one per entry. Consumers read from the head without removing, then
// acknowledge cumulatively, retry the head later, or dead-letter it. What was read but
// not acknowledged is read again after a restart; so may be what was acknowledged
// within the last checkpoint interval (at-least-once).
//
// Storage is a log with cursors: Append writes its entries as one log value (group
// commit, one fsync per batch); Ack moves the destination's cursor in memory; a
// checkpoint writes moved cursors every interval and deletes log values no cursor
// needs. The same shape maps onto a replicated stream with consumer ack floors.
//
// The queue also holds small key/value records (Record) that callers write in the same
// atomic commit as entries, so that "state changed" and "notifications queued" are one
// durable fact.
//
// Engines: Badger (badger.go), the embedded default; JetStream (jetstream.go), the
// same engine on a NATS JetStream stream; Memory (memory.go) for tests.
// contract_test.go is the suite every engine passes.
package queue

import (
	"context"
	"errors"
	"time"
)

// Limits every engine enforces.
const (
	MaxDestLen   = 256     // bytes in a destination id
	MaxEntrySize = 4 << 20 // bytes of Data in one entry
	MaxIDLen     = 128     // bytes in an entry id
)

// Errors returned by every engine. Callers test them with errors.Is.
var (
	ErrClosed       = errors.New("queue: closed")
	ErrNotFound     = errors.New("queue: not found")
	ErrEmptyDest    = errors.New("queue: empty destination id")
	ErrDestTooLong  = errors.New("queue: destination id too long")
	ErrEntryTooBig  = errors.New("queue: entry too large")
	ErrBadID        = errors.New("queue: entry id empty or too long")
	ErrNotHead      = errors.New("queue: sequence is not the head of the destination")
	ErrLocked       = errors.New("queue: data directory is in use by another process")
	ErrEmptyRecord  = errors.New("queue: empty record key")
	ErrDuplicateID  = errors.New("queue: entry id already dead-lettered or queued in this write")
	ErrBadArguments = errors.New("queue: bad arguments")
	// ErrNoSpace: the data directory's filesystem is (nearly) full; nothing was
	// written. Writes succeed again once space is freed (space.go).
	ErrNoSpace = errors.New("queue: not enough free disk space")
)

// Entry is one queued notification.
type Entry struct {
	// ID is chosen by the producer, stable for the entry's whole life (retries,
	// dead letter, replay): receivers deduplicate on it. At most MaxIDLen bytes.
	ID string
	// Dest is the destination id. Non-empty, at most MaxDestLen bytes.
	Dest string
	// Data is the payload, at most MaxEntrySize bytes. Opaque to the queue.
	Data []byte

	// Set by the queue.
	Seq       uint64    // position in Dest: 1, 2, 3, ...
	Enqueued  time.Time // when Append accepted it (kept across replay: first acceptance)
	Attempts  int       // Retry calls made on this entry while it was the head
	LastError string    // reason given to the last Retry
}

// PrevSeq is the Seq of the notification before e in its destination (0: none).
// Receivers compare it with the last seq they got to find gaps (a dead letter in
// between, a lost frame); it is derived here, beside the rule that makes it
// true (Seq grows by one per entry), so that a queue numbering entries sparsely
// has one place to change.
func (e Entry) PrevSeq() uint64 {
	if e.Seq == 0 {
		return 0
	}
	return e.Seq - 1
}

// Record is a key/value pair written atomically with entries. A nil Value deletes the key.
type Record struct {
	Key   []byte
	Value []byte
}

// Write is one atomic unit: all of it is durable, or none of it.
type Write struct {
	Entries []Entry
	Records []Record
}

// Queue is the producer and consumer side of the engine.
type Queue interface {
	// Append makes w durable (fsync'd) and visible, atomically: after it returns nil,
	// every entry and record survives a crash of the process or power loss; after an
	// error, none of w was applied. Entries to the same destination keep the order
	// they have in w. On success it returns the Seq given to each entry of w, in order.
	// Concurrent callers share commits (group commit).
	Append(ctx context.Context, w Write) ([]uint64, error)

	// Enqueue is Append in two steps: it fixes w's place in the commit order and
	// returns at once; wait blocks until w is durable (or failed) and returns what
	// Append would. Writes enqueued one after the other, by one goroutine, commit in
	// that order, each in the same commit as its predecessor or a later one. So a
	// caller can release its own lock before the fsync and still have its writes
	// committed in the order it decided them.
	Enqueue(ctx context.Context, w Write) (wait func() ([]uint64, error))

	// Read returns up to max entries of dest in order, starting with the first entry
	// whose Seq is greater than after (after = 0: from the head). It removes nothing.
	// An empty or unknown destination yields no entries and no error.
	Read(ctx context.Context, dest string, after uint64, max int) ([]Entry, error)

	// Ack removes every entry of dest with Seq <= seq: Read and Next no longer return
	// them. It is not durable at once: the next checkpoint (within the checkpoint
	// interval, and at Close) makes it so. After a crash, entries acknowledged since
	// the last checkpoint are read again; nothing unacknowledged is ever lost.
	// Acknowledging what is already gone is not an error.
	Ack(ctx context.Context, dest string, seq uint64) error

	// Stage writes records without waiting for a commit: Get sees them at once, and
	// they become durable with the next checkpoint, or are superseded by a later
	// Append writing the same key. A checkpoint that makes an Ack durable also makes
	// every record staged before that Ack durable, so "record the outcome, then
	// acknowledge" survives any crash as a pair. After a crash, records staged since
	// the last checkpoint may be lost.
	Stage(ctx context.Context, records ...Record) error

	// Retry keeps the head of dest (seq must be the head, else ErrNotHead) in place,
	// adds one to its Attempts, stores reason as its LastError, and makes dest due
	// again at the time at, durably. Order is kept: nothing behind the head is handed
	// out first.
	Retry(ctx context.Context, dest string, seq uint64, at time.Time, reason string) error

	// DeadLetter moves the head of dest (seq must be the head, else ErrNotHead) to the
	// dead letter list with reason; the next entry becomes the head. Durable.
	DeadLetter(ctx context.Context, dest string, seq uint64, reason string) error

	// Delete removes dest with every entry it holds (not its dead letters).
	Delete(ctx context.Context, dest string) error

	// Close stops accepting work, waits for pending commits, and closes storage.
	Close() error
}

// DeadLetter is an entry that was given up on.
type DeadLetter struct {
	Entry
	Reason string
	DeadAt time.Time
}

// DeadLetters lists and replays dead-lettered entries.
type DeadLetters interface {
	// DeadLetters returns up to limit dead letters in id order whose Dest starts with
	// destPrefix and whose ID is greater than after. next is the cursor for the next
	// page, empty when there is none.
	DeadLetters(ctx context.Context, destPrefix, after string, limit int) (list []DeadLetter, next string, err error)
	// Replay moves the dead letter with this id back to the tail of its destination,
	// with the same ID and Data and Attempts reset. ErrNotFound if there is none.
	Replay(ctx context.Context, id string) (Entry, error)
	// GetDeadLetter returns one dead letter by id, or ErrNotFound.
	GetDeadLetter(ctx context.Context, id string) (DeadLetter, error)
}

// Store reads the records written with Write.Records.
type Store interface {
	// Get returns the value of key, or ErrNotFound.
	Get(ctx context.Context, key []byte) ([]byte, error)
	// Scan calls fn for every record whose key starts with prefix, in key order, until
	// fn returns an error (which Scan returns). The slices are valid only during fn.
	Scan(ctx context.Context, prefix []byte, fn func(key, value []byte) error) error
}

// DestStats describes one destination.
type DestStats struct {
	Dest         string
	Depth        int       // entries queued
	Oldest       time.Time // Enqueued of the head; zero when empty
	HeadAttempts int       // Attempts of the head
	DueAt        time.Time // when the head may be tried next (zero: now)
	Leased       bool      // a consumer holds it (Scheduler.Next)
}

// Stats reports queue depth without reading entries.
type Stats interface {
	// Dests reports every non-empty destination whose id starts with prefix.
	Dests(prefix string) []DestStats
	// DestStats reports one destination (zero Depth when empty or unknown).
	DestStats(dest string) DestStats
}

// Scheduler hands out work without polling: it keeps in memory which destinations
// have entries and when each is due, and wakes consumers when that changes.
type Scheduler interface {
	// Next blocks until some destination whose id starts with prefix has its head due
	// and is not leased, leases it to the caller and returns its id. Only one lease
	// per destination exists at a time, so one consumer at a time sends its head: that
	// is what keeps per-destination order. Returns ctx.Err() or ErrClosed.
	Next(ctx context.Context, prefix string) (string, error)
	// Release ends the lease. If dest still has entries it becomes due again (now,
	// or at the time set by Retry).
	Release(dest string)
	// Watch returns a channel that receives a value (coalesced, capacity 1) whenever an
	// entry is appended to dest, or dest is deleted; stop ends the watch. A watcher
	// reads dest itself with Read; Watch does not lease it.
	Watch(dest string) (wake <-chan struct{}, stop func())
}

// Engine is everything an engine provides; the composition root holds one.
type Engine interface {
	Queue
	DeadLetters
	Store
	Stats
	Scheduler
}
