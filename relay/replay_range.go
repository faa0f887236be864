package relay

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"sort"
	"time"

	"notifyrelay/api"
	"notifyrelay/oma"
	"notifyrelay/queue"
)

// Bounds of a range replay.
const (
	replayLimitDefault = 10000
	replayLimitMax     = 100000
)

// replayRange is the body of POST /deadletters:replay: which dead letters to
// replay. Every given filter must match; at least one is required.
type replayRange struct {
	Destination string     `json:"destination"` // a destination id (o:…, s:…)
	NotifyURL   string     `json:"notifyURL"`   // every destination of this URL
	FromID      string     `json:"fromId"`      // ids from (inclusive)
	ToID        string     `json:"toId"`        // to (inclusive)
	Since       *time.Time `json:"since"`       // dead-lettered at or after
	Until       *time.Time `json:"until"`       // before
	Limit       int        `json:"limit"`       // at most this many (default 10,000)
}

func (f replayRange) empty() bool {
	return f.Destination == "" && f.NotifyURL == "" && f.FromID == "" && f.ToID == "" && f.Since == nil && f.Until == nil
}

// postReplayRange is POST /deadletters:replay: every webhook dead letter the range
// selects goes back to the end of its destination, as a single replay does, in id
// order. Answers how many, and whether the limit left some.
func (o *operatorAPI) postReplayRange(r *api.Request) (api.Answer, *oma.RequestError) {
	if f, ok := oma.FormatOf(string(r.Request.Header.ContentType())); !ok || f != oma.JSON {
		return api.Answer{}, oma.UnsupportedMedia(string(r.Request.Header.ContentType()))
	}
	var f replayRange
	dec := json.NewDecoder(bytes.NewReader(r.PostBody()))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil || f.empty() {
		return api.Answer{}, oma.InvalidInput("body ({destination, notifyURL, fromId, toId, since, until, limit}, at least one filter)")
	}
	if f.Limit == 0 {
		f.Limit = replayLimitDefault
	}
	if f.Limit < 0 || f.Limit > replayLimitMax {
		return api.Answer{}, oma.InvalidInput("limit (1 to 100000)")
	}
	n, more, err := o.replayMatching(r, f)
	if err != nil {
		return api.Answer{}, queueFault(err)
	}
	return api.Accepted(mustJSON(map[string]any{"replayed": n, "more": more})), nil
}

// replayMatching collects the dead letters the range selects (at most
// replayLimitMax), then replays the limit's worth first accepted, in the order
// they were accepted, so that each destination gets them back in its own order
// (ids are random) and a limited call takes the oldest.
func (o *operatorAPI) replayMatching(ctx context.Context, f replayRange) (n int, more bool, err error) {
	picked, more, err := o.pick(ctx, f)
	if err != nil {
		return 0, false, err
	}
	sort.SliceStable(picked, func(i, j int) bool {
		a, b := picked[i], picked[j]
		return a.at.Before(b.at) || (a.at.Equal(b.at) && a.seq < b.seq)
	})
	if len(picked) > f.Limit {
		picked, more = picked[:f.Limit], true
	}
	for _, p := range picked {
		if err := o.replayOne(ctx, p.id); err != nil && !errors.Is(err, queue.ErrNotFound) {
			return n, false, err
		}
		n++
	}
	return n, more, nil
}

// pickedDead is a dead letter chosen for replay.
type pickedDead struct {
	id  string
	at  time.Time // first accepted
	seq uint64
}

// pick pages through the dead letters from fromId (inclusive) to toId and keeps
// those that match, up to replayLimitMax; more says that bound left some.
func (o *operatorAPI) pick(ctx context.Context, f replayRange) ([]pickedDead, bool, error) {
	var out []pickedDead
	keep := func(dl queue.DeadLetter) bool { // false: stop, the limit is reached
		if !o.matches(ctx, f, dl) {
			return true
		}
		if len(out) == replayLimitMax {
			return false
		}
		out = append(out, pickedDead{id: dl.ID, at: dl.Enqueued, seq: dl.Seq})
		return true
	}
	if f.FromID != "" { // listing starts after it
		dl, err := o.q.GetDeadLetter(ctx, f.FromID)
		if err != nil && !errors.Is(err, queue.ErrNotFound) {
			return nil, false, err
		}
		if err == nil {
			keep(dl)
		}
	}
	for after := f.FromID; ; {
		page, next, err := o.q.DeadLetters(ctx, f.Destination, after, 1000)
		if err != nil {
			return nil, false, err
		}
		for _, dl := range page {
			if f.ToID != "" && dl.ID > f.ToID {
				return out, false, nil
			}
			if !keep(dl) {
				return out, true, nil
			}
		}
		if next == "" {
			return out, false, nil
		}
		after = next
	}
}

func (o *operatorAPI) matches(ctx context.Context, f replayRange, dl queue.DeadLetter) bool {
	switch {
	case !isWebhookDest(dl.Dest), f.Destination != "" && dl.Dest != f.Destination,
		f.FromID != "" && dl.ID < f.FromID,
		f.Since != nil && dl.DeadAt.Before(*f.Since), f.Until != nil && !dl.DeadAt.Before(*f.Until):
		return false
	case f.NotifyURL != "":
		v, ok := o.deadLetterView(ctx, dl)
		return ok && v.NotifyURL == f.NotifyURL
	}
	return true
}

// replayOne moves one dead letter back to the end of its destination, pending
// again: its settlement is undone before the entry is back in the queue, so a
// worker that delivers it at once records "delivered" after this, not before
// (the other order could leave it pending for good).
func (o *operatorAPI) replayOne(ctx context.Context, id string) error {
	if _, err := o.q.Append(ctx, queue.Write{Records: o.book.Replayed(ctx, id)}); err != nil {
		return err
	}
	_, err := o.q.Replay(ctx, id)
	return err
}
