package relay

import (
	"errors"

	"notifyrelay/api"
	"notifyrelay/delivery"
	"notifyrelay/oma"
	"notifyrelay/queue"
)

// deadLetterDetail is GET /deadletters/{id}: the list's view, the destination and
// the notification itself, so an operator can inspect it before replaying it.
type deadLetterDetail struct {
	deadLetterView
	Destination string `json:"destination"`
	ContentType string `json:"contentType"`
	Body        string `json:"body"`
	// History is every failed attempt kept (the last 20), oldest first.
	History []delivery.Attempt `json:"history"`
}

// getDeadLetter is GET /deadletters/{id} (the route's POST is {id}:replay).
func (o *operatorAPI) getDeadLetter(r *api.Request) (api.Answer, *oma.RequestError) {
	dl, err := o.q.GetDeadLetter(r, r.Params["id"])
	if errors.Is(err, queue.ErrNotFound) || (err == nil && !isWebhookDest(dl.Dest)) {
		return api.Answer{}, oma.NotFound(api.RequestPath(r.RequestCtx))
	}
	if err != nil {
		return api.Answer{}, queueFault(err)
	}
	v, _ := o.deadLetterView(r, dl)
	d := deadLetterDetail{deadLetterView: v, Destination: dl.Dest}
	if env, err := oma.UnmarshalEnvelope(dl.Data); err == nil {
		d.ContentType, d.Body = env.ContentType, string(env.Body)
	}
	if d.History, err = o.book.History(r, dl.ID); err != nil {
		return api.Answer{}, queueFault(err)
	}
	return api.OK(mustJSON(d)), nil
}
