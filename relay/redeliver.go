package relay

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strings"
	"time"

	"notifyrelay/api"
	"notifyrelay/delivery"
	"notifyrelay/destkind"
	"notifyrelay/oma"
	"notifyrelay/queue"
)

// Bounds of one re-delivery call (one atomic write).
const (
	redeliverLimitDefault = 1000
	redeliverLimitMax     = 10000
)

// redeliverRange is the body of POST /destinations/{id}/redeliver.
type redeliverRange struct {
	FromSeq uint64     `json:"fromSeq"` // from this seq on (0: the oldest retained)
	Since   *time.Time `json:"since"`   // accepted at or after
	Limit   int        `json:"limit"`
}

// postRedeliver is POST /destinations/{id}/redeliver: the destination's delivered
// notifications still retained (delivery.retain_delivered) from fromSeq and
// since go to the end of its queue again, in their order, with their ids, in one
// atomic write. Answers how many, and whether the limit left some.
func (o *operatorAPI) postRedeliver(r *api.Request) (api.Answer, *oma.RequestError) {
	dest := r.Params["id"]
	if !o.knownDest(r, dest) {
		return api.Answer{}, oma.NotFound(api.RequestPath(r.RequestCtx))
	}
	f, e := decodeRedeliver(r)
	if e != nil {
		return api.Answer{}, e
	}
	kept, err := o.book.RetainedOf(r, dest, f.FromSeq, since(f), f.Limit+1)
	if err != nil {
		return api.Answer{}, queueFault(err)
	}
	more := len(kept) > f.Limit
	if more {
		kept = kept[:f.Limit]
	}
	n, err := o.requeue(r, dest, kept)
	if errors.Is(err, queue.ErrDuplicateID) {
		return api.Answer{}, oma.InvalidInput("fromSeq (a notification of the range is a dead letter now: replay it there)")
	}
	if err != nil {
		return api.Answer{}, queueFault(err)
	}
	return api.Accepted(mustJSON(map[string]any{"redelivered": n, "more": more})), nil
}

func decodeRedeliver(r *api.Request) (redeliverRange, *oma.RequestError) {
	var f redeliverRange
	if body := r.PostBody(); len(bytes.TrimSpace(body)) > 0 {
		if ft, ok := oma.FormatOf(string(r.Request.Header.ContentType())); !ok || ft != oma.JSON {
			return f, oma.UnsupportedMedia(string(r.Request.Header.ContentType()))
		}
		dec := json.NewDecoder(bytes.NewReader(body))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&f); err != nil {
			return f, oma.InvalidInput("body ({fromSeq, since, limit})")
		}
	}
	if f.Limit == 0 {
		f.Limit = redeliverLimitDefault
	}
	if f.Limit < 0 || f.Limit > redeliverLimitMax {
		return f, oma.InvalidInput("limit (1 to 10000)")
	}
	return f, nil
}

func since(f redeliverRange) time.Time {
	if f.Since == nil {
		return time.Time{}
	}
	return *f.Since
}

// requeue appends kept to dest in one write, each id once; an operator
// delivery's settlement is undone in the same write (pending again).
func (o *operatorAPI) requeue(ctx context.Context, dest string, kept []delivery.Retained) (int, error) {
	var w queue.Write
	seen := map[string]bool{}
	for _, k := range kept {
		if seen[k.ID] {
			continue
		}
		seen[k.ID] = true
		w.Entries = append(w.Entries, queue.Entry{ID: k.ID, Dest: dest, Data: k.Data})
		if strings.HasPrefix(dest, destkind.OperatorPrefix) {
			w.Records = append(w.Records, o.book.Replayed(ctx, k.ID)...)
		}
	}
	if len(w.Entries) == 0 {
		return 0, nil
	}
	if _, err := o.q.Append(ctx, w); err != nil {
		return 0, err
	}
	return len(w.Entries), nil
}
