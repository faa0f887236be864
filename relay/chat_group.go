package relay

import (
	"github.com/valyala/fasthttp"

	"notifyrelay/api"
	"notifyrelay/oma"
	"notifyrelay/queue"
)

// createGroup: POST /{userId}/group. The caller becomes the originator and an
// Administrator; every listed participant joins as a Connected Participant.
func (r *Relay) createGroup(ctx *fasthttp.RequestCtx, p api.Params) {
	c, ok := r.begin(ctx, p)
	if !ok {
		return
	}
	f, body, e := requestBody(ctx)
	if e == nil {
		var g oma.GroupChatSessionInformation
		g, e = oma.ParseGroupChatSessionInformation(f, body)
		if e == nil {
			e = r.createGroupFrom(c, g)
		}
	}
	if e != nil {
		c.fail(e)
	}
}

func (r *Relay) createGroupFrom(c call, g oma.GroupChatSessionInformation) *oma.RequestError {
	r.chat.createMu.Lock()
	defer r.chat.createMu.Unlock()
	id, hash, e := r.correlated(c.ctx, "group", c.user, g.ClientCorrelator, g)
	if e != nil {
		return e
	}
	if id != "" {
		r.chat.mu.RLock()
		s := r.chat.sessions[id].cur
		r.chat.mu.RUnlock()
		g := r.view(s, c.esc)
		c.created(g.ResourceURL, g.Marshal(c.out))
		return nil
	}
	s := newSession(c.user, g)
	if e := r.checkNewGroup(c.user, s); e != nil {
		return e
	}
	w := queue.Write{Records: []queue.Record{s.record()}}
	if g.ClientCorrelator != "" {
		w.Records = append(w.Records, correlationRecord("group", c.user, g.ClientCorrelator, hash, s.ID))
	}
	if err := r.append(c.ctx, w); err != nil {
		return r.unavailable(err)
	}
	r.chat.mu.Lock()
	r.chat.sessions[s.ID] = &sessionEntry{cur: s}
	r.chat.created[s.Creator]++
	r.chat.mu.Unlock()
	v := r.view(s, c.esc)
	c.created(v.ResourceURL, v.Marshal(c.out))
	return nil
}

func newSession(originator string, g oma.GroupChatSessionInformation) *session {
	s := &session{ID: newID(10), Subject: g.Subject, Correlator: g.ClientCorrelator, Creator: originator}
	s.Participants = append(s.Participants, participant{Address: originator, Role: oma.RoleAdministrator})
	for _, p := range g.Participants {
		if i := s.find(p.Address); i >= 0 {
			if s.Participants[i].Name == "" {
				s.Participants[i].Name = p.Name
			}
			continue
		}
		s.Participants = append(s.Participants, participant{Address: p.Address, Name: p.Name, Role: oma.RoleParticipant})
	}
	s.index()
	return s
}

// getGroup: GET /{userId}/group/{sessionId}.
func (r *Relay) getGroup(ctx *fasthttp.RequestCtx, p api.Params) {
	c, ok := r.begin(ctx, p)
	if !ok {
		return
	}
	_, s, e := r.sessionFor(c, p["sessionId"])
	if e != nil {
		c.fail(e)
		return
	}
	g := r.view(s, c.esc)
	c.write(fasthttp.StatusOK, g.Marshal(c.out))
}

// listParticipants: GET /{userId}/group/{sessionId}/participants.
func (r *Relay) listParticipants(ctx *fasthttp.RequestCtx, p api.Params) {
	c, ok := r.begin(ctx, p)
	if !ok {
		return
	}
	_, s, e := r.sessionFor(c, p["sessionId"])
	if e != nil {
		c.fail(e)
		return
	}
	c.write(fasthttp.StatusOK, oma.MarshalParticipantList(c.out, r.participantViews(s, c.esc), r.groupURL(c.esc, s.ID)+"/participants"))
}

// addParticipants: POST /{userId}/group/{sessionId}/participants (Administrators).
// Addresses already in the session are left as they are.
func (r *Relay) addParticipants(ctx *fasthttp.RequestCtx, p api.Params) {
	c, ok := r.begin(ctx, p)
	if !ok {
		return
	}
	f, body, e := requestBody(ctx)
	var add []oma.ParticipantInformation
	if e == nil {
		add, e = oma.ParseParticipantList(f, body)
	}
	var s *session
	if e == nil {
		s, e = r.changeSession(c, p["sessionId"], func(s *session) *oma.RequestError {
			if s.Participants[s.find(c.user)].Role != oma.RoleAdministrator {
				return oma.Forbidden("only an Administrator may add participants")
			}
			for _, a := range add {
				if s.find(a.Address) < 0 {
					s.Participants = append(s.Participants, participant{Address: a.Address, Name: a.Name, Role: oma.RoleParticipant})
				}
			}
			return r.checkParticipants(s)
		})
	}
	if e != nil {
		c.fail(e)
		return
	}
	u := r.groupURL(c.esc, s.ID) + "/participants"
	c.created(u, oma.MarshalParticipantList(c.out, r.participantViews(s, c.esc), u))
}

// removeParticipant: DELETE …/participants/{participantId}: leave (self) or remove
// (Administrator). When the last Administrator leaves, the longest-standing
// remaining participant becomes Administrator, so the group stays manageable.
func (r *Relay) removeParticipant(ctx *fasthttp.RequestCtx, p api.Params) {
	c, ok := r.begin(ctx, p)
	if !ok {
		return
	}
	target := p["participantId"]
	_, e := r.changeSession(c, p["sessionId"], func(s *session) *oma.RequestError {
		i := s.find(target)
		if i < 0 {
			return oma.NotFound(api.RequestPath(ctx))
		}
		if target != c.user && s.Participants[s.find(c.user)].Role != oma.RoleAdministrator {
			return oma.Forbidden("only an Administrator may remove other participants")
		}
		s.Participants = append(s.Participants[:i], s.Participants[i+1:]...)
		if s.admins() == 0 && len(s.Participants) > 0 {
			s.Participants[0].Role = oma.RoleAdministrator
		}
		return nil
	})
	if e != nil {
		c.fail(e)
		return
	}
	ctx.SetStatusCode(fasthttp.StatusNoContent)
}

// changeSession applies change to a copy of the session under its lock, writes it
// durably and publishes it. The caller must be a participant.
func (r *Relay) changeSession(c call, id string, change func(*session) *oma.RequestError) (*session, *oma.RequestError) {
	entry, _, e := r.sessionFor(c, id)
	if e != nil {
		return nil, e
	}
	entry.mu.Lock()
	s := entry.base().clone()
	if s.find(c.user) < 0 { // left while we waited for the lock
		entry.mu.Unlock()
		return nil, oma.Forbidden(c.user + " is not a participant of the session")
	}
	if e := change(s); e != nil {
		entry.mu.Unlock()
		return nil, e
	}
	s.index()
	wait := entry.enqueue(c.ctx, r.opts.Queue, s, queue.Write{Records: []queue.Record{s.record()}})
	entry.mu.Unlock()
	if err := wait(); err != nil {
		return nil, r.unavailable(err)
	}
	return s, nil
}

// getIcon: GET …/group/{sessionId}/icon serves the attached icon.
func (r *Relay) getIcon(ctx *fasthttp.RequestCtx, p api.Params) {
	c, ok := r.begin(ctx, p)
	if !ok {
		return
	}
	_, s, e := r.sessionFor(c, p["sessionId"])
	if e == nil && s.IconType == "" {
		e = oma.NotFound(api.RequestPath(ctx))
	}
	var data []byte
	if e == nil {
		var err error
		if data, err = r.opts.Queue.Get(ctx, []byte(keyIcon+s.ID)); err != nil {
			e = oma.NotFound(api.RequestPath(ctx))
		}
	}
	if e != nil {
		c.fail(e)
		return
	}
	ctx.SetStatusCode(fasthttp.StatusOK)
	ctx.SetContentType(s.IconType)
	ctx.SetBody(data)
}
