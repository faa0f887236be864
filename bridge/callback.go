package bridge

import (
	"context"
	"fmt"
	"strings"

	"github.com/valyala/fasthttp"

	"notifyrelay/api"
	"notifyrelay/oma"
	"notifyrelay/queue"
	"notifyrelay/telemetry"
)

// handleCallback takes one notification POSTed to a callbackURL: no token needed
// (the URL is the capability). It answers 204 only once the notification is durable
// in the channel's queue.
func (s *store) handleCallback(r *api.Request) (api.Answer, *oma.RequestError) {
	c := s.hub.byToken(r.Params["token"])
	if c == nil {
		return api.Answer{}, oma.NotFound("callbackURL")
	}
	f, rerr := notificationFormat(r.RequestCtx)
	if rerr != nil {
		return api.Answer{}, rerr
	}
	body := api.Body(r.RequestCtx)
	if rerr := oma.CheckNotification(f, body); rerr != nil {
		return api.Answer{}, rerr
	}
	span, tp := api.AcceptSpan(s.tracer, r.RequestCtx, "callback")
	defer span.End()
	env := oma.Envelope{ContentType: f.ContentType(), Body: body, Traceparent: tp}
	if rerr := s.appendTo(r, c, env); rerr != nil {
		return api.Answer{}, rerr
	}
	return api.NoContent(), nil
}

// admitCallback lets a notification's body be read only for a callbackURL that
// exists: its token is the credential.
func (s *store) admitCallback(_ *fasthttp.RequestCtx, p api.Params) *oma.RequestError {
	if s.hub.byToken(p["token"]) == nil {
		return oma.NotFound("callbackURL")
	}
	return nil
}

// notificationFormat is the format of a POSTed notification: its Content-Type, or
// sniffed from the body when there is none. Any other type is a 415.
func notificationFormat(ctx *fasthttp.RequestCtx) (oma.Format, *oma.RequestError) {
	if strings.TrimSpace(string(ctx.Request.Header.ContentType())) != "" {
		return api.RequestFormat(ctx)
	}
	f, ok := oma.SniffFormat(ctx.PostBody())
	if !ok {
		return f, oma.InvalidInput("notification (neither XML nor JSON)")
	}
	return f, nil
}

// appendTo queues env on c unless c is deleted meanwhile (then 404).
func (s *store) appendTo(ctx context.Context, c *channel, env oma.Envelope) *oma.RequestError {
	c.life.RLock()
	defer c.life.RUnlock()
	if c.gone.Load() {
		return oma.NotFound("callbackURL")
	}
	e := queue.Entry{ID: randomHex(16), Dest: c.dest(), Data: env.Marshal()}
	end := telemetry.Commit(s.tracer, env.Traceparent)
	_, err := s.q.Append(ctx, queue.Write{Entries: []queue.Entry{e}})
	end(err)
	if err != nil {
		return oma.Unavailable().Because(fmt.Errorf("queue a notification for channel %s: %w", c.st.ID, err))
	}
	return nil
}
