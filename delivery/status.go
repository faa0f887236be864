package delivery

import (
	"context"
	"errors"
	"strings"
	"time"

	"notifyrelay/destkind"
	"notifyrelay/queue"
)

// Status is what became of an operator delivery (GET /relay/v1/deliveries/{id}).
type Status struct {
	ID          string     `json:"id"`
	NotifyURL   string     `json:"notifyURL"`
	Key         string     `json:"key"`
	State       string     `json:"state"`
	Attempts    int        `json:"attempts"`
	LastError   string     `json:"lastError"`
	CreatedAt   time.Time  `json:"createdAt"`
	DeliveredAt *time.Time `json:"deliveredAt"`
	DeadAt      *time.Time `json:"deadAt,omitempty"`
	History     []Attempt  `json:"history"` // failed attempts, the last historyMax
}

// Status assembles a delivery's status from its records and the queue; found is
// false when there is no such operator delivery.
func (b *Book) Status(ctx context.Context, id string) (Status, bool, error) {
	v, found, err := b.status(ctx, id)
	if err != nil || !found {
		return v, found, err
	}
	v.History, err = b.History(ctx, id)
	return v, true, err
}

func (b *Book) status(ctx context.Context, id string) (Status, bool, error) {
	var a acceptedRecord
	found, err := getJSON(ctx, b.q, keyAccepted+id, &a)
	if err != nil || !found {
		return b.expiredDead(ctx, id, err)
	}
	v := Status{ID: id, NotifyURL: a.NotifyURL, Key: a.Key, State: StatePending, CreatedAt: a.CreatedAt}
	var s settledRecord
	if found, err = getJSON(ctx, b.q, keySettled+id, &s); err != nil {
		return v, false, err
	}
	if found && s.State == StateDead {
		// Recorded dead but not (yet, or no longer) in the dead letter list: a crash
		// came between the two writes, or it was replayed. Either way it is queued.
		if _, err := b.q.GetDeadLetter(ctx, id); errors.Is(err, queue.ErrNotFound) {
			found = false
		}
	}
	v.Attempts = a.PriorAttempts
	if found {
		v.State, v.Attempts, v.LastError = s.State, v.Attempts+s.Attempts, s.LastError
		at := s.At
		if s.State == StateDelivered {
			v.DeliveredAt = &at
		} else {
			v.DeadAt = &at
		}
		return v, true, nil
	}
	head, err := b.q.Read(ctx, a.Dest, 0, 1)
	if err == nil && len(head) == 1 && head[0].ID == id {
		v.Attempts, v.LastError = v.Attempts+head[0].Attempts, head[0].LastError
	}
	return v, true, err
}

// expiredDead answers for a dead letter whose records are past retention.
func (b *Book) expiredDead(ctx context.Context, id string, err error) (Status, bool, error) {
	if err != nil {
		return Status{}, false, err
	}
	dl, err := b.q.GetDeadLetter(ctx, id)
	if errors.Is(err, queue.ErrNotFound) || (err == nil && !strings.HasPrefix(dl.Dest, destkind.OperatorPrefix)) {
		return Status{}, false, nil
	}
	if err != nil {
		return Status{}, false, err
	}
	t, _, _ := b.Target(ctx, dl.Dest)
	deadAt := dl.DeadAt
	return Status{ID: id, NotifyURL: t.NotifyURL, Key: t.Key, State: StateDead, Attempts: dl.Attempts,
		LastError: dl.Reason, CreatedAt: dl.Enqueued, DeadAt: &deadAt}, true, nil
}

// DeadAttempts is every HTTP attempt made for a dead letter, replays included.
func (b *Book) DeadAttempts(ctx context.Context, dl queue.DeadLetter) int {
	n := dl.Attempts
	var s settledRecord
	if found, _ := getJSON(ctx, b.q, keySettled+dl.ID, &s); found && s.State == StateDead {
		n = s.Attempts
	}
	var a acceptedRecord
	if found, _ := getJSON(ctx, b.q, keyAccepted+dl.ID, &a); found {
		n += a.PriorAttempts
	}
	return n
}

// Replayed is what a replayed dead letter's records become: its settlement
// deleted, its attempts carried over into the accepted record, so that attempts
// keeps counting every HTTP attempt.
func (b *Book) Replayed(ctx context.Context, id string) []queue.Record {
	recs := []queue.Record{{Key: []byte(keySettled + id)}}
	var a acceptedRecord
	var s settledRecord
	foundA, errA := getJSON(ctx, b.q, keyAccepted+id, &a)
	foundS, errS := getJSON(ctx, b.q, keySettled+id, &s)
	if errA != nil || errS != nil || !foundS {
		return recs
	}
	if !foundA { // a chat subscription's: its history starts again with the replay
		return append(recs, historyDeletes(id, s.Attempts)...)
	}
	a.PriorAttempts += s.Attempts
	return append(recs, queue.Record{Key: []byte(keyAccepted + id), Value: mustJSON(a)})
}
