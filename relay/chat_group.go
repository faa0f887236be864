package relay

import (
	"github.com/valyala/fasthttp"

	"notifyrelay/api"
	"notifyrelay/oma"
	"notifyrelay/queue"
)

// createGroup: POST /{userId}/group. The caller becomes the originator and an
// Administrator; every listed participant joins as a Connected Participant.
func (c *chat) createGroup(req *api.Request) (api.Answer, *oma.RequestError) {
	f, body, e := requestBody(req.RequestCtx)
	if e != nil {
		return api.Answer{}, e
	}
	g, e := oma.ParseGroupChatSessionInformation(f, body)
	if e != nil {
		return api.Answer{}, e
	}
	s, e := c.createSession(req, g)
	if e != nil {
		return api.Answer{}, e
	}
	v := c.view(s, api.EscapeID(req.User))
	return api.Created(v.ResourceURL, v.Marshal(req.Format)), nil
}

// createSession makes the session durable, or returns the one created with the same
// clientCorrelator.
func (c *chat) createSession(req *api.Request, g oma.GroupChatSessionInformation) (*session, *oma.RequestError) {
	c.createMu.Lock()
	defer c.createMu.Unlock()
	id, hash, e := c.correlated(req, "group", req.User, g.ClientCorrelator, g)
	if e != nil {
		return nil, e
	}
	if id != "" {
		c.mu.RLock()
		defer c.mu.RUnlock()
		return c.sessions[id].cur, nil
	}
	s := newSession(req.User, g)
	if e := c.checkNewGroup(req.User, s); e != nil {
		return nil, e
	}
	w := queue.Write{Records: []queue.Record{s.record()}}
	if g.ClientCorrelator != "" {
		w.Records = append(w.Records, correlationRecord("group", req.User, g.ClientCorrelator, hash, s.ID))
	}
	if err := c.append(req, w); err != nil {
		return nil, oma.Unavailable().Because(err)
	}
	c.mu.Lock()
	c.sessions[s.ID] = &sessionEntry{cur: s}
	c.created[s.Creator]++
	c.mu.Unlock()
	return s, nil
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
func (c *chat) getGroup(req *api.Request) (api.Answer, *oma.RequestError) {
	_, s, e := c.sessionFor(req, req.Params["sessionId"])
	if e != nil {
		return api.Answer{}, e
	}
	g := c.view(s, api.EscapeID(req.User))
	return api.OK(g.Marshal(req.Format)), nil
}

// listParticipants: GET /{userId}/group/{sessionId}/participants.
func (c *chat) listParticipants(req *api.Request) (api.Answer, *oma.RequestError) {
	_, s, e := c.sessionFor(req, req.Params["sessionId"])
	if e != nil {
		return api.Answer{}, e
	}
	esc := api.EscapeID(req.User)
	return api.OK(oma.MarshalParticipantList(req.Format, c.participantViews(s, esc), c.groupURL(esc, s.ID)+"/participants")), nil
}

// addParticipants: POST /{userId}/group/{sessionId}/participants (Administrators).
// Addresses already in the session are left as they are.
func (c *chat) addParticipants(req *api.Request) (api.Answer, *oma.RequestError) {
	f, body, e := requestBody(req.RequestCtx)
	var add []oma.ParticipantInformation
	if e == nil {
		add, e = oma.ParseParticipantList(f, body)
	}
	if e != nil {
		return api.Answer{}, e
	}
	s, e := c.changeSession(req, req.Params["sessionId"], func(s *session) *oma.RequestError {
		if s.Participants[s.find(req.User)].Role != oma.RoleAdministrator {
			return oma.Forbidden("only an Administrator may add participants")
		}
		for _, a := range add {
			if s.find(a.Address) < 0 {
				s.Participants = append(s.Participants, participant{Address: a.Address, Name: a.Name, Role: oma.RoleParticipant})
			}
		}
		return c.checkParticipants(s)
	})
	if e != nil {
		return api.Answer{}, e
	}
	esc := api.EscapeID(req.User)
	u := c.groupURL(esc, s.ID) + "/participants"
	return api.Created(u, oma.MarshalParticipantList(req.Format, c.participantViews(s, esc), u)), nil
}

// removeParticipant: DELETE …/participants/{participantId}: leave (self) or remove
// (Administrator). When the last Administrator leaves, the longest-standing
// remaining participant becomes Administrator, so the group stays manageable.
func (c *chat) removeParticipant(req *api.Request) (api.Answer, *oma.RequestError) {
	target := req.Params["participantId"]
	_, e := c.changeSession(req, req.Params["sessionId"], func(s *session) *oma.RequestError {
		i := s.find(target)
		if i < 0 {
			return oma.NotFound(api.RequestPath(req.RequestCtx))
		}
		if target != req.User && s.Participants[s.find(req.User)].Role != oma.RoleAdministrator {
			return oma.Forbidden("only an Administrator may remove other participants")
		}
		s.Participants = append(s.Participants[:i], s.Participants[i+1:]...)
		if s.admins() == 0 && len(s.Participants) > 0 {
			s.Participants[0].Role = oma.RoleAdministrator
		}
		return nil
	})
	if e != nil {
		return api.Answer{}, e
	}
	return api.NoContent(), nil
}

// changeSession applies change to a copy of the session under its lock, writes it
// durably and publishes it. The caller must be a participant.
func (c *chat) changeSession(req *api.Request, id string, change func(*session) *oma.RequestError) (*session, *oma.RequestError) {
	entry, _, e := c.sessionFor(req, id)
	if e != nil {
		return nil, e
	}
	entry.mu.Lock()
	s := entry.base().clone()
	if s.find(req.User) < 0 { // left while we waited for the lock
		entry.mu.Unlock()
		return nil, oma.Forbidden(req.User + " is not a participant of the session")
	}
	if e := change(s); e != nil {
		entry.mu.Unlock()
		return nil, e
	}
	s.index()
	wait := entry.enqueue(req, c.q, s, queue.Write{Records: []queue.Record{s.record()}})
	entry.mu.Unlock()
	if err := wait(); err != nil {
		return nil, oma.Unavailable().Because(err)
	}
	return s, nil
}

// getIcon: GET …/group/{sessionId}/icon serves the attached icon.
func (c *chat) getIcon(req *api.Request) (api.Answer, *oma.RequestError) {
	_, s, e := c.sessionFor(req, req.Params["sessionId"])
	if e != nil {
		return api.Answer{}, e
	}
	if s.IconType == "" {
		return api.Answer{}, oma.NotFound(api.RequestPath(req.RequestCtx))
	}
	data, err := c.q.Get(req, []byte(keyIcon+s.ID))
	if err != nil {
		return api.Answer{}, oma.NotFound(api.RequestPath(req.RequestCtx))
	}
	return api.Answer{Status: fasthttp.StatusOK, Body: data, ContentType: s.IconType}, nil
}
