package bridge

import (
	"context"
	"strings"
	"time"

	"github.com/valyala/fasthttp"

	"notifyrelay/api"
	"notifyrelay/oma"
	"notifyrelay/queue"
)

// Why a waiting long poll is ended from outside.
const (
	endSuperseded = iota + 1 // a newer poll on the channel: 409 SVC1012
	endDeleted               // the channel was deleted or expired: 404
	endDrain                 // the server is stopping: empty list
)

// poller is one waiting long poll.
type poller struct {
	ended chan int // capacity 1: the first end wins
}

func (p *poller) end(why int) {
	select {
	case p.ended <- why:
	default:
	}
}

// handlePoll is the long poll on a LongPolling channel's channelURL. Delivery: the
// notifications of an answer are removed from the queue when the next poll on the
// channel arrives (a client polls again only once it has the previous answer), so
// the next poll never repeats them and nothing is lost while a response is in
// flight (docs/channels.md).
func (b *Bridge) handlePoll(ctx *fasthttp.RequestCtx, params api.Params) {
	c, rerr := b.ownChannel(ctx, params)
	if rerr == nil && c.st.Type != oma.ChannelLongPolling {
		rerr = oma.NotFound(string(ctx.Path()))
	}
	if rerr == nil {
		rerr = checkPollBody(ctx)
	}
	if rerr != nil {
		api.Fail(ctx, rerr)
		return
	}
	p := &poller{ended: make(chan int, 1)}
	if !b.track(nil, p) {
		api.Fail(ctx, unavailable())
		return
	}
	defer b.untrack(nil, p)
	b.metrics.connected("poll", 1)
	defer b.metrics.connected("poll", -1)
	b.startPoll(ctx, c, p)
	defer c.endPoll(p)
	b.waitPoll(ctx, c, p)
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

// startPoll makes p the channel's poll (ending an older one with 409), settles the
// previous answer and restarts the channel's lifetime.
func (b *Bridge) startPoll(ctx context.Context, c *channel, p *poller) {
	c.mu.Lock()
	if c.poll != nil {
		c.poll.end(endSuperseded)
	}
	c.poll = p
	seq, tags := c.pollSeq, c.pollTags
	c.pollSeq, c.pollTags = 0, nil
	c.mu.Unlock()
	if seq > 0 {
		b.ackDelivered(ctx, c.dest(), seq, tags)
	}
	if _, err := b.refresh(ctx, c, 0); err != nil {
		b.log.Warn().Err(err).Str("channel", c.st.ID).Msg("refreshing lifetime on poll")
	}
}

func (c *channel) endPoll(p *poller) {
	c.mu.Lock()
	if c.poll == p {
		c.poll = nil
	}
	c.mu.Unlock()
}

// ackDelivered settles the tags of what was delivered up to seq, then removes it.
// Settling first: a crash in between delivers again and settles again (the relay
// ignores a repeated outcome), whereas the other order could forget an outcome.
func (b *Bridge) ackDelivered(ctx context.Context, dest string, seq uint64, tags []string) {
	if b.opts.OnSettled != nil {
		for _, t := range tags {
			b.opts.OnSettled(t, true)
		}
	}
	if err := b.q.Ack(ctx, dest, seq); err != nil {
		b.log.Warn().Err(err).Str("dest", dest).Msg("acknowledging delivered notifications")
		return
	}
	b.metrics.acks.Inc()
}

// waitPoll answers as soon as something is pending, or empty at the poll timeout.
func (b *Bridge) waitPoll(ctx *fasthttp.RequestCtx, c *channel, p *poller) {
	wake, stop := b.q.Watch(c.dest())
	defer stop()
	timer := time.NewTimer(b.cfg.PollTimeout.D())
	defer timer.Stop()
	for {
		es, err := b.q.Read(ctx, c.dest(), 0, c.st.MaxNotifications)
		if err != nil {
			api.Fail(ctx, unavailable())
			return
		}
		if len(es) > 0 {
			b.answerPoll(ctx, c, p, es)
			return
		}
		select {
		case <-wake:
		case why := <-p.ended:
			b.endedPoll(ctx, c, why)
			return
		case <-timer.C:
			b.writeList(ctx, c, formatOf(c.st.Format), nil)
			return
		}
	}
}

func (b *Bridge) endedPoll(ctx *fasthttp.RequestCtx, c *channel, why int) {
	switch why {
	case endSuperseded:
		api.Fail(ctx, oma.PollSuperseded())
	case endDeleted:
		api.Fail(ctx, oma.NotFound(string(ctx.Path())))
	default:
		b.writeList(ctx, c, formatOf(c.st.Format), nil)
	}
}

// answerPoll sends the leading run of same-format notifications as one list and
// remembers it, to be acknowledged by the next poll.
func (b *Bridge) answerPoll(ctx *fasthttp.RequestCtx, c *channel, p *poller, es []queue.Entry) {
	batch := leadingRun(es, c.st.MaxNotifications)
	docs := make([][]byte, len(batch))
	var tags []string
	for i, e := range batch {
		docs[i] = e.env.Body
		if e.env.Tag != "" && b.opts.OnSettled != nil {
			tags = append(tags, e.env.Tag)
		}
	}
	c.mu.Lock()
	if c.poll == p {
		c.pollSeq, c.pollTags = batch[len(batch)-1].seq, tags
	}
	c.mu.Unlock()
	b.writeList(ctx, c, batch[0].format, docs)
}

func (b *Bridge) writeList(ctx *fasthttp.RequestCtx, c *channel, f oma.Format, docs [][]byte) {
	body := oma.MarshalNotificationList(f, docs)
	api.Write(ctx, fasthttp.StatusOK, f, body)
	b.metrics.sent("poll", len(body))
}

func formatOf(s string) oma.Format {
	if s == oma.XML.String() {
		return oma.XML
	}
	return oma.JSON
}

// pending is a queued notification decoded for sending.
type pending struct {
	seq    uint64
	env    oma.Envelope
	format oma.Format
}

// leadingRun decodes es and returns its longest prefix of at most max entries in
// one format. Undecodable entries travel as JSON strings (never happens: the bridge
// and the relay write envelopes).
func leadingRun(es []queue.Entry, max int) []pending {
	var out []pending
	for _, e := range es {
		env, err := oma.UnmarshalEnvelope(e.Data)
		if err != nil {
			env = oma.Envelope{ContentType: "application/octet-stream", Body: e.Data}
		}
		f, _ := oma.FormatOf(env.ContentType)
		if len(out) > 0 && (f != out[0].format || len(out) == max) {
			break
		}
		out = append(out, pending{seq: e.Seq, env: env, format: f})
	}
	return out
}
