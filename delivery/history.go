package delivery

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"time"
	"unicode/utf8"

	"notifyrelay/queue"
)

// Every failed HTTP attempt of a delivery leaves a record under
//
//	dlv/a/<id>/<slot>        slot = (attempt-1) mod historyMax
//
// so a delivery keeps its last historyMax failures whatever its number of
// attempts. The records go with the delivery's other records: swept after
// record_retention, deleted when a chat subscription's notification is finally
// delivered, or dropped with its destination. A successful attempt leaves none:
// it would be one more write per notification on the hot path, and its outcome
// is already the settlement.
const keyAttempt = "dlv/a/"

// historyMax is how many failed attempts a delivery keeps (the latest ones).
const historyMax = 20

// excerptMax bounds the receiver's answer kept per attempt.
const excerptMax = 512

// Attempt is one failed HTTP attempt, as GET /deadletters/{id} and GET
// /deliveries/{id} show it.
type Attempt struct {
	N         int       `json:"attempt"` // 1 for the first, counting across replays of operator deliveries
	At        time.Time `json:"at"`
	Status    int       `json:"status,omitempty"` // absent: no HTTP answer (see error)
	LatencyMs float64   `json:"latencyMs"`
	Error     string    `json:"error,omitempty"`    // why there was no answer, or why it did not count
	Response  string    `json:"response,omitempty"` // the start of the receiver's answer
}

// newAttempt describes res, an attempt that did not deliver.
func newAttempt(res attemptResult, at time.Time) Attempt {
	a := Attempt{At: at, Status: res.status, LatencyMs: float64(res.took.Microseconds()) / 1000}
	if res.status == 0 && res.err != nil {
		a.Error = res.err.Error()
	}
	body := res.body
	if len(body) > excerptMax {
		body = body[:excerptMax]
	}
	a.Response = strings.ToValidUTF8(string(body), string(utf8.RuneError))
	return a
}

func attemptKey(id string, n int) []byte {
	return fmt.Appendf(nil, "%s%s/%02d", keyAttempt, id, (n-1)%historyMax)
}

// attemptRecord is a's record; a.N must be set.
func attemptRecord(id string, a Attempt) queue.Record {
	return queue.Record{Key: attemptKey(id, a.N), Value: mustJSON(a)}
}

// historyDeletes removes the records of id's first failures attempts (all of
// them once failures reaches historyMax).
func historyDeletes(id string, failures int) []queue.Record {
	recs := make([]queue.Record, 0, min(failures, historyMax))
	for n := 1; n <= min(failures, historyMax); n++ {
		recs = append(recs, queue.Record{Key: attemptKey(id, n)})
	}
	return recs
}

// History returns id's kept failed attempts, oldest first.
func (b *Book) History(ctx context.Context, id string) ([]Attempt, error) {
	out := []Attempt{}
	err := b.q.Scan(ctx, []byte(keyAttempt+id+"/"), func(_, v []byte) error {
		var a Attempt
		if err := json.Unmarshal(v, &a); err != nil {
			return fmt.Errorf("decode attempt of %s: %w", id, err)
		}
		out = append(out, a)
		return nil
	})
	sort.Slice(out, func(i, j int) bool { return out[i].N < out[j].N })
	return out, err
}

// priorAttempts is how many attempts an operator delivery had before its last
// replay (0 for other kinds, whose count starts again at a replay).
func (b *Book) priorAttempts(ctx context.Context, id string) int {
	var a acceptedRecord
	if found, err := getJSON(ctx, b.q, keyAccepted+id, &a); err != nil || !found {
		return 0
	}
	return a.PriorAttempts
}
