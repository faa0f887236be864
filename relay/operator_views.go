package relay

import (
	"context"
	"errors"
	"sort"
	"strconv"
	"strings"
	"time"

	"notifyrelay/api"
	"notifyrelay/delivery"
	"notifyrelay/destkind"
	"notifyrelay/oma"
	"notifyrelay/queue"
)

func (o *operatorAPI) getDelivery(r *api.Request) (api.Answer, *oma.RequestError) {
	v, found, err := o.book.Status(r, r.Params["id"])
	switch {
	case err != nil:
		return api.Answer{}, queueFault(err)
	case !found:
		return api.Answer{}, oma.NotFound(api.RequestPath(r.RequestCtx))
	}
	return api.OK(mustJSON(v)), nil
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
	v := deadLetterView{ID: dl.ID, Kind: delivery.KindOf(dl.Dest), LastError: dl.Reason, DeadAt: dl.DeadAt}
	switch {
	case strings.HasPrefix(dl.Dest, destkind.OperatorPrefix):
		t, _, _ := o.book.Target(ctx, dl.Dest)
		v.NotifyURL, v.Key = t.NotifyURL, t.Key
	case strings.HasPrefix(dl.Dest, destkind.SubscriptionPrefix):
		v.NotifyURL, _ = o.subs(ctx, dl.Dest)
	default:
		return v, false
	}
	v.Attempts = o.book.DeadAttempts(ctx, dl)
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
		err = o.replayOne(r, id)
	}
	if errors.Is(err, queue.ErrNotFound) {
		return api.Answer{}, notFound
	}
	if err != nil {
		return api.Answer{}, queueFault(err)
	}
	return api.Accepted(mustJSON(map[string]string{"id": id, "state": delivery.StatePending})), nil
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
	LastError        string     `json:"lastError,omitempty"` // of the head's last attempt
	State            string     `json:"state"`
	NextAttemptAt    *time.Time `json:"nextAttemptAt,omitempty"` // when retrying
	Paused           bool       `json:"paused"`
	RateLimit        *rateView  `json:"rateLimit"`         // effective; null: unlimited
	Headers          []string   `json:"headers,omitempty"` // names of the custom headers (values may be credentials)
}

// rateView is a destination's effective rate limit.
type rateView struct {
	Rate  float64 `json:"rate"`
	Burst int     `json:"burst"`
}

// listDestinations is GET /destinations: every webhook destination with work,
// and every paused one.
func (o *operatorAPI) listDestinations(r *api.Request) (api.Answer, *oma.RequestError) {
	now := time.Now()
	out := []destinationView{}
	for _, prefix := range []string{destkind.OperatorPrefix, destkind.SubscriptionPrefix} {
		listed := map[string]bool{}
		for _, s := range o.q.Dests(prefix) {
			out, listed[s.Dest] = append(out, o.destinationView(r, s, now)), true
		}
		for _, dest := range o.ctl.PausedList(prefix) {
			if !listed[dest] {
				out = append(out, o.destinationView(r, queue.DestStats{Dest: dest}, now))
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return api.OK(mustJSON(map[string]any{"destinations": out})), nil
}

func (o *operatorAPI) destinationView(ctx context.Context, s queue.DestStats, now time.Time) destinationView {
	v := destinationView{ID: s.Dest, Kind: delivery.KindOf(s.Dest), Depth: s.Depth, HeadAttempts: s.HeadAttempts,
		State: destState(s, now), Paused: o.ctl.Paused(s.Dest)}
	if v.Paused {
		v.State = "paused"
	} else if wait := o.ctl.PaceWait(s.Dest, now); wait > 0 && s.Depth > 0 && v.State != "retrying" {
		// Its lease is parked until the rate limit allows the next attempt.
		v.State = "pacing"
		due := now.Add(wait).UTC()
		v.NextAttemptAt = &due
	}
	set, lim := o.ctl.SettingsOf(s.Dest)
	if lim.Rate > 0 {
		v.RateLimit = &rateView{Rate: lim.Rate, Burst: lim.Burst}
	}
	for name := range set.Headers {
		v.Headers = append(v.Headers, name)
	}
	sort.Strings(v.Headers)
	if !s.Oldest.IsZero() {
		v.OldestAgeSeconds = now.Sub(s.Oldest).Seconds()
	}
	if v.State == "retrying" {
		due := s.DueAt.UTC()
		v.NextAttemptAt = &due
	}
	if s.HeadAttempts > 0 {
		if head, err := o.q.Read(ctx, s.Dest, 0, 1); err == nil && len(head) == 1 {
			v.LastError = head[0].LastError
		}
	}
	if v.Kind == string(destkind.Operator) {
		t, _, _ := o.book.Target(ctx, s.Dest)
		v.NotifyURL, v.Key = t.NotifyURL, t.Key
	} else {
		v.NotifyURL, _ = o.subs(ctx, s.Dest)
	}
	return v
}

// pause is POST /destinations/{id}/pause: no attempts (not even probes) until
// resumed; the backlog stays queued.
func (o *operatorAPI) pause(r *api.Request) (api.Answer, *oma.RequestError) {
	return o.control(r, o.ctl.Pause)
}

// resume is POST /destinations/{id}/resume: delivery goes on at once.
func (o *operatorAPI) resume(r *api.Request) (api.Answer, *oma.RequestError) {
	return o.control(r, o.ctl.Resume)
}

func (o *operatorAPI) control(r *api.Request, do func(ctx context.Context, dest, cause string) error) (api.Answer, *oma.RequestError) {
	dest := r.Params["id"]
	if !o.knownDest(r, dest) {
		return api.Answer{}, oma.NotFound(api.RequestPath(r.RequestCtx))
	}
	if err := do(r, dest, delivery.CauseOperator); err != nil {
		return api.Answer{}, queueFault(err)
	}
	return api.OK(mustJSON(o.destinationView(r, o.q.DestStats(dest), time.Now()))), nil
}

// knownDest reports whether dest is a webhook destination that exists: with work,
// paused, an operator destination ever used, or a live chat subscription's.
func (o *operatorAPI) knownDest(ctx context.Context, dest string) bool {
	switch {
	case !isWebhookDest(dest):
		return false
	case o.q.DestStats(dest).Depth > 0 || o.ctl.Paused(dest):
		return true
	case strings.HasPrefix(dest, destkind.OperatorPrefix):
		_, ok, _ := o.book.Target(ctx, dest)
		return ok
	}
	_, ok := o.subs(ctx, dest)
	return ok
}

// destState: "paused" and "pacing" (set by the caller), "delivering" (a worker holds it), "retrying"
// (waiting for the next attempt after a failure) or "ready" (due, waiting for a free worker).
func destState(s queue.DestStats, now time.Time) string {
	switch {
	case s.Leased:
		return "delivering"
	case s.DueAt.After(now):
		return "retrying"
	}
	return "ready"
}
