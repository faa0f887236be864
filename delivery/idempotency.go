package delivery

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"notifyrelay/queue"
)

// Idempotency keys (Idempotency-Key on POST /relay/v1/deliveries) are records
// written in the same Append as the deliveries they answered, so "queued" and
// "this key was answered" are one durable fact:
//
//	dlv/i/<hash>             the first answer to the key
//	dlv/j/<expiry>/<hash>    expiry index: after <expiry> the sweeper removes both
const (
	keyIdem       = "dlv/i/"
	keyIdemExpiry = "dlv/j/"
)

// IdemAnswer is the answer kept for an idempotency key.
type IdemAnswer struct {
	Fingerprint string    `json:"fp"` // what was asked: a reused key must ask the same
	Status      int       `json:"status"`
	Body        []byte    `json:"body"`
	Location    string    `json:"location,omitempty"`
	At          time.Time `json:"at"`
}

// IdemHash names a key within its scope (the route), fixed-size whatever the key.
func IdemHash(scope, key string) string {
	sum := sha256.Sum256([]byte(scope + "\x00" + key))
	return hex.EncodeToString(sum[:16])
}

// Fingerprint summarises a request's content, to refuse a key reused for another.
func Fingerprint(parts ...[]byte) string {
	h := sha256.New()
	for _, p := range parts {
		fmt.Fprintf(h, "%d:", len(p))
		h.Write(p)
	}
	return hex.EncodeToString(h.Sum(nil)[:16])
}

// Idempotent returns the answer kept for hash if it is younger than window.
func (b *Book) Idempotent(ctx context.Context, hash string, window time.Duration, now time.Time) (IdemAnswer, bool, error) {
	return LookupIdem(ctx, b.q, hash, window, now)
}

// LookupIdem returns the answer kept in s for hash if it is younger than window.
func LookupIdem(ctx context.Context, s queue.Store, hash string, window time.Duration, now time.Time) (IdemAnswer, bool, error) {
	var a IdemAnswer
	found, err := getJSON(ctx, s, keyIdem+hash, &a)
	if err != nil || !found || now.Sub(a.At) >= window {
		return IdemAnswer{}, false, err
	}
	return a, true, nil
}

// IdemRecords are the records that keep a's answer for hash during window.
func IdemRecords(hash string, a IdemAnswer, window time.Duration) []queue.Record {
	exp := fmt.Appendf(nil, "%s%016x/%s", keyIdemExpiry, uint64(a.At.Add(window).UnixNano()), hash)
	return []queue.Record{{Key: []byte(keyIdem + hash), Value: mustJSON(a)}, {Key: exp, Value: []byte{1}}}
}

// sweepIdempotency removes up to limit idempotency keys whose window ended before
// now and reports how many index entries it consumed. A key answered again after
// its window ended keeps its newer record (its own index entry covers it).
func sweepIdempotency(ctx context.Context, q Queue, now time.Time, window time.Duration, limit int) (int, error) {
	var due []string
	cutoff := fmt.Sprintf("%s%016x", keyIdemExpiry, uint64(now.UnixNano()))
	err := q.Scan(ctx, []byte(keyIdemExpiry), func(k, _ []byte) error {
		if string(k) > cutoff || len(due) >= limit {
			return errStopScan
		}
		due = append(due, string(k))
		return nil
	})
	if err != nil && !errors.Is(err, errStopScan) {
		return 0, fmt.Errorf("scan idempotency keys: %w", err)
	}
	if len(due) == 0 {
		return 0, nil
	}
	var recs []queue.Record
	for _, k := range due {
		recs = append(recs, queue.Record{Key: []byte(k)})
		hexAt, hash, _ := strings.Cut(strings.TrimPrefix(k, keyIdemExpiry), "/")
		var a IdemAnswer
		found, err := getJSON(ctx, q, keyIdem+hash, &a)
		if err != nil {
			return 0, err
		}
		if found && fmt.Sprintf("%016x", uint64(a.At.Add(window).UnixNano())) <= hexAt {
			recs = append(recs, queue.Record{Key: []byte(keyIdem + hash)})
		}
	}
	if _, err := q.Append(ctx, queue.Write{Records: recs}); err != nil {
		return 0, fmt.Errorf("delete expired idempotency keys: %w", err)
	}
	return len(due), nil
}
