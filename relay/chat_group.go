package relay

import (
	"github.com/valyala/fasthttp"

	"notifyrelay/api"
	"notifyrelay/oma"
	"notifyrelay/queue"
)

// createGroup: POST /{userId}/group. The caller becomes the originator and an
// Administrator; every listed participant joins as a Connected Participant.
func (r *Relay) createGroup(c *api.Request) (api.Answer, *oma.RequestError) {
	f, body, e := requestBody(c.RequestCtx)
	if e != nil {
		return api.Answer{}, e
	}
	g, e := oma.ParseGroupChatSessionInformation(f, body)
	if e != nil {
		return api.Answer{}, e
	}
	s, e := r.createSession(c, g)
	if e != nil {
		return api.Answer{}, e
	}
	v := r.view(s, api.EscapeID(c.User))
	return api.Created(v.ResourceURL, v.Marshal(c.Format)), nil
}

// createSession makes the session durable, or returns the one created with the same
// clientCorrelator.
func (r *Relay) createSession(c *api.Request, g oma.GroupChatSessionInformation) (*session, *oma.RequestError) {
	r.chat.createMu.Lock()
	defer r.chat.createMu.Unlock()
	id, hash, e := r.correlated(c, "group", c.User, g.ClientCorrelator, g)
	if e != nil {
		return nil, e
	}
	if id != "" {
		r.chat.mu.RLock()
		defer r.chat.mu.RUnlock()
		return r.chat.sessions[id].cur, nil
	}
	s := newSession(c.User, g)
	if e := r.checkNewGroup(c.User, s); e != nil {
		return nil, e
	}
	w := queue.Write{Records: []queue.Record{s.record()}}
	if g.ClientCorrelator != "" {
		w.Records = append(w.Records, correlationRecord("group", c.User, g.ClientCorrelator, hash, s.ID))
	}
	if err := r.append(c, w); err != nil {
		return nil, oma.Unavailable().Because(err)
	}
	r.chat.mu.Lock()
	r.chat.sessions[s.ID] = &sessionEntry{cur: s}
	r.chat.created[s.Creator]++
	r.chat.mu.Unlock()
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
func (r *Relay) getGroup(c *api.Request) (api.Answer, *oma.RequestError) {
	_, s, e := r.sessionFor(c, c.Params["sessionId"])
	if e != nil {
		return api.Answer{}, e
	}
	g := r.view(s, api.EscapeID(c.User))
	return api.OK(g.Marshal(c.Format)), nil
}

// listParticipants: GET /{userId}/group/{sessionId}/participants.
func (r *Relay) listParticipants(c *api.Request) (api.Answer, *oma.RequestError) {
	_, s, e := r.sessionFor(c, c.Params["sessionId"])
	if e != nil {
		return api.Answer{}, e
	}
	esc := api.EscapeID(c.User)
	return api.OK(oma.MarshalParticipantList(c.Format, r.participantViews(s, esc), r.groupURL(esc, s.ID)+"/participants")), nil
}

// addParticipants: POST /{userId}/group/{sessionId}/participants (Administrators).
// Addresses already in the session are left as they are.
func (r *Relay) addParticipants(c *api.Request) (api.Answer, *oma.RequestError) {
	f, body, e := requestBody(c.RequestCtx)
	var add []oma.ParticipantInformation
	if e == nil {
		add, e = oma.ParseParticipantList(f, body)
	}
	if e != nil {
		return api.Answer{}, e
	}
	s, e := r.changeSession(c, c.Params["sessionId"], func(s *session) *oma.RequestError {
		if s.Participants[s.find(c.User)].Role != oma.RoleAdministrator {
			return oma.Forbidden("only an Administrator may add participants")
		}
		for _, a := range add {
			if s.find(a.Address) < 0 {
				s.Participants = append(s.Participants, participant{Address: a.Address, Name: a.Name, Role: oma.RoleParticipant})
			}
		}
		return r.checkParticipants(s)
	})
	if e != nil {
		return api.Answer{}, e
	}
	esc := api.EscapeID(c.User)
	u := r.groupURL(esc, s.ID) + "/participants"
	return api.Created(u, oma.MarshalParticipantList(c.Format, r.participantViews(s, esc), u)), nil
}

// removeParticipant: DELETE …/participants/{participantId}: leave (self) or remove
// (Administrator). When the last Administrator leaves, the longest-standing
// remaining participant becomes Administrator, so the group stays manageable.
func (r *Relay) removeParticipant(c *api.Request) (api.Answer, *oma.RequestError) {
	target := c.Params["participantId"]
	_, e := r.changeSession(c, c.Params["sessionId"], func(s *session) *oma.RequestError {
		i := s.find(target)
		if i < 0 {
			return oma.NotFound(api.RequestPath(c.RequestCtx))
		}
		if target != c.User && s.Participants[s.find(c.User)].Role != oma.RoleAdministrator {
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
func (r *Relay) changeSession(c *api.Request, id string, change func(*session) *oma.RequestError) (*session, *oma.RequestError) {
	entry, _, e := r.sessionFor(c, id)
	if e != nil {
		return nil, e
	}
	entry.mu.Lock()
	s := entry.base().clone()
	if s.find(c.User) < 0 { // left while we waited for the lock
		entry.mu.Unlock()
		return nil, oma.Forbidden(c.User + " is not a participant of the session")
	}
	if e := change(s); e != nil {
		entry.mu.Unlock()
		return nil, e
	}
	s.index()
	wait := entry.enqueue(c, r.opts.Queue, s, queue.Write{Records: []queue.Record{s.record()}})
	entry.mu.Unlock()
	if err := wait(); err != nil {
		return nil, oma.Unavailable().Because(err)
	}
	return s, nil
}

// getIcon: GET …/group/{sessionId}/icon serves the attached icon.
func (r *Relay) getIcon(c *api.Request) (api.Answer, *oma.RequestError) {
	_, s, e := r.sessionFor(c, c.Params["sessionId"])
	if e != nil {
		return api.Answer{}, e
	}
	if s.IconType == "" {
		return api.Answer{}, oma.NotFound(api.RequestPath(c.RequestCtx))
	}
	data, err := r.opts.Queue.Get(c, []byte(keyIcon+s.ID))
	if err != nil {
		return api.Answer{}, oma.NotFound(api.RequestPath(c.RequestCtx))
	}
	return api.Answer{Status: fasthttp.StatusOK, Body: data, ContentType: s.IconType}, nil
}
