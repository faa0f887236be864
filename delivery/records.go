package delivery

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"notifyrelay/destkind"
	"notifyrelay/queue"
)

// Delivery bookkeeping lives in the queue's record store under "dlv/", written in
// the same atomic Append as the entries it describes:
//
//	dlv/d/<id>               an accepted operator delivery: dest, notifyURL, key, createdAt
//	dlv/s/<id>               its settlement (delivered or dead), attempts, lastError, time;
//	                         absent while pending
//	dlv/a/<id>/<slot>        its failed attempts, the last 20 (history.go)
//	dlv/x/<expiry>/<id>      retention index: after <expiry> the sweeper removes the three above
//	dlv/o/<dest>             an operator destination's notifyURL and key
const (
	keyAccepted = "dlv/d/"
	keySettled  = "dlv/s/"
	keyExpiry   = "dlv/x/"
	keyDest     = "dlv/o/"
)

// Delivery states as the operator API reports them.
const (
	StatePending   = "pending"
	StateDelivered = "delivered"
	StateDead      = "dead"
)

// acceptedRecord is written once, when an operator delivery is accepted.
type acceptedRecord struct {
	Dest      string    `json:"dest"`
	NotifyURL string    `json:"notifyURL"`
	Key       string    `json:"key,omitempty"`
	CreatedAt time.Time `json:"createdAt"`
	// PriorAttempts are the HTTP attempts made before the last replay: the queue
	// counts attempts since the entry was last queued, the API counts them all.
	PriorAttempts int `json:"priorAttempts,omitempty"`
}

// settledRecord is the end of a delivery: delivered or dead.
type settledRecord struct {
	State     string    `json:"state"`
	Attempts  int       `json:"attempts"`
	LastError string    `json:"lastError,omitempty"`
	At        time.Time `json:"at"`
}

// Target is where an operator destination delivers.
type Target struct {
	NotifyURL string `json:"notifyURL"`
	Key       string `json:"key,omitempty"`
}

// OperatorDest is the destination id of (notifyURL, key): "o:" and 128 bits of a
// SHA-256, so ids are short, fixed-size and unguessable from outside.
func OperatorDest(notifyURL, key string) string {
	sum := sha256.Sum256([]byte(notifyURL + "\x00" + key))
	return destkind.OperatorPrefix + hex.EncodeToString(sum[:16])
}

// NewID returns a new delivery id: 128 random bits in hex.
func NewID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("delivery: marshal %T: %v", v, err)) // only plain structs are marshalled
	}
	return b
}

// settleRecords is the settlement of id plus its retention index entry.
func settleRecords(id string, s settledRecord, retention time.Duration) []queue.Record {
	return []queue.Record{
		{Key: []byte(keySettled + id), Value: mustJSON(s)},
		{Key: expiryKey(s.At.Add(retention), id), Value: []byte{1}},
	}
}

// expiryKey sorts by time: fixed-width hex of Unix nanoseconds.
func expiryKey(at time.Time, id string) []byte {
	return fmt.Appendf(nil, "%s%016x/%s", keyExpiry, uint64(at.UnixNano()), id)
}

// getJSON reads the record at key into v; found is false when there is none.
func getJSON(ctx context.Context, s queue.Store, key string, v any) (found bool, err error) {
	b, err := s.Get(ctx, []byte(key))
	if errors.Is(err, queue.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return false, fmt.Errorf("decode %s: %w", key, err)
	}
	return true, nil
}

// BookQueue is what the Book reads: records, a destination's head, dead letters.
type BookQueue interface {
	queue.Store
	Read(ctx context.Context, dest string, after uint64, max int) ([]queue.Entry, error)
	GetDeadLetter(ctx context.Context, id string) (queue.DeadLetter, error)
}

// Book is the delivery records: operator destinations' targets, cached in memory
// (one small entry per destination ever used, not per notification), and what
// each operator delivery became (status.go).
type Book struct {
	q     BookQueue
	mu    sync.RWMutex
	known map[string]Target
}

// NewBook returns the book over q's records.
func NewBook(q BookQueue) *Book {
	return &Book{q: q, known: map[string]Target{}}
}

// Target returns dest's target; ok is false when none was ever recorded.
func (b *Book) Target(ctx context.Context, dest string) (Target, bool, error) {
	b.mu.RLock()
	t, ok := b.known[dest]
	b.mu.RUnlock()
	if ok {
		return t, true, nil
	}
	ok, err := getJSON(ctx, b.q, keyDest+dest, &t)
	if ok {
		b.Remember(dest, t)
	}
	return t, ok, err
}

// Accepted is the record of a newly accepted operator delivery.
func (b *Book) Accepted(id, dest string, t Target, at time.Time) queue.Record {
	return queue.Record{Key: []byte(keyAccepted + id), Value: mustJSON(acceptedRecord{
		Dest: dest, NotifyURL: t.NotifyURL, Key: t.Key, CreatedAt: at})}
}

// DestRecord is the record to write with dest's first entry; ok is false when it
// is already known to be durable. Remember dest after the Append that wrote it.
func (b *Book) DestRecord(dest string, t Target) (rec queue.Record, ok bool) {
	b.mu.RLock()
	_, known := b.known[dest]
	b.mu.RUnlock()
	if known {
		return queue.Record{}, false
	}
	return queue.Record{Key: []byte(keyDest + dest), Value: mustJSON(t)}, true
}

// Remember marks dest's record durable (call after the Append that wrote it).
func (b *Book) Remember(dest string, t Target) {
	b.mu.Lock()
	b.known[dest] = t
	b.mu.Unlock()
}

// errStopScan ends a Scan early.
var errStopScan = errors.New("stop scan")

// sweepExpired removes up to limit delivery records whose retention ended before
// now, and reports how many index entries it consumed. A delivery that was
// replayed (no settlement) or settled again later (a newer index entry) keeps its
// records; only the stale index entry goes.
func sweepExpired(ctx context.Context, q Queue, now time.Time, retention time.Duration, limit int) (int, error) {
	var due [][]byte
	cutoff := string(expiryKey(now, ""))
	err := q.Scan(ctx, []byte(keyExpiry), func(k, _ []byte) error {
		if string(k) > cutoff || len(due) >= limit {
			return errStopScan
		}
		due = append(due, append([]byte(nil), k...))
		return nil
	})
	if err != nil && !errors.Is(err, errStopScan) {
		return 0, fmt.Errorf("scan expiry index: %w", err)
	}
	if len(due) == 0 {
		return 0, nil
	}
	var recs []queue.Record
	for _, k := range due {
		recs = append(recs, queue.Record{Key: k})
		more, err := expiredRecords(ctx, q, string(k), retention)
		if err != nil {
			return 0, err
		}
		recs = append(recs, more...)
	}
	if _, err := q.Append(ctx, queue.Write{Records: recs}); err != nil {
		return 0, fmt.Errorf("delete expired records: %w", err)
	}
	return len(due), nil
}

// expiredRecords returns the deletions an index key calls for.
func expiredRecords(ctx context.Context, q queue.Store, indexKey string, retention time.Duration) ([]queue.Record, error) {
	rest := strings.TrimPrefix(indexKey, keyExpiry)
	hexAt, id, ok := strings.Cut(rest, "/")
	if !ok {
		return nil, nil
	}
	at, err := strconv.ParseUint(hexAt, 16, 64)
	if err != nil {
		return nil, nil
	}
	var s settledRecord
	found, err := getJSON(ctx, q, keySettled+id, &s)
	if err != nil || !found {
		return nil, err
	}
	if uint64(s.At.Add(retention).UnixNano()) > at { // settled again since: a newer index entry covers it
		return nil, nil
	}
	failures := s.Attempts
	if s.State == StateDelivered {
		failures--
	}
	var a acceptedRecord
	if _, err := getJSON(ctx, q, keyAccepted+id, &a); err != nil {
		return nil, err
	}
	recs := []queue.Record{{Key: []byte(keySettled + id)}, {Key: []byte(keyAccepted + id)}}
	return append(recs, historyDeletes(id, failures+a.PriorAttempts)...), nil
}
