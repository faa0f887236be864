package relay

import (
	"encoding/json"
	"sync"

	"notifyrelay/api"
	"notifyrelay/oma"
	"notifyrelay/queue"
)

// participant is one member of a group session.
type participant struct {
	Address string `json:"a"`
	Name    string `json:"n,omitempty"`
	Role    string `json:"r"`
	esc     string // Address percent-encoded, for URLs
}

// session is one group chat session. Values are never changed once published:
// a change builds a new session and swaps it in (sessionEntry.cur).
type session struct {
	ID           string        `json:"id"`
	Subject      string        `json:"s,omitempty"`
	Icon         string        `json:"i,omitempty"`  // external URL
	IconType     string        `json:"it,omitempty"` // media type of the attached icon (bytes under keyIcon)
	Correlator   string        `json:"cc,omitempty"`
	Participants []participant `json:"p"`
}

// sessionEntry serialises the changes of one session: the writer holds mu across
// the durable append, so the cache and the records never disagree.
type sessionEntry struct {
	mu  sync.Mutex
	cur *session
}

func (s *session) index() {
	for i := range s.Participants {
		s.Participants[i].esc = api.EscapeID(s.Participants[i].Address)
	}
}

// find returns the index of address among the participants, or -1.
func (s *session) find(address string) int {
	for i := range s.Participants {
		if s.Participants[i].Address == address {
			return i
		}
	}
	return -1
}

func (s *session) admins() int {
	n := 0
	for _, p := range s.Participants {
		if p.Role == oma.RoleAdministrator {
			n++
		}
	}
	return n
}

// clone copies s so a change can be built without touching the published value.
func (s *session) clone() *session {
	c := *s
	c.Participants = append([]participant(nil), s.Participants...)
	return &c
}

func (s *session) record() queue.Record {
	v, _ := json.Marshal(s)
	return queue.Record{Key: []byte(keySession + s.ID), Value: v}
}

// sessionFor returns the session entry and checks that user takes part in it:
// unknown session → 404 SVC0004, not a participant → 403 POL0001.
func (r *Relay) sessionFor(c call, id string) (*sessionEntry, *session, *oma.RequestError) {
	r.chat.mu.RLock()
	e := r.chat.sessions[id]
	r.chat.mu.RUnlock()
	if e == nil {
		return nil, nil, oma.NotFound(api.RequestPath(c.ctx))
	}
	e.mu.Lock()
	s := e.cur
	e.mu.Unlock()
	if s.find(c.user) < 0 {
		return nil, nil, oma.Forbidden(c.user + " is not a participant of the session")
	}
	return e, s, nil
}

// groupURL is …/{userId}/group/{sessionId} as the participant with escaped id sees it.
func (r *Relay) groupURL(esc, sessionID string) string {
	return r.chat.base + esc + "/group/" + sessionID
}

// view is the session as one participant (esc) sees it.
func (r *Relay) view(s *session, esc string) oma.GroupChatSessionInformation {
	g := oma.GroupChatSessionInformation{Subject: s.Subject, Icon: s.Icon, ClientCorrelator: s.Correlator,
		ResourceURL: r.groupURL(esc, s.ID), Participants: r.participantViews(s, esc)}
	if s.IconType != "" {
		g.Icon = g.ResourceURL + "/icon"
	}
	return g
}

func (r *Relay) participantViews(s *session, esc string) []oma.ParticipantInformation {
	out := make([]oma.ParticipantInformation, 0, len(s.Participants))
	base := r.groupURL(esc, s.ID) + "/participants/"
	for _, p := range s.Participants {
		out = append(out, oma.ParticipantInformation{Address: p.Address, Name: p.Name, Role: p.Role,
			Status: oma.StatusConnected, ResourceURL: base + p.esc})
	}
	return out
}
