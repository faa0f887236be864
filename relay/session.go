package relay

import (
	"context"
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
	Creator      string        `json:"o,omitempty"` // for limits.max_groups_per_user
	Participants []participant `json:"p"`
}

// sessionEntry serialises the changes of one session. A change is built on the tip
// (the last state handed to the queue) and handed to the queue under mu, which fixes
// its place in commit order; mu is released before the fsync, so the changes of one
// session share group commits. Readers see cur, which only ever holds a committed
// state. When a commit fails, the next change builds on cur again; a change already
// queued behind the failed one was built on it and, if it commits, carries it.
type sessionEntry struct {
	mu             sync.Mutex
	cur            *session // last committed
	tip            *session // last handed to the queue; nil: cur
	tipSeq, curSeq uint64   // order in which states were handed to the queue
}

// base is the state the next change builds on; mu is held.
func (e *sessionEntry) base() *session {
	if e.tip != nil {
		return e.tip
	}
	return e.cur
}

// enqueue hands w, which turns the session into next, to q; mu is held. The
// returned wait, called without mu, waits for the commit and publishes next.
func (e *sessionEntry) enqueue(ctx context.Context, q chatQueue, next *session, w queue.Write) (wait func() error) {
	commit := q.Enqueue(ctx, w)
	e.tipSeq++
	seq := e.tipSeq
	e.tip = next
	return func() error {
		_, err := commit()
		e.mu.Lock()
		defer e.mu.Unlock()
		if err != nil {
			e.tip = nil
			return err
		}
		if seq > e.curSeq {
			e.cur, e.curSeq = next, seq
		}
		if e.curSeq == e.tipSeq {
			e.tip = nil
		}
		return nil
	}
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
func (c *chat) sessionFor(req *api.Request, id string) (*sessionEntry, *session, *oma.RequestError) {
	c.mu.RLock()
	e := c.sessions[id]
	c.mu.RUnlock()
	if e == nil {
		return nil, nil, oma.NotFound(api.RequestPath(req.RequestCtx))
	}
	e.mu.Lock()
	s := e.cur
	e.mu.Unlock()
	if s.find(req.User) < 0 {
		return nil, nil, oma.Forbidden(req.User + " is not a participant of the session")
	}
	return e, s, nil
}

// groupURL is …/{userId}/group/{sessionId} as the participant with escaped id sees it.
func (c *chat) groupURL(esc, sessionID string) string {
	return c.base + esc + "/group/" + sessionID
}

// view is the session as one participant (esc) sees it.
func (c *chat) view(s *session, esc string) oma.GroupChatSessionInformation {
	g := oma.GroupChatSessionInformation{Subject: s.Subject, Icon: s.Icon, ClientCorrelator: s.Correlator,
		ResourceURL: c.groupURL(esc, s.ID), Participants: c.participantViews(s, esc)}
	if s.IconType != "" {
		g.Icon = g.ResourceURL + "/icon"
	}
	return g
}

func (c *chat) participantViews(s *session, esc string) []oma.ParticipantInformation {
	out := make([]oma.ParticipantInformation, 0, len(s.Participants))
	base := c.groupURL(esc, s.ID) + "/participants/"
	for _, p := range s.Participants {
		out = append(out, oma.ParticipantInformation{Address: p.Address, Name: p.Name, Role: p.Role,
			Status: oma.StatusConnected, ResourceURL: base + p.esc})
	}
	return out
}
