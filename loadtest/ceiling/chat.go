package ceiling

import (
	"net/url"
	"sync"
	"time"

	"github.com/valyala/fasthttp"

	"notifyrelay/oma"
)

// subscription is a chat subscription: where its user's notifications go.
type subscription struct {
	id, user     string
	callbackData string
	format       oma.Format
	dest         dest
}

// group is a group chat session. Its lock orders its changes: each receiver gets
// them in the order they were accepted.
type group struct {
	id    string
	mu    sync.Mutex
	parts []oma.ParticipantInformation // parts[0] created it
}

func (g *group) find(user string) int {
	for i, p := range g.parts {
		if p.Address == user {
			return i
		}
	}
	return -1
}

func (s *Server) userURL(user string) string { return s.base + "/chat/v1/" + url.QueryEscape(user) }

// subscribe: POST /chat/v1/{user}/subscriptions.
func (s *Server) subscribe(ctx *fasthttp.RequestCtx, user string) {
	cs, e := oma.ParseChatNotificationSubscription(requestFormat(ctx), ctx.PostBody())
	if e != nil {
		fail(ctx, e)
		return
	}
	cb := cs.CallbackReference
	sub := &subscription{id: s.newID(), user: user, callbackData: cb.CallbackData, dest: s.destFor(cb.NotifyURL, "")}
	if cb.NotificationFormat == "XML" {
		sub.format = oma.XML
	}
	s.mu.Lock()
	s.subs[user] = append(s.subs[user], sub)
	s.subByID[sub.id] = sub
	s.mu.Unlock()
	created(ctx, s.userURL(user)+"/subscriptions/"+sub.id)
}

func (s *Server) unsubscribe(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sub := s.subByID[id]
	if sub == nil {
		return
	}
	delete(s.subByID, id)
	list := s.subs[sub.user]
	for i, x := range list {
		if x == sub {
			s.subs[sub.user] = append(list[:i:i], list[i+1:]...)
			break
		}
	}
}

func (s *Server) subsOf(user string) []*subscription {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.subs[user]
}

// createGroup: POST /chat/v1/{user}/group; the creator is the Administrator.
func (s *Server) createGroup(ctx *fasthttp.RequestCtx, user string) {
	gi, e := oma.ParseGroupChatSessionInformation(requestFormat(ctx), ctx.PostBody())
	if e != nil {
		fail(ctx, e)
		return
	}
	g := &group{id: s.newID()}
	g.parts = append(g.parts, oma.ParticipantInformation{Address: user, Role: oma.RoleAdministrator})
	for _, p := range gi.Participants {
		p.Role = oma.RoleParticipant
		g.parts = append(g.parts, p)
	}
	s.mu.Lock()
	s.groups[g.id] = g
	s.mu.Unlock()
	created(ctx, s.userURL(user)+"/group/"+g.id)
}

// changeSession: POST …/group/{sessionId}/messages with chatSessionData. Every
// other participant's subscriptions get N1, the changer's get N2 (Succeeded) at
// once: nothing here can fail to deliver for good.
func (s *Server) changeSession(ctx *fasthttp.RequestCtx, user, sid string) {
	d, e := oma.ParseChatSessionData(requestFormat(ctx), ctx.PostBody())
	s.mu.RLock()
	g := s.groups[sid]
	s.mu.RUnlock()
	if e == nil && g == nil {
		e = oma.NotFound(string(ctx.Path()))
	}
	if e != nil {
		fail(ctx, e)
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	me := g.find(user)
	if me < 0 {
		fail(ctx, oma.Forbidden(user+" is not a participant of the session"))
		return
	}
	if d.Kind == oma.DataRole {
		if i := g.find(d.Role.Address); i >= 0 {
			g.parts[i].Role = d.Role.Role
		}
	}
	msg := s.newID()
	s.notifyChange(g, me, d, msg)
	loc := s.userURL(user) + "/group/" + sid + "/messages/" + msg
	created(ctx, loc)
}

// notifyChange sends N1 to every other participant's subscriptions and N2 to the
// changer's; g.mu is held.
func (s *Server) notifyChange(g *group, me int, d oma.ChatSessionData, msg string) {
	n := oma.ChatSessionDataNotification{SenderAddress: g.parts[me].Address, SenderName: g.parts[me].Name,
		Message: d, DateTime: time.Now()}
	for i, p := range g.parts {
		if i == me {
			continue
		}
		gu := s.userURL(p.Address) + "/group/" + g.id
		n.Links = []oma.Link{{Rel: oma.RelGroupChatSession, Href: gu}, {Rel: oma.RelChatSessionData, Href: gu + "/messages/" + msg}}
		n.Message.ResourceURL = gu + "/messages/" + msg
		for _, sub := range s.subsOf(p.Address) {
			n.CallbackData = sub.callbackData
			sub.dest.push(note{ctype: sub.format.ContentType(), body: n.Marshal(sub.format)})
		}
	}
	gu := s.userURL(g.parts[me].Address) + "/group/" + g.id
	st := oma.ChatSessionDataStatusNotification{Status: oma.StatusSucceeded,
		Links: []oma.Link{{Rel: oma.RelGroupChatSession, Href: gu}, {Rel: oma.RelChatSessionData, Href: gu + "/messages/" + msg}}}
	for _, sub := range s.subsOf(g.parts[me].Address) {
		st.CallbackData = sub.callbackData
		sub.dest.push(note{ctype: sub.format.ContentType(), body: st.Marshal(sub.format)})
	}
}
