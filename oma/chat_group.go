package oma

import "strings"

// ParticipantInformation is one participant of a group chat as the API shows it.
// Role is our extension (the CR defines roles but no field for them here).
type ParticipantInformation struct {
	Address     string
	Name        string
	Role        string
	Status      string
	ResourceURL string
}

// GroupChatSessionInformation is a group chat session: the create request
// (Subject, Participants, ClientCorrelator) and the resource as one participant sees
// it (plus Icon, our extension, and ResourceURL).
type GroupChatSessionInformation struct {
	Subject          string
	Icon             string
	Participants     []ParticipantInformation
	ClientCorrelator string
	ResourceURL      string
}

// ParseGroupChatSessionInformation reads a group create request. Participants need
// an address (400 SVC0002 participant.address otherwise); there may be none.
func ParseGroupChatSessionInformation(f Format, b []byte) (GroupChatSessionInformation, *RequestError) {
	n, e := ParseDocument(f, b, "groupChatSessionInformation", "groupChatSessionInformation")
	if e != nil {
		return GroupChatSessionInformation{}, e
	}
	g := GroupChatSessionInformation{
		Subject:          n.Value("subject"),
		ClientCorrelator: n.Value("clientCorrelator"),
	}
	g.Participants, e = participantsFromNode(n)
	return g, e
}

func participantsFromNode(n *Node) ([]ParticipantInformation, *RequestError) {
	var out []ParticipantInformation
	for _, p := range n.All("participant") {
		addr := p.Value("address")
		if addr == "" || strings.ContainsAny(addr, " \t\r\n") {
			return nil, InvalidInput("participant.address (empty or containing white space)")
		}
		out = append(out, ParticipantInformation{Address: addr, Name: p.Value("name")})
	}
	return out, nil
}

// ParseParticipantList reads a participantList (participants to add): at least one.
func ParseParticipantList(f Format, b []byte) ([]ParticipantInformation, *RequestError) {
	n, e := ParseDocument(f, b, "participantList", "participantList")
	if e != nil {
		return nil, e
	}
	ps, e := participantsFromNode(n)
	if e == nil && len(ps) == 0 {
		e = InvalidInput("participant (at least one needed)")
	}
	return ps, e
}

func (p ParticipantInformation) elem() elem {
	return obj("participant", opt(text("address", p.Address), text("name", p.Name),
		text("role", p.Role), text("status", p.Status), text("resourceURL", p.ResourceURL))...)
}

func participantElems(ps []ParticipantInformation) []elem {
	out := make([]elem, 0, len(ps))
	for _, p := range ps {
		out = append(out, p.elem())
	}
	return out
}

// Marshal renders the groupChatSessionInformation document.
func (g *GroupChatSessionInformation) Marshal(f Format) []byte {
	kids := opt(text("subject", g.Subject), text("icon", g.Icon))
	kids = append(kids, list("participant", participantElems(g.Participants)))
	kids = append(kids, opt(text("clientCorrelator", g.ClientCorrelator), text("resourceURL", g.ResourceURL))...)
	return render(f, "chat", NSChat, obj("groupChatSessionInformation", kids...))
}

// MarshalParticipantList renders a participantList with its resourceURL.
func MarshalParticipantList(f Format, ps []ParticipantInformation, resourceURL string) []byte {
	kids := []elem{list("participant", participantElems(ps))}
	kids = append(kids, opt(text("resourceURL", resourceURL))...)
	return render(f, "chat", NSChat, obj("participantList", kids...))
}
