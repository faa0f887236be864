package relay

import (
	"strconv"
	"strings"

	"github.com/valyala/fasthttp"

	"notifyrelay/api"
	"notifyrelay/oma"
	"notifyrelay/queue"
	"notifyrelay/telemetry"
)

// change is a parsed session data change: the document and, for an attached icon,
// the image.
type change struct {
	data        oma.ChatSessionData
	image       []byte
	imageType   string
	traceparent string // the accept span's, queued with the change's notifications
}

// postSessionData: POST …/group/{sessionId}/messages with chatSessionData. The
// change, every N1 it causes and (when due at once) N2 are one atomic append; the
// 201 follows it.
//
// With an Idempotency-Key, a repeat within delivery.idempotency_window answers the
// first change's 201 again and changes nothing (docs/chat.md).
func (c *chat) postSessionData(req *api.Request) (api.Answer, *oma.RequestError) {
	sessionID := req.Params["sessionId"]
	prev, key, e := c.idem.check(req, "chat\x00"+req.User+"\x00"+sessionID, req.Request.Header.ContentType(), req.PostBody())
	if e != nil {
		return api.Answer{}, e
	}
	if prev != nil {
		return api.Created(prev.Location, oma.MarshalResourceReference(req.Format, prev.Location)), nil
	}
	defer key.done()
	ch, e := c.readChange(req.RequestCtx)
	if e != nil {
		return api.Answer{}, e
	}
	span, tp := api.AcceptSpan(c.tracer, req.RequestCtx, "chat")
	defer span.End()
	ch.traceparent = tp
	return c.applyChange(req, sessionID, ch, key)
}

// readChange parses an XML, JSON or multipart body. The body is not kept: every
// value parsed out of it is a copy.
func (c *chat) readChange(ctx *fasthttp.RequestCtx) (change, *oma.RequestError) {
	ct := string(ctx.Request.Header.ContentType())
	if mt, _, _ := strings.Cut(ct, ";"); strings.EqualFold(strings.TrimSpace(mt), "multipart/form-data") {
		return readMultipartChange(ct, ctx.PostBody(), int(c.cfg.Limits.MaxBody))
	}
	f, e := api.RequestFormat(ctx)
	if e != nil {
		return change{}, e
	}
	d, e := oma.ParseChatSessionData(f, ctx.PostBody())
	if e == nil && d.Kind == oma.DataIcon && d.Action == oma.ActionSet && !webURL(d.Icon) {
		e = oma.InvalidInput("icon (an http(s) URL, or an image attached with multipart/form-data)")
	}
	return change{data: d}, e
}

func readMultipartChange(ct string, body []byte, maxPart int) (change, *oma.RequestError) {
	m, e := oma.ParseMultipart(ct, body, maxPart)
	if e != nil {
		return change{}, e
	}
	d, e := oma.ParseChatSessionData(m.RootFormat, m.Root)
	if e != nil {
		return change{}, e
	}
	ch := change{data: d}
	if d.Kind != oma.DataIcon || d.Action != oma.ActionSet || webURL(d.Icon) {
		return ch, nil
	}
	a, ok := m.Find(d.Icon)
	if !ok {
		return ch, oma.InvalidInput("icon (no attachment with this Content-ID)")
	}
	if ch.imageType, ok = oma.ImageType(a.Data); !ok {
		return ch, oma.InvalidInput("icon (attachment is not a PNG, JPEG, GIF or WebP image)")
	}
	ch.image = a.Data
	return ch, nil
}

func webURL(s string) bool {
	l := strings.ToLower(s)
	return (strings.HasPrefix(l, "http://") || strings.HasPrefix(l, "https://")) && len(s) > len("https://")
}

// applyChange authorises and applies ch under the session's lock, and hands the new
// state with its notifications to the queue; the 201 follows the commit.
func (c *chat) applyChange(req *api.Request, sessionID string, ch change, key *idemRequest) (api.Answer, *oma.RequestError) {
	entry, _, e := c.sessionFor(req, sessionID)
	if e != nil {
		return api.Answer{}, e
	}
	// Held until the write is enqueued, so a channel's end (ChannelGone) comes after
	// the N1s already aimed at it in commit order; taken before entry.mu.
	c.destMu.RLock()
	entry.mu.Lock()
	base := entry.base()
	me := base.find(req.User)
	if me < 0 {
		entry.mu.Unlock()
		c.destMu.RUnlock()
		return api.Answer{}, oma.Forbidden(req.User + " is not a participant of the session")
	}
	next, e := applyTo(base, me, ch)
	if e != nil {
		entry.mu.Unlock()
		c.destMu.RUnlock()
		return api.Answer{}, e
	}
	msgID := newID(16)
	w := queue.Write{Records: make([]queue.Record, 1, 3)}
	w.Records[0] = next.record()
	if ch.image != nil {
		w.Records = append(w.Records, queue.Record{Key: []byte(keyIcon + next.ID), Value: ch.image})
	} else if ch.data.Kind == oma.DataIcon {
		w.Records = append(w.Records, queue.Record{Key: []byte(keyIcon + next.ID)})
	}
	t := c.notify(next, me, ch, msgID, &w)
	loc := c.groupURL(api.EscapeID(req.User), next.ID) + "/messages/" + msgID
	w.Records = append(w.Records, key.records(api.Created(loc, nil))...)
	end := telemetry.Commit(c.tracer, ch.traceparent)
	wait := entry.enqueue(req, c.q, next, w)
	entry.mu.Unlock()
	c.destMu.RUnlock()
	err := wait()
	end(err)
	if err != nil {
		c.untrack(t)
		return api.Answer{}, oma.Unavailable().Because(err)
	}
	return api.Created(loc, oma.MarshalResourceReference(req.Format, loc)), nil
}

// applyTo returns s with the change applied, or why the caller (index me) may not
// make it.
func applyTo(s *session, me int, ch change) (*session, *oma.RequestError) {
	next := s.clone()
	d := ch.data
	del := d.Action == oma.ActionDelete
	switch d.Kind {
	case oma.DataSubject:
		next.Subject = d.Subject
		if del {
			next.Subject = ""
		}
	case oma.DataIcon:
		next.Icon, next.IconType = d.Icon, ch.imageType
		if del || ch.image != nil {
			next.Icon = ""
		}
	case oma.DataRole:
		return next, setRole(next, me, d.Role, del)
	}
	return next, nil
}

// setRole applies a participantRole change: Administrators only; the address must
// be a participant; the last Administrator keeps the role. delete takes the role
// away (the participant becomes a Participant).
func setRole(s *session, me int, pr oma.ParticipantRole, del bool) *oma.RequestError {
	if s.Participants[me].Role != oma.RoleAdministrator {
		return oma.Forbidden("only an Administrator may change a participant's role")
	}
	i := s.find(pr.Address)
	if i < 0 {
		return oma.InvalidAddress("participantRole.address (" + pr.Address + " is not a participant of the session)")
	}
	role := pr.Role
	if del {
		role = oma.RoleParticipant
	}
	if s.Participants[i].Role == oma.RoleAdministrator && role != oma.RoleAdministrator && s.admins() == 1 {
		return oma.Forbidden("the last Administrator cannot be demoted")
	}
	s.Participants[i].Role = role
	return nil
}

// notify adds to w one N1 per active subscription of every other participant and,
// when N2 is due at once, the N2s; in "delivered" mode with N1s it adds and returns
// the tracker that sends N2 once they have all settled.
func (c *chat) notify(s *session, me int, ch change, msgID string, w *queue.Write) *tracker {
	track := c.cfg.Chat.StatusNotification != "applied"
	var t *tracker
	if track {
		t = &tracker{rec: changeRecord{Session: s.ID, Changer: s.Participants[me].Address, Msg: msgID, Traceparent: ch.traceparent}}
	}
	at := now()
	n := oma.ChatSessionDataNotification{SenderAddress: s.Participants[me].Address,
		SenderName: s.Participants[me].Name, Message: ch.data, DateTime: at}
	links := make([]oma.Link, 2)
	n.Links = links
	for i := range s.Participants {
		if i == me {
			continue
		}
		p := &s.Participants[i]
		subs := c.userSubs(p.Address)
		first := true
		for _, sub := range subs {
			if !sub.active(at) {
				continue
			}
			if first {
				c.receiverLinks(&n, links, s, p, ch, msgID)
				if t != nil {
					t.rec.Receivers = append(t.rec.Receivers, p.Address)
				}
				first = false
			}
			w.Entries = append(w.Entries, c.n1Entry(&n, sub, msgID, len(w.Entries), t, ch.traceparent))
		}
	}
	if t == nil || len(w.Entries) == 0 {
		w.Entries = append(w.Entries, c.n2Entries(s.ID, s.Participants[me].Address, msgID, nil, ch.traceparent)...)
		return nil
	}
	t.outcome = make([]int8, len(t.rec.Owner))
	t.left = len(t.rec.Owner)
	w.Records = append(w.Records, t.record())
	c.track(t)
	return t
}

// receiverLinks points n at the receiver p's own URLs.
func (c *chat) receiverLinks(n *oma.ChatSessionDataNotification, links []oma.Link, s *session, p *participant, ch change, msgID string) {
	g := c.groupURL(p.esc, s.ID)
	m := g + "/messages/" + msgID
	links[0] = oma.Link{Rel: oma.RelGroupChatSession, Href: g}
	links[1] = oma.Link{Rel: oma.RelChatSessionData, Href: m}
	n.Message.ResourceURL = m
	if ch.image != nil {
		n.Message.Icon = g + "/icon"
	}
}

// n1Entry renders one N1 for sub straight into its queue entry. Its id doubles as
// the tag that Settled reports back (delivered mode).
func (c *chat) n1Entry(n *oma.ChatSessionDataNotification, sub *subscription, msgID string, k int, t *tracker, tp string) queue.Entry {
	n.CallbackData = sub.CallbackData
	f := sub.format()
	id := msgID + "." + strconv.Itoa(k)
	env := oma.Envelope{ContentType: f.ContentType(), Traceparent: tp}
	if t != nil {
		env.Tag = id
		t.rec.Owner = append(t.rec.Owner, len(t.rec.Receivers)-1)
	}
	b := make([]byte, 0, 16+len(env.ContentType)+len(id)+len(tp)+n.SizeHint())
	b = n.AppendTo(env.AppendHeader(b), f)
	return queue.Entry{ID: id, Dest: sub.Dest, Data: b}
}
