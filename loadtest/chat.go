package loadtest

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// chatScenario drives the OMA Chat API: G groups of P participants, each with a chat
// subscription whose notifyURL is a webhook receiver of the tool or one of its
// channels' callbackURL. The first C participants of each group are changers: stream
// g<g>c<c>. Every other participant of the group must get each accepted change (N1).
type chatScenario struct {
	e        *env
	run      int // random per run, so users never collide with an earlier run's
	sink     *sink
	ls       *listeners
	groups   []*chatGroup
	changers []*changer
	kinds    []string // of change
	recv     []string // receiver kinds, used in turn
	refs     refTable
	mu       sync.Mutex
	cleanup  []string // subscriptions and channels to DELETE at the end
}

type chatGroup struct {
	session string
	users   []string // users[0] created the group and is its Administrator
}

type changer struct {
	id    string
	group *chatGroup
	user  int // index in group.users
	seq   int
	admin bool
}

func newChat(e *env) *chatScenario {
	return &chatScenario{e: e, run: rand.IntN(9000) + 1000, kinds: strings.Split(e.o.Mix, ","), recv: receiverKinds(e.o),
		refs: refTable{known: map[string]Marker{}, pending: map[string][]arrival{}}}
}

// user is the OMA address of participant p of group g.
func (s *chatScenario) user(g, p int) string {
	return fmt.Sprintf("tel:+1%04d%07d", s.run, g*s.e.o.Participants+p)
}

func receiverID(g, p, participants int) string { return "u" + strconv.Itoa(g*participants+p) }

func (s *chatScenario) Setup(ctx context.Context) error {
	o := s.e.o
	s.ls = newListeners(s.e, s.receive)
	if slices.Contains(s.recv, "webhook") {
		sk, err := newSink(o.Listen, o.FailRate, s.receive)
		if err != nil {
			return err
		}
		s.sink = sk
	}
	s.groups = make([]*chatGroup, o.Groups)
	for g := range s.groups {
		s.groups[g] = &chatGroup{}
		for p := range o.Participants {
			s.groups[g].users = append(s.groups[g].users, s.user(g, p))
		}
	}
	n := o.Groups * o.Participants
	if err := forEach(ctx, s.e, "receivers", n, s.setupReceiver); err != nil {
		return err
	}
	if err := forEach(ctx, s.e, "groups", o.Groups, s.createGroup); err != nil {
		return err
	}
	s.expect()
	return nil
}

// expect declares the flows: every changer's stream to every other participant.
func (s *chatScenario) expect() {
	o := s.e.o
	for g, grp := range s.groups {
		for c := range o.Changers {
			ch := &changer{id: fmt.Sprintf("g%dc%d", g, c), group: grp, user: c, admin: c == 0}
			s.changers = append(s.changers, ch)
			for p := range o.Participants {
				if p != c {
					s.e.tracker.Expect(receiverID(g, p, o.Participants), ch.id)
				}
			}
		}
	}
}

// receiverKinds is --receivers as a list of kinds: webhook, websocket-ack,
// websocket-oma, longpoll ("websocket" follows --ws-mode; mixed is one of each of
// webhook, websocket, longpoll).
func receiverKinds(o Options) []string {
	list := o.Receivers
	if list == "mixed" {
		list = "webhook,websocket,longpoll"
	}
	kinds := strings.Split(list, ",")
	for i, k := range kinds {
		if k == "websocket" {
			kinds[i] = "websocket-" + o.WSMode
		}
	}
	return kinds
}

// receiverKind picks the receiver of participant i: the kinds in turn.
func (s *chatScenario) receiverKind(i int) string { return s.recv[i%len(s.recv)] }

func (s *chatScenario) setupReceiver(i int) error {
	o := s.e.o
	g, p := i/o.Participants, i%o.Participants
	user, rid := s.user(g, p), receiverID(g, p, o.Participants)
	kind := s.receiverKind(i)
	s.e.tracker.SetKind(rid, kind)
	notifyURL, err := s.openReceiver(kind, user, rid)
	if err != nil {
		return err
	}
	body := fmt.Sprintf(`{"chatNotificationSubscription":{"callbackReference":{"notifyURL":%q,"callbackData":%q,"notificationFormat":%q},"duration":86400,"clientCorrelator":"lt-%d-%s"}}`,
		notifyURL, rid, strings.ToUpper(o.Format), s.run, rid)
	r, err := s.e.client.expect(201, "POST", "/chat/v1/"+escapeUser(user)+"/subscriptions", "application/json", []byte(body))
	if err != nil {
		return err
	}
	s.keep(r.Location)
	return nil
}

// openReceiver returns the notifyURL of a new receiver of the given kind.
func (s *chatScenario) openReceiver(kind, user, rid string) (string, error) {
	if kind == "webhook" {
		return s.sink.URL(rid), nil
	}
	typ := "WebSockets"
	if kind == "longpoll" {
		typ = "LongPolling"
	}
	ch, err := s.e.client.createChannel(user, typ, fmt.Sprintf("lt-%d-%s", s.run, rid))
	if err != nil {
		return "", err
	}
	s.keep(ch.ResourceURL)
	if kind == "longpoll" {
		s.ls.longPoll(rid, ch)
	} else if err := s.ls.websocket(rid, ch, kind == "websocket-ack", true); err != nil {
		return "", err
	}
	return ch.CallbackURL, nil
}

func (s *chatScenario) keep(resourceURL string) {
	if resourceURL == "" {
		return
	}
	s.mu.Lock()
	s.cleanup = append(s.cleanup, resourceURL)
	s.mu.Unlock()
}

func (s *chatScenario) createGroup(g int) error {
	grp := s.groups[g]
	var parts []string
	for p, u := range grp.users[1:] {
		parts = append(parts, fmt.Sprintf(`{"address":%q,"name":"P%d"}`, u, p+1))
	}
	body := fmt.Sprintf(`{"groupChatSessionInformation":{"subject":"loadtest %d","participant":[%s],"clientCorrelator":"lt-%d-g%d"}}`,
		g, strings.Join(parts, ","), s.run, g)
	r, err := s.e.client.expect(201, "POST", "/chat/v1/"+escapeUser(grp.users[0])+"/group", "application/json", []byte(body))
	if err != nil {
		return err
	}
	if grp.session = lastSegment(r.Location); grp.session == "" {
		return fmt.Errorf("group %d: no Location in the 201", g)
	}
	return nil
}

func (s *chatScenario) Streams() int { return len(s.changers) }

// Send posts the changer's next chatSessionData: subject, icon or role in turn.
func (s *chatScenario) Send(i int) {
	ch := s.changers[i]
	ch.seq++
	now := time.Now()
	m := Marker{Stream: ch.id, Seq: ch.seq, Sent: now}
	kind := s.kinds[(ch.seq-1)%len(s.kinds)]
	if kind == "role" && !ch.admin {
		kind = "subject"
	}
	user := ch.group.users[ch.user]
	path := "/chat/v1/" + escapeUser(user) + "/group/" + ch.group.session + "/messages"
	s.e.stats.Sent()
	r, err := s.e.client.expect(201, "POST", path, "application/json", s.changeBody(kind, m, ch))
	if err == nil && kind == "role" {
		s.resolveRole(r.Location, m)
	}
	s.e.record(ch.id, m.Seq, now, err)
}

func (s *chatScenario) changeBody(kind string, m Marker, ch *changer) []byte {
	switch kind {
	case "icon":
		return []byte(`{"chatSessionData":{"icon":"https://icons.example.com/` + m.String() + `.png","action":"set"}}`)
	case "role":
		role := "Participant"
		if m.Seq%2 == 1 {
			role = "Administrator"
		}
		return []byte(fmt.Sprintf(`{"chatSessionData":{"participantRole":{"address":%q,"role":%q},"action":"set"}}`, ch.group.users[len(ch.group.users)-1], role))
	}
	return []byte(`{"chatSessionData":{"subject":"` + m.String() + `","action":"set"}}`)
}

// resolveRole ties a role change (whose N1 carries no marker) to its message URL.
func (s *chatScenario) resolveRole(location string, m Marker) {
	ref, ok := messageRef([]byte(location))
	if !ok {
		s.e.stats.Error("role change: no message Location")
		return
	}
	for _, a := range s.refs.resolve(ref, m) {
		s.e.observe(a.receiver, m, a.at)
	}
}

// receive takes a webhook body or a channel frame; body is only valid during the call.
func (s *chatScenario) receive(receiver string, body []byte, now time.Time) {
	docs, err := splitDocs(body)
	if err != nil {
		s.e.stats.Error("unparsable notification")
		return
	}
	for _, d := range docs {
		if d.root != "chatSessionDataNotification" {
			continue // the changer's own status notifications (N2) and others
		}
		if m, ok := findMarker(d.raw); ok {
			s.e.observe(receiver, m, now)
			continue
		}
		ref, ok := messageRef(d.raw)
		if !ok {
			s.e.stats.Error("notification without marker")
			continue
		}
		if m, ok := s.refs.arrive(ref, receiver, now); ok {
			s.e.observe(receiver, m, now)
		}
	}
}

func (s *chatScenario) Finish(context.Context, *Report) {}

// Close stops the receivers, then deletes the subscriptions and channels.
func (s *chatScenario) Close() {
	if s.ls != nil {
		s.ls.Close()
	}
	if s.sink != nil {
		s.sink.Close()
	}
	_ = forEach(context.Background(), s.e, "", len(s.cleanup), func(i int) error {
		_, _ = s.e.client.do("DELETE", s.cleanup[i], "", nil)
		return nil
	})
}

// refTable matches role-change notifications, which carry only their message URL,
// with the marker of the POST that made them. A notification may arrive before the
// POST's 201 has been read: it waits in pending until then.
type refTable struct {
	mu      sync.Mutex
	known   map[string]Marker
	pending map[string][]arrival
}

type arrival struct {
	receiver string
	at       time.Time
}

func (t *refTable) arrive(ref, receiver string, at time.Time) (Marker, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if m, ok := t.known[ref]; ok {
		return m, true
	}
	t.pending[ref] = append(t.pending[ref], arrival{receiver, at})
	return Marker{}, false
}

func (t *refTable) resolve(ref string, m Marker) []arrival {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.known[ref] = m
	p := t.pending[ref]
	delete(t.pending, ref)
	return p
}
