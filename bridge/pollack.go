package bridge

import (
	"context"
	"encoding/json"
	"strconv"

	"github.com/valyala/fasthttp"

	"notifyrelay/api"
	"notifyrelay/oma"
)

// Acknowledged long polling (our extension, opt-in by the ack query parameter):
// POST {channelURL}?ack=N acknowledges every notification of the channel up to
// seq N, then answers {"notifications":[{"seq","prevSeq","contentType",
// "notification"}]} from the first unacknowledged one. An answer is not
// acknowledged when it is received, only by a later poll's ack, so a client
// that dies after receiving it gets it again (as in acknowledged-mode WebSockets),
// and it carries seq and prevSeq for gap detection. ?ack=0 acknowledges nothing.

// ackedAnswer is an acknowledged-mode long-poll answer.
type ackedAnswer struct {
	Notifications []ackFrame `json:"notifications"`
}

// pollAck reads the ack parameter: ok is false without one; a malformed one is
// a fault.
func pollAck(ctx *fasthttp.RequestCtx) (seq uint64, ok bool, e *oma.RequestError) {
	raw := ctx.QueryArgs().Peek("ack")
	if raw == nil {
		return 0, false, nil
	}
	n, err := strconv.ParseUint(string(raw), 10, 64)
	if err != nil {
		return 0, false, oma.InvalidInput("ack (the seq of the last notification received, 0 for none)")
	}
	return n, true, nil
}

// applyPollAck acknowledges c's notifications up to seq, but never beyond the last
// one an acknowledged answer sent since the server started: an ack from before a
// restart, or above what was sent, acknowledges only what this server sent (the
// rest is sent again: at least once).
func (t *pollTransport) applyPollAck(ctx context.Context, c *channel, seq uint64) error {
	seq = min(seq, c.ackSent.Load())
	if seq == 0 {
		return nil
	}
	var done delivered
	var last uint64
	for last < seq {
		es, err := t.q.Read(ctx, c.dest(), last, pollPage)
		if err != nil {
			return err
		}
		if len(es) == 0 {
			break
		}
		for _, e := range es {
			if e.Seq > seq {
				break
			}
			p := decode(e)
			done.add(p.env.Tag, p.env.Traceparent, p.enqueued)
			last = e.Seq
		}
		if es[len(es)-1].Seq > seq {
			break
		}
	}
	if last > 0 {
		t.acks.delivered(ctx, c.dest(), last, done)
	}
	return nil
}

// answerAcked answers an acknowledged poll with the pending notifications from
// the head, up to maxNotifications and channels.max_answer_bytes (at least one),
// in one JSON document; nothing is acknowledged until the next poll says so.
func (t *pollTransport) answerAcked(ctx context.Context, c *channel, p *poller) (api.Answer, *oma.RequestError) {
	if !c.isPoll(p) {
		return api.Answer{}, oma.PollSuperseded()
	}
	es, err := t.q.Read(ctx, c.dest(), 0, c.st.MaxNotifications)
	if err != nil {
		return api.Answer{}, oma.Unavailable().Because(err)
	}
	ans, size := ackedAnswer{Notifications: []ackFrame{}}, 0
	for _, e := range es {
		pe := decode(e)
		if len(ans.Notifications) > 0 && size+len(pe.env.Body) > int(t.cfg.MaxAnswerBytes) {
			break
		}
		ans.Notifications = append(ans.Notifications, ackFrame{Seq: e.Seq, PrevSeq: e.PrevSeq(),
			ContentType: pe.env.ContentType, Notification: string(pe.env.Body)})
		size += len(pe.env.Body)
		if e.Seq > c.ackSent.Load() {
			c.ackSent.Store(e.Seq)
		}
	}
	body, _ := json.Marshal(ans)
	t.metrics.sent("poll", len(ans.Notifications), len(body))
	return api.Answer{Status: fasthttp.StatusOK, Body: body, ContentType: oma.JSON.ContentType()}, nil
}

// emptyAcked is an acknowledged poll's answer when nothing came.
func emptyAcked() api.Answer {
	return api.Answer{Status: fasthttp.StatusOK, Body: []byte(`{"notifications":[]}`), ContentType: oma.JSON.ContentType()}
}

// isPoll reports whether p is still c's current poll.
func (c *channel) isPoll(p *poller) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.poll == p
}
