package ceiling

import (
	"encoding/json"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/valyala/fasthttp"

	"notifyrelay/oma"
)

const (
	defaultWindow = 256              // acknowledged mode, as notifyrelay's default
	maxBatch      = 256              // notifications per WebSocket write
	pollTimeout   = 30 * time.Second // an empty long poll is answered after this
)

// channel is a notification channel: the notifications not yet handed over (in
// acknowledged mode: not yet acknowledged) and its consumer.
type channel struct {
	id, user, typ string
	maxN          int

	mu      sync.Mutex
	pending []note
	nextSeq uint64
	sent    uint64        // acknowledged mode: last seq written on the current socket
	ws      *wsConn       // the connected socket, if any
	wake    chan struct{} // capacity 1: a long poll waits on it
}

// createChannel: POST /notificationchannel/v1/{user}/channels.
func (s *Server) createChannel(ctx *fasthttp.RequestCtx, user string) {
	nc, e := oma.ParseNotificationChannel(requestFormat(ctx), ctx.PostBody())
	if e == nil && nc.ChannelType != "WebSockets" && nc.ChannelType != "LongPolling" {
		e = oma.InvalidValue("channelType", "WebSockets", "LongPolling")
	}
	if e != nil {
		fail(ctx, e)
		return
	}
	c := &channel{id: s.newID(), user: user, typ: nc.ChannelType, maxN: nc.MaxNotifications, wake: make(chan struct{}, 1)}
	if c.maxN <= 0 {
		c.maxN = 32
	}
	s.mu.Lock()
	s.channels[c.id] = c
	s.mu.Unlock()
	base := s.base + "/ceiling/channels/" + c.id
	nc.ChannelURL = base + "/poll"
	if c.typ == "WebSockets" {
		nc.ChannelURL = "ws" + strings.TrimPrefix(base, "http") + "/ws"
	}
	nc.CallbackURL = base + "/callback"
	nc.ResourceURL = s.base + "/notificationchannel/v1/" + url.QueryEscape(user) + "/channels/" + c.id
	ctx.Response.Header.Set("Location", nc.ResourceURL)
	ctx.SetContentType("application/json")
	ctx.SetStatusCode(fasthttp.StatusCreated)
	ctx.SetBody(nc.Marshal(oma.JSON))
}

func (s *Server) deleteChannel(id string) {
	s.mu.Lock()
	c := s.channels[id]
	delete(s.channels, id)
	s.mu.Unlock()
	if c == nil {
		return
	}
	c.mu.Lock()
	w := c.ws
	c.mu.Unlock()
	if w != nil {
		_ = w.conn.NetConn().Close()
	}
}

// channelEndpoint serves a channel's callbackURL (POST a notification), its long
// poll (POST) and its WebSocket (GET).
func (s *Server) channelEndpoint(ctx *fasthttp.RequestCtx, id, what string) {
	s.mu.RLock()
	c := s.channels[id]
	s.mu.RUnlock()
	if c == nil {
		fail(ctx, oma.NotFound(string(ctx.Path())))
		return
	}
	switch what {
	case "callback":
		c.push(note{ctype: string(ctx.Request.Header.ContentType()), body: append([]byte(nil), ctx.PostBody()...)})
		ctx.SetStatusCode(fasthttp.StatusNoContent)
	case "poll":
		s.poll(ctx, c)
	case "ws":
		s.upgrade(ctx, c)
	default:
		fail(ctx, oma.NotFound(string(ctx.Path())))
	}
}

// push queues n and wakes the consumer.
func (c *channel) push(n note) {
	c.mu.Lock()
	c.nextSeq++
	n.seq = c.nextSeq
	c.pending = append(c.pending, n)
	w := c.ws
	c.mu.Unlock()
	if w != nil {
		w.kick()
	}
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// poll answers with up to maxNotifications pending notifications of one format,
// waiting for some up to pollTimeout. With ?ack=N (acknowledged long polling, as
// the real server) it first drops what N acknowledges, then answers JSON with
// seqs and keeps what it sent until a later poll acknowledges it.
func (s *Server) poll(ctx *fasthttp.RequestCtx, c *channel) {
	ack, err := ctx.QueryArgs().GetUint("ack")
	acked := err == nil
	if acked {
		c.acked(uint64(ack))
	}
	deadline := time.NewTimer(pollTimeout)
	defer deadline.Stop()
	for {
		if acked {
			if body := c.ackedAnswer(); body != nil {
				ctx.SetContentType("application/json")
				ctx.SetBody(body)
				return
			}
		} else if f, docs := c.takeRun(); len(docs) > 0 {
			ctx.SetContentType(f.ContentType())
			ctx.SetBody(oma.MarshalNotificationList(f, docs))
			return
		}
		select {
		case <-c.wake:
		case <-deadline.C:
			ctx.SetContentType("application/json")
			ctx.SetBody(emptyAnswer(acked))
			return
		case <-s.quit:
			ctx.SetStatusCode(fasthttp.StatusServiceUnavailable)
			return
		}
	}
}

func emptyAnswer(acked bool) []byte {
	if acked {
		return []byte(`{"notifications":[]}`)
	}
	return oma.MarshalNotificationList(oma.JSON, nil)
}

// ackedFrame is one notification of an acknowledged long-poll answer.
type ackedFrame struct {
	Seq          uint64 `json:"seq"`
	PrevSeq      uint64 `json:"prevSeq"`
	ContentType  string `json:"contentType"`
	Notification string `json:"notification"`
}

// ackedAnswer is the acknowledged long-poll answer for the head of the channel
// (nil when nothing is pending); what it carries stays pending.
func (c *channel) ackedAnswer() []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := min(len(c.pending), c.maxN)
	if n == 0 {
		return nil
	}
	frames := make([]ackedFrame, n)
	for i, p := range c.pending[:n] {
		frames[i] = ackedFrame{Seq: p.seq, PrevSeq: p.seq - 1, ContentType: p.ctype, Notification: string(p.body)}
	}
	c.sent = max(c.sent, c.pending[n-1].seq)
	body, _ := json.Marshal(struct {
		Notifications []ackedFrame `json:"notifications"`
	}{frames})
	return body
}

// takeRun removes and returns the leading run of same-format notifications, at
// most maxNotifications.
func (c *channel) takeRun() (oma.Format, [][]byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	f, docs := runOf(c.pending, c.maxN)
	c.pending = c.pending[len(docs):]
	return f, docs
}

// runOf is the leading run of same-format notifications in ns, at most max.
func runOf(ns []note, max int) (oma.Format, [][]byte) {
	var docs [][]byte
	var f oma.Format
	for i, n := range ns {
		nf, _ := oma.FormatOf(n.ctype)
		if i == max || (i > 0 && nf != f) {
			break
		}
		f = nf
		docs = append(docs, n.body)
	}
	return f, docs
}
