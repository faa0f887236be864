package bridge

import (
	"context"
	"strings"
	"time"

	"github.com/rs/zerolog"
	"github.com/valyala/fasthttp"

	"notifyrelay/api"
	"notifyrelay/config"
	"notifyrelay/oma"
	"notifyrelay/queue"
)

// Why a waiting long poll is ended from outside.
const (
	endSuperseded = iota + 1 // a newer poll on the channel: 409 SVC1012
	endDeleted               // the channel was deleted or expired: 404
	endDrain                 // the server is stopping: empty list
)

// pollQueue is what the long-poll transport uses of the queue.
type pollQueue interface {
	Read(ctx context.Context, dest string, after uint64, max int) ([]queue.Entry, error)
	Watch(dest string) (wake <-chan struct{}, stop func())
}

// pollTransport serves long polls on LongPolling channels and streams their
// answers (pollAnswer).
type pollTransport struct {
	cfg      config.Channels
	q        pollQueue
	channels channelStore
	acks     *acker
	conns    *connSet
	metrics  *metrics
	log      zerolog.Logger
}

// poller is one waiting long poll.
type poller struct {
	ended  chan int   // capacity 1: the first end wins
	format oma.Format // negotiated from Accept, when named
	named  bool       // Accept names XML or JSON: empty lists are in format
	only   bool       // Accept allows only format: so must every answer be
	acked  bool       // acknowledged long polling (?ack=N, pollack.go)
}

func (p *poller) end(why int) {
	select {
	case p.ended <- why:
	default:
	}
}

// handlePoll is the long poll on a LongPolling channel's channelURL. Delivery: the
// notifications of an answer are acknowledged once the response carrying them has
// been written to the connection (pollAnswer), so the next poll never repeats them;
// a failed write leaves them queued for the next poll (docs/channels.md).
func (t *pollTransport) handlePoll(r *api.Request) (api.Answer, *oma.RequestError) {
	c, rerr := t.channels.ownChannel(r)
	if rerr == nil && c.st.Type != oma.ChannelLongPolling {
		rerr = oma.NotFound(api.RequestPath(r.RequestCtx))
	}
	if rerr == nil {
		rerr = checkPollBody(r.RequestCtx)
	}
	ack, acked, aerr := pollAck(r.RequestCtx)
	if rerr == nil {
		rerr = aerr
	}
	if rerr != nil {
		return api.Answer{}, rerr
	}
	if acked {
		if err := t.applyPollAck(r, c, ack); err != nil {
			return api.Answer{}, oma.Unavailable().Because(err)
		}
	}
	p := &poller{ended: make(chan int, 1), acked: acked}
	pollFormat(r, p)
	if p.acked && p.only && p.format != oma.JSON { // acknowledged answers are JSON
		return api.Answer{}, oma.NotAcceptable(string(r.Request.Header.Peek("Accept")))
	}
	if !t.conns.track(nil, p) {
		return api.Answer{}, oma.Unavailable()
	}
	defer t.conns.untrack(nil, p)
	t.metrics.connected("poll", 1)
	defer t.metrics.connected("poll", -1)
	t.startPoll(r, c, p)
	defer c.endPoll(p)
	return t.waitPoll(r.RequestCtx, c, p)
}

func checkPollBody(ctx *fasthttp.RequestCtx) *oma.RequestError {
	body := ctx.PostBody()
	if len(strings.TrimSpace(string(body))) == 0 {
		return nil
	}
	ct := strings.ToLower(string(ctx.Request.Header.ContentType()))
	if strings.HasPrefix(ct, "application/x-www-form-urlencoded") {
		return nil
	}
	f, rerr := api.RequestFormat(ctx)
	if rerr != nil {
		return rerr
	}
	return oma.CheckLongPollingRequest(f, body)
}

// pollFormat reads a poll's Accept. With one that names XML or JSON, format is the
// negotiated one (for an empty list) and only is set when Accept allows just that
// one format: then answers carry only notifications of that format. Without
// Accept, or with wildcards only (curl's */*), each answer is in the format of the
// notifications it carries. (An Accept that allows neither was refused with 406 by
// the opening.)
func pollFormat(r *api.Request, p *poller) {
	accept := strings.ToLower(string(r.Request.Header.Peek("Accept")))
	if strings.TrimSpace(accept) == "" {
		return
	}
	allowsJSON, allowsXML, named := acceptAllows(accept)
	p.format, p.named, p.only = r.Format, named, allowsJSON != allowsXML
}

// acceptAllows reports which formats Accept allows (explicitly or by wildcard,
// q=0 excluding a type) and whether it names one explicitly.
func acceptAllows(accept string) (allowsJSON, allowsXML, named bool) {
	for _, part := range strings.Split(accept, ",") {
		mt, params, _ := strings.Cut(part, ";")
		if q := strings.ReplaceAll(params, " ", ""); strings.Contains(q, "q=0") && !strings.Contains(q, "q=0.") {
			continue
		}
		mt = strings.TrimSpace(mt)
		f, ok := oma.FormatOf(mt)
		named = named || ok
		wild := mt == "*/*" || mt == "application/*"
		allowsJSON = allowsJSON || wild || (ok && f == oma.JSON)
		allowsXML = allowsXML || wild || mt == "text/*" || (ok && f == oma.XML)
	}
	return allowsJSON, allowsXML, named
}

// startPoll makes p the channel's poll (ending an older one with 409) and restarts
// the channel's lifetime.
func (t *pollTransport) startPoll(ctx context.Context, c *channel, p *poller) {
	c.mu.Lock()
	if c.poll != nil {
		c.poll.end(endSuperseded)
	}
	c.poll = p
	c.mu.Unlock()
	if _, err := t.channels.refresh(ctx, c, 0); err != nil {
		t.log.Warn().Err(err).Str("channel", c.st.ID).Msg("refreshing lifetime on poll")
	}
}

func (c *channel) endPoll(p *poller) {
	c.mu.Lock()
	if c.poll == p {
		c.poll = nil
	}
	c.mu.Unlock()
}

// inFlight is closed when the answer being written settles; nil when none is.
func (c *channel) inFlight() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.sending
}

// waitPoll answers as soon as something is pending, or empty at the poll timeout.
// While an earlier answer is still being written it waits for its outcome, so it
// neither repeats that answer nor skips it if the write fails.
func (t *pollTransport) waitPoll(ctx *fasthttp.RequestCtx, c *channel, p *poller) (api.Answer, *oma.RequestError) {
	wake, stop := t.q.Watch(c.dest())
	defer stop()
	timer := time.NewTimer(t.cfg.PollTimeout.D())
	defer timer.Stop()
	for {
		busy := c.inFlight()
		if busy == nil {
			es, err := t.q.Read(ctx, c.dest(), 0, min(c.st.MaxNotifications, pollPage))
			if err != nil {
				return t.failedRead(ctx, c, p)
			}
			if len(es) > 0 {
				return t.answerPoll(ctx, c, p, es)
			}
		}
		select {
		case <-wake:
		case <-busy: // nil, and so never ready, when nothing is in flight
		case why := <-p.ended:
			return t.endedPoll(ctx, c, p, why)
		case <-timer.C:
			return t.writeEmpty(c, p)
		}
	}
}

// failedRead answers a poll whose Read failed: as ended when it was (a drain ends
// polls and then the server's shutdown cancels their requests, failing the Read),
// else 503.
func (t *pollTransport) failedRead(ctx *fasthttp.RequestCtx, c *channel, p *poller) (api.Answer, *oma.RequestError) {
	select {
	case why := <-p.ended:
		return t.endedPoll(ctx, c, p, why)
	default:
		return api.Answer{}, oma.Unavailable()
	}
}

func (t *pollTransport) endedPoll(ctx *fasthttp.RequestCtx, c *channel, p *poller, why int) (api.Answer, *oma.RequestError) {
	switch why {
	case endSuperseded:
		return api.Answer{}, oma.PollSuperseded()
	case endDeleted:
		return api.Answer{}, oma.NotFound(api.RequestPath(ctx))
	}
	return t.writeEmpty(c, p)
}

// answerPoll streams the pending notifications of the head's format, up to
// maxNotifications and channels.max_answer_bytes (at least one), as one list, to
// be acknowledged once the client received it (pollAnswer). The head's format must
// be one Accept allows, else 406 (nothing is consumed: a poll that accepts it gets
// it). A poll superseded since its Read answers 409 and sends nothing, so only the
// channel's current poll ever sends.
func (t *pollTransport) answerPoll(ctx *fasthttp.RequestCtx, c *channel, p *poller, es []queue.Entry) (api.Answer, *oma.RequestError) {
	if p.acked {
		return t.answerAcked(ctx, c, p)
	}
	first := decode(es[0])
	if p.only && first.format != p.format {
		return api.Answer{}, oma.NotAcceptable(string(ctx.Request.Header.Peek("Accept")))
	}
	done, ok := c.beginAnswer(p)
	if !ok {
		return api.Answer{}, oma.PollSuperseded()
	}
	a := &pollAnswer{t: t, c: c, conn: ctx.Conn(), f: first.format, max: c.st.MaxNotifications,
		maxBytes: int(t.cfg.MaxAnswerBytes), http10: !ctx.Request.Header.IsHTTP11(), done: done}
	a.start(first, es[1:])
	t.conns.wg.Add(1) // until the answer settles, after the handler returned
	size := -1        // chunked: see pollAnswer
	if a.http10 {
		size = a.bufferAll()
	}
	return api.Answer{Status: fasthttp.StatusOK, ContentType: first.format.ContentType(), Stream: a, StreamSize: size}, nil
}

// beginAnswer marks an answer in flight on c, if p is still c's poll.
func (c *channel) beginAnswer(p *poller) (chan struct{}, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.poll != p || c.sending != nil {
		return nil, false
	}
	c.sending = make(chan struct{})
	return c.sending, true
}

// endAnswer clears the answer in flight and wakes the polls waiting for it.
func (c *channel) endAnswer(done chan struct{}) {
	c.mu.Lock()
	if c.sending == done {
		c.sending = nil
	}
	c.mu.Unlock()
	close(done)
}

// writeEmpty answers an empty list: in the format Accept names, else in the
// create request's.
func (t *pollTransport) writeEmpty(c *channel, p *poller) (api.Answer, *oma.RequestError) {
	if p.acked {
		return emptyAcked(), nil
	}
	f := formatOf(c.st.Format)
	if p.named {
		f = p.format
	}
	body := oma.MarshalNotificationList(f, nil)
	t.metrics.sent("poll", 1, len(body))
	return api.Answer{Status: fasthttp.StatusOK, Body: body, ContentType: f.ContentType()}, nil
}

func formatOf(s string) oma.Format {
	if s == oma.XML.String() {
		return oma.XML
	}
	return oma.JSON
}

// pending is a queued notification decoded for sending.
type pending struct {
	seq      uint64
	env      oma.Envelope
	format   oma.Format
	enqueued time.Time
}

// decode reads a queued notification for sending. An undecodable entry travels
// as a JSON string (never happens: the bridge and the relay write envelopes).
func decode(e queue.Entry) pending {
	env, err := oma.UnmarshalEnvelope(e.Data)
	if err != nil {
		env = oma.Envelope{ContentType: "application/octet-stream", Body: e.Data}
	}
	f, _ := oma.FormatOf(env.ContentType)
	return pending{seq: e.Seq, env: env, format: f, enqueued: e.Enqueued}
}

// leadingRun decodes es and returns its longest prefix of at most max entries in
// one format.
func leadingRun(es []queue.Entry, max int) []pending {
	var out []pending
	for _, e := range es {
		p := decode(e)
		if len(out) > 0 && (p.format != out[0].format || len(out) == max) {
			break
		}
		out = append(out, p)
	}
	return out
}
