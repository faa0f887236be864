package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"

	"notifyrelay/oma"
)

// ErrNoAckedLongPoll ends Receive in LongPoll mode when the server answered a
// poll with a plain notificationList: it has no acknowledged long polling (a
// notifyrelay before it, or another OMA server). The notifications of that answer
// were handed to the handler first (the server counted them delivered); use
// OMALongPoll with such a server.
var ErrNoAckedLongPoll = errors.New("server has no acknowledged long polling (?ack=N); use OMALongPoll")

// pollSession long-polls until a poll fails or ctx ends. In LongPoll mode each
// poll acknowledges (ack=N) what the handler accepted from the answers before, so
// what it did not accept comes again in the next answer.
func (r *receiver) pollSession(ctx context.Context) (bool, error) {
	progress := false
	for first := true; ; first = false {
		body, err := r.poll(ctx)
		if err != nil {
			return progress, err
		}
		if first {
			r.state(Connected, nil, 0)
		}
		handled, err := r.pollAnswer(ctx, body)
		progress = progress || handled
		if err != nil {
			return progress, err
		}
	}
}

// poll sends one long poll and reads its answer to the end (in OMALongPoll mode
// the server counts it delivered only once the client's TCP stack acknowledged
// all of it).
func (r *receiver) poll(ctx context.Context) ([]byte, error) {
	pctx, cancel := context.WithTimeout(ctx, r.o.PollTimeout)
	defer cancel()
	u := r.ch.ChannelURL
	if r.o.Mode == LongPoll {
		u += sep(u) + "ack=" + strconv.FormatUint(r.last, 10)
	}
	status, body, err := r.c.do(pctx, "POST", u, []byte(`{"longPollingRequestParameters":null}`))
	if err != nil {
		return nil, err
	}
	if status != http.StatusOK {
		return nil, statusError("POST", u, status, body)
	}
	return body, nil
}

// pollAnswer hands an answer's notifications to the handler; handled reports
// whether it took any.
func (r *receiver) pollAnswer(ctx context.Context, body []byte) (handled bool, err error) {
	if r.o.Mode == LongPoll {
		return r.ackedAnswer(ctx, body)
	}
	docs, err := oma.SplitNotifications(body)
	if err != nil {
		return false, fmt.Errorf("long-poll answer: %w", err)
	}
	return len(docs) > 0, r.handleAll(ctx, docs)
}

// ackedAnswer hands an acknowledged long poll's notifications over in order, up
// to the first the handler refuses: the next poll acknowledges up to r.last, so
// the refused one and those after it come again.
func (r *receiver) ackedAnswer(ctx context.Context, body []byte) (bool, error) {
	var a struct {
		Notifications *[]wireFrame `json:"notifications"`
	}
	if err := json.Unmarshal(body, &a); err != nil {
		return false, fmt.Errorf("acknowledged long-poll answer: %w", err)
	}
	if a.Notifications == nil {
		return r.plainAnswer(ctx, body)
	}
	progress := false
	for _, f := range *a.Notifications {
		handled, err := r.handleSeq(ctx, f)
		progress = progress || handled
		if err != nil {
			return progress, err
		}
	}
	return progress, nil
}

// plainAnswer is a notificationList answered to an acknowledged poll by a server
// that ignored ?ack: already counted delivered, so it is handed over before
// Receive ends with ErrNoAckedLongPoll.
func (r *receiver) plainAnswer(ctx context.Context, body []byte) (bool, error) {
	docs, err := oma.SplitNotifications(body)
	if err != nil {
		return false, fmt.Errorf("acknowledged long-poll answer: %w", err)
	}
	if err := r.handleAll(ctx, docs); err != nil {
		return false, err
	}
	return len(docs) > 0, ErrNoAckedLongPoll
}
