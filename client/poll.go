package client

import (
	"context"
	"fmt"
	"net/http"

	"notifyrelay/oma"
)

// pollSession long-polls until a poll fails or ctx ends.
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
		docs, err := oma.SplitNotifications(body)
		if err != nil {
			return progress, fmt.Errorf("long-poll answer: %w", err)
		}
		if err := r.handleAll(ctx, docs); err != nil {
			return progress, err
		}
		progress = progress || len(docs) > 0
	}
}

// poll sends one long poll and reads its answer to the end (the server counts
// it delivered only once the client's TCP stack acknowledged all of it).
func (r *receiver) poll(ctx context.Context) ([]byte, error) {
	pctx, cancel := context.WithTimeout(ctx, r.o.PollTimeout)
	defer cancel()
	status, body, err := r.c.do(pctx, "POST", r.ch.ChannelURL, []byte(`{"longPollingRequestParameters":null}`))
	if err != nil {
		return nil, err
	}
	if status != http.StatusOK {
		return nil, statusError("POST", r.ch.ChannelURL, status, body)
	}
	return body, nil
}
