package delivery

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"notifyrelay/queue"
)

// With delivery.retain_delivered, delivered notifications are kept as records
// (staged with the acknowledgement of their run) so they can be delivered again:
//
//	dlv/r/<dest>/<seq>             a delivered notification: id, data, times
//	dlv/q/<expiry>/<dest>/<seq>    its expiry: after <expiry> the sweeper removes both
//
// <seq> and <expiry> are fixed-width hex, so keys sort by them.
const (
	keyRetained      = "dlv/r/"
	keyRetainedIndex = "dlv/q/"
)

// Retained is a delivered notification kept for re-delivery.
type Retained struct {
	ID          string    `json:"id"`
	Seq         uint64    `json:"seq"`
	Data        []byte    `json:"data"`
	Enqueued    time.Time `json:"enqueued"`
	DeliveredAt time.Time `json:"deliveredAt"`
}

func retainedKey(dest string, seq uint64) string {
	return fmt.Sprintf("%s%s/%016x", keyRetained, dest, seq)
}

// retainRecords keep e, delivered at at, for keep.
func retainRecords(e queue.Entry, at time.Time, keep time.Duration) []queue.Record {
	r := Retained{ID: e.ID, Seq: e.Seq, Data: e.Data, Enqueued: e.Enqueued, DeliveredAt: at}
	exp := fmt.Appendf(nil, "%s%016x/%s/%016x", keyRetainedIndex, uint64(at.Add(keep).UnixNano()), e.Dest, e.Seq)
	return []queue.Record{{Key: []byte(retainedKey(e.Dest, e.Seq)), Value: mustJSON(r)}, {Key: exp, Value: []byte{1}}}
}

// RetainedOf returns up to limit notifications of dest still retained, in seq
// order, from seq fromSeq on, accepted at or after since.
func (b *Book) RetainedOf(ctx context.Context, dest string, fromSeq uint64, since time.Time, limit int) ([]Retained, error) {
	var out []Retained
	prefix := keyRetained + dest + "/"
	from := retainedKey(dest, fromSeq)
	err := b.q.Scan(ctx, []byte(prefix), func(k, v []byte) error {
		if string(k) < from {
			return nil
		}
		var r Retained
		if err := json.Unmarshal(v, &r); err != nil {
			return fmt.Errorf("decode %s: %w", k, err)
		}
		if !r.Enqueued.Before(since) {
			out = append(out, r)
		}
		if len(out) == limit {
			return errStopScan
		}
		return nil
	})
	if err != nil && !errors.Is(err, errStopScan) {
		return nil, err
	}
	return out, nil
}

// sweepRetained removes up to limit retained notifications whose time is up,
// and reports how many.
func sweepRetained(ctx context.Context, q Queue, now time.Time, limit int) (int, error) {
	var recs []queue.Record
	cutoff := fmt.Sprintf("%s%016x", keyRetainedIndex, uint64(now.UnixNano()))
	err := q.Scan(ctx, []byte(keyRetainedIndex), func(k, _ []byte) error {
		if string(k) > cutoff || len(recs) >= 2*limit {
			return errStopScan
		}
		rest := strings.TrimPrefix(string(k), keyRetainedIndex)
		_, destSeq, _ := strings.Cut(rest, "/")
		recs = append(recs, queue.Record{Key: append([]byte(nil), k...)}, queue.Record{Key: []byte(keyRetained + destSeq)})
		return nil
	})
	if err != nil && !errors.Is(err, errStopScan) {
		return 0, fmt.Errorf("scan retained notifications: %w", err)
	}
	if len(recs) == 0 {
		return 0, nil
	}
	if _, err := q.Append(ctx, queue.Write{Records: recs}); err != nil {
		return 0, fmt.Errorf("delete expired retained notifications: %w", err)
	}
	return len(recs) / 2, nil
}
