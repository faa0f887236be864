package relay

import (
	"context"
	"errors"
	"sort"
	"strconv"
	"strings"
	"time"

	"notifyrelay/api"
	"notifyrelay/destkind"
	"notifyrelay/oma"
	"notifyrelay/queue"
)

// deliveryView is GET /deliveries/{id}.
type deliveryView struct {
	ID          string     `json:"id"`
	NotifyURL   string     `json:"notifyURL"`
	Key         string     `json:"key"`
	State       string     `json:"state"`
	Attempts    int        `json:"attempts"`
	LastError   string     `json:"lastError"`
	CreatedAt   time.Time  `json:"createdAt"`
	DeliveredAt *time.Time `json:"deliveredAt"`
	DeadAt      *time.Time `json:"deadAt,omitempty"`
}

func (o *operatorAPI) getDelivery(r *api.Request) (api.Answer, *oma.RequestError) {
	v, found, err := o.delivery(r, r.Params["id"])
	switch {
	case err != nil:
		return api.Answer{}, queueFault(err)
	case !found:
		return api.Answer{}, oma.NotFound(api.RequestPath(r.RequestCtx))
	}
	return api.OK(mustJSON(v)), nil
}

// delivery assembles a delivery's view from its records and the queue.
func (o *operatorAPI) delivery(ctx context.Context, id string) (deliveryView, bool, error) {
	var a acceptedRecord
	found, err := getJSON(ctx, o.q, keyAccepted+id, &a)
	if err != nil || !found {
		return o.expiredDead(ctx, id, err)
	}
	v := deliveryView{ID: id, NotifyURL: a.NotifyURL, Key: a.Key, State: statePending, CreatedAt: a.CreatedAt}
	var s settledRecord
	if found, err = getJSON(ctx, o.q, keySettled+id, &s); err != nil {
		return v, false, err
	}
	if found && s.State == stateDead {
		// Recorded dead but not (yet, or no longer) in the dead letter list: a crash
		// came between the two writes, or it was replayed. Either way it is queued.
		if _, err := o.q.GetDeadLetter(ctx, id); errors.Is(err, queue.ErrNotFound) {
			found = false
		}
	}
	v.Attempts = a.PriorAttempts
	if found {
		v.State, v.Attempts, v.LastError = s.State, v.Attempts+s.Attempts, s.LastError
		at := s.At
		if s.State == stateDelivered {
			v.DeliveredAt = &at
		} else {
			v.DeadAt = &at
		}
		return v, true, nil
	}
	head, err := o.q.Read(ctx, a.Dest, 0, 1)
	if err == nil && len(head) == 1 && head[0].ID == id {
		v.Attempts, v.LastError = v.Attempts+head[0].Attempts, head[0].LastError
	}
	return v, true, err
}

// expiredDead answers for a dead letter whose records are past retention.
func (o *operatorAPI) expiredDead(ctx context.Context, id string, err error) (deliveryView, bool, error) {
	if err != nil {
		return deliveryView{}, false, err
	}
	dl, err := o.q.GetDeadLetter(ctx, id)
	if errors.Is(err, queue.ErrNotFound) || (err == nil && !strings.HasPrefix(dl.Dest, destkind.OperatorPrefix)) {
		return deliveryView{}, false, nil
	}
	if err != nil {
		return deliveryView{}, false, err
	}
	t, _, _ := o.dests.lookup(ctx, dl.Dest)
	deadAt := dl.DeadAt
	return deliveryView{ID: id, NotifyURL: t.NotifyURL, Key: t.Key, State: stateDead, Attempts: dl.Attempts,
		LastError: dl.Reason, CreatedAt: dl.Enqueued, DeadAt: &deadAt}, true, nil
}

// deadLetterView is one element of GET /deadletters.
type deadLetterView struct {
	ID        string    `json:"id"`
	NotifyURL string    `json:"notifyURL"`
	Key       string    `json:"key"`
	Kind      string    `json:"kind"`
	Attempts  int       `json:"attempts"`
	LastError string    `json:"lastError"`
	DeadAt    time.Time `json:"deadAt"`
}

// listDeadLetters is GET /deadletters[?notifyURL=&limit=&after=], webhook dead
// letters (operator and chat subscription) in id order.
func (o *operatorAPI) listDeadLetters(r *api.Request) (api.Answer, *oma.RequestError) {
	args := r.QueryArgs()
	limit := 100
	if s := string(args.Peek("limit")); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 1000 {
			return api.Answer{}, oma.InvalidInput("limit (1 to 1000)")
		}
		limit = n
	}
	list, next, err := o.deadLetters(r, string(args.Peek("notifyURL")), string(args.Peek("after")), limit)
	if err != nil {
		return api.Answer{}, queueFault(err)
	}
	return api.OK(mustJSON(map[string]any{"deadletters": list, "next": next})), nil
}

// deadLetters pages through the queue's dead letters, keeping the webhook ones
// that match notifyURL. It scans at most 10 pages per call, so a rare filter
// answers a short page with a cursor rather than scanning everything at once.
func (o *operatorAPI) deadLetters(ctx context.Context, notifyURL, after string, limit int) ([]deadLetterView, string, error) {
	out := []deadLetterView{}
	for range 10 {
		page, next, err := o.q.DeadLetters(ctx, "", after, limit)
		if err != nil {
			return nil, "", err
		}
		for _, dl := range page {
			after = dl.ID
			v, ok := o.deadLetterView(ctx, dl)
			if !ok || (notifyURL != "" && v.NotifyURL != notifyURL) {
				continue
			}
			if out = append(out, v); len(out) == limit {
				return out, o.cursor(ctx, after), nil
			}
		}
		if next == "" {
			return out, "", nil
		}
	}
	return out, after, nil
}

// cursor is after when more dead letters follow it, else empty.
func (o *operatorAPI) cursor(ctx context.Context, after string) string {
	more, _, err := o.q.DeadLetters(ctx, "", after, 1)
	if err != nil || len(more) == 0 {
		return ""
	}
	return after
}

func (o *operatorAPI) deadLetterView(ctx context.Context, dl queue.DeadLetter) (deadLetterView, bool) {
	v := deadLetterView{ID: dl.ID, Kind: kindOf(dl.Dest), Attempts: dl.Attempts, LastError: dl.Reason, DeadAt: dl.DeadAt}
	switch {
	case strings.HasPrefix(dl.Dest, destkind.OperatorPrefix):
		t, _, _ := o.dests.lookup(ctx, dl.Dest)
		v.NotifyURL, v.Key = t.NotifyURL, t.Key
	case strings.HasPrefix(dl.Dest, destkind.SubscriptionPrefix):
		v.NotifyURL, _ = o.subs(ctx, dl.Dest)
	default:
		return v, false
	}
	var s settledRecord
	if found, _ := getJSON(ctx, o.q, keySettled+dl.ID, &s); found && s.State == stateDead {
		v.Attempts = s.Attempts
	}
	var a acceptedRecord
	if found, _ := getJSON(ctx, o.q, keyAccepted+dl.ID, &a); found {
		v.Attempts += a.PriorAttempts
	}
	return v, true
}

// replay is POST /deadletters/{id}:replay: the same delivery (same id) goes back to
// the end of its destination, pending.
func (o *operatorAPI) replay(r *api.Request) (api.Answer, *oma.RequestError) {
	notFound := oma.NotFound(api.RequestPath(r.RequestCtx))
	id, ok := strings.CutSuffix(r.Params["id"], ":replay")
	if !ok || id == "" {
		return api.Answer{}, notFound
	}
	dl, err := o.q.GetDeadLetter(r, id)
	if errors.Is(err, queue.ErrNotFound) || (err == nil && !isWebhookDest(dl.Dest)) {
		return api.Answer{}, notFound
	}
	if err == nil {
		_, err = o.q.Replay(r, id)
	}
	if err == nil { // pending again: its settlement no longer holds
		_, err = o.q.Append(r, queue.Write{Records: o.replayRecords(r, id)})
	}
	if errors.Is(err, queue.ErrNotFound) {
		return api.Answer{}, notFound
	}
	if err != nil {
		return api.Answer{}, queueFault(err)
	}
	return api.Accepted(mustJSON(map[string]string{"id": id, "state": statePending})), nil
}

func isWebhookDest(dest string) bool {
	return strings.HasPrefix(dest, destkind.OperatorPrefix) || strings.HasPrefix(dest, destkind.SubscriptionPrefix)
}

// destinationView is one element of GET /destinations.
type destinationView struct {
	ID               string     `json:"id"`
	Kind             string     `json:"kind"`
	NotifyURL        string     `json:"notifyURL"`
	Key              string     `json:"key"`
	Depth            int        `json:"depth"`
	OldestAgeSeconds float64    `json:"oldestAgeSeconds"`
	HeadAttempts     int        `json:"headAttempts"`
	State            string     `json:"state"`
	NextAttemptAt    *time.Time `json:"nextAttemptAt,omitempty"` // when retrying
}

// listDestinations is GET /destinations: every webhook destination with work.
func (o *operatorAPI) listDestinations(r *api.Request) (api.Answer, *oma.RequestError) {
	now := time.Now()
	out := []destinationView{}
	for _, prefix := range []string{destkind.OperatorPrefix, destkind.SubscriptionPrefix} {
		for _, s := range o.q.Dests(prefix) {
			out = append(out, o.destinationView(r, s, now))
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return api.OK(mustJSON(map[string]any{"destinations": out})), nil
}

func (o *operatorAPI) destinationView(ctx context.Context, s queue.DestStats, now time.Time) destinationView {
	v := destinationView{ID: s.Dest, Kind: kindOf(s.Dest), Depth: s.Depth, HeadAttempts: s.HeadAttempts, State: destState(s, now)}
	if !s.Oldest.IsZero() {
		v.OldestAgeSeconds = now.Sub(s.Oldest).Seconds()
	}
	if v.State == "retrying" {
		due := s.DueAt.UTC()
		v.NextAttemptAt = &due
	}
	if v.Kind == kindOperator {
		t, _, _ := o.dests.lookup(ctx, s.Dest)
		v.NotifyURL, v.Key = t.NotifyURL, t.Key
	} else {
		v.NotifyURL, _ = o.subs(ctx, s.Dest)
	}
	return v
}

// destState: "delivering" (a worker holds it), "retrying" (waiting for the next
// attempt after a failure) or "ready" (due, waiting for a free worker).
func destState(s queue.DestStats, now time.Time) string {
	switch {
	case s.Leased:
		return "delivering"
	case s.DueAt.After(now):
		return "retrying"
	}
	return "ready"
}

// replayRecords deletes a replayed delivery's settlement and carries its attempts
// over into the accepted record, so that attempts keeps counting every HTTP attempt.
func (o *operatorAPI) replayRecords(ctx context.Context, id string) []queue.Record {
	recs := []queue.Record{{Key: []byte(keySettled + id)}}
	var a acceptedRecord
	var s settledRecord
	foundA, errA := getJSON(ctx, o.q, keyAccepted+id, &a)
	foundS, errS := getJSON(ctx, o.q, keySettled+id, &s)
	if errA != nil || errS != nil || !foundA || !foundS {
		return recs
	}
	a.PriorAttempts += s.Attempts
	return append(recs, queue.Record{Key: []byte(keyAccepted + id), Value: mustJSON(a)})
}
