package oma

import (
	"strings"
)

// Chat enumerations (docs/api.md §3).
const (
	ActionSet    = "set"
	ActionDelete = "delete"

	RoleAdministrator = "Administrator"
	RoleParticipant   = "Participant"

	StatusSucceeded = "Succeeded"
	StatusFailed    = "Failed"

	StatusConnected = "Connected"
)

// DataKind says which choice a chatSessionData carries.
type DataKind int

// The three choices of chatSessionData.
const (
	DataSubject DataKind = iota + 1
	DataIcon
	DataRole
)

// ParticipantRole names a participant and the role it gets.
type ParticipantRole struct {
	Address string
	Role    string
}

// ChatSessionData is a group session data change: exactly one of Subject, Icon or
// Role (Kind says which), the Action (always "set" or "delete" after parsing), and
// the ResourceURL, which only the server fills in.
type ChatSessionData struct {
	Kind        DataKind
	Subject     string
	Icon        string
	Role        ParticipantRole
	Action      string
	ResourceURL string
}

// ParseChatSessionData reads a chatSessionData request body, accepting the seed's
// spellings (docs/api.md §3: chatSessiondata, chatSessionDataMessage, participantRple,
// a JSON key with a prefix, upper-case actions) and validating it: exactly one
// choice (400 SVC0002), action and role among their values (400 SVC0003).
func ParseChatSessionData(f Format, b []byte) (ChatSessionData, *RequestError) {
	n, e := ParseDocument(f, b, "chatSessionData", "chatSessionData", "chatSessionDataMessage")
	if e != nil {
		return ChatSessionData{}, e
	}
	return ChatSessionDataFromNode(n)
}

// ChatSessionDataFromNode validates a parsed chatSessionData (see ParseChatSessionData).
func ChatSessionDataFromNode(n *Node) (ChatSessionData, *RequestError) {
	var d ChatSessionData
	subject, icon := n.Child("subject"), n.Child("icon")
	role := n.Child("participantRole", "participantRple")
	count := 0
	for _, c := range []*Node{subject, icon, role} {
		if c != nil {
			count++
		}
	}
	if count != 1 {
		return d, InvalidInput("chatSessionData (exactly one of subject, icon, participantRole)")
	}
	switch {
	case subject != nil:
		d.Kind, d.Subject = DataSubject, subject.Text
	case icon != nil:
		d.Kind, d.Icon = DataIcon, strings.TrimSpace(icon.Text)
	default:
		d.Kind = DataRole
		if e := d.parseRole(role); e != nil {
			return d, e
		}
	}
	d.Action = ActionSet
	if a := n.Child("action"); a != nil {
		switch strings.ToLower(strings.TrimSpace(a.Text)) {
		case ActionSet:
		case ActionDelete:
			d.Action = ActionDelete
		default:
			return d, InvalidValue("action", ActionSet, ActionDelete)
		}
	}
	if d.Kind == DataSubject && d.Action == ActionSet && strings.TrimSpace(d.Subject) == "" {
		return d, InvalidInput("subject (empty)")
	}
	return d, nil
}

func (d *ChatSessionData) parseRole(n *Node) *RequestError {
	d.Role.Address = n.Value("address")
	if d.Role.Address == "" {
		return InvalidInput("participantRole.address (missing)")
	}
	r, ok := ParseRole(n.Value("role"))
	if !ok {
		return InvalidValue("role", RoleAdministrator, RoleParticipant)
	}
	d.Role.Role = r
	return nil
}

// ParseRole maps a role case-insensitively to its canonical spelling.
func ParseRole(s string) (string, bool) {
	for _, r := range []string{RoleAdministrator, RoleParticipant} {
		if strings.EqualFold(strings.TrimSpace(s), r) {
			return r, true
		}
	}
	return "", false
}

// appendXML writes the message fields (choice, action, resourceURL) in schema order.
func (d *ChatSessionData) appendXML(b []byte) []byte {
	switch d.Kind {
	case DataSubject:
		b = appendXMLElem(b, "subject", d.Subject)
	case DataIcon:
		b = appendXMLElem(b, "icon", d.Icon)
	case DataRole:
		b = append(b, "<participantRole>"...)
		b = appendXMLElem(b, "address", d.Role.Address)
		b = appendXMLElem(b, "role", d.Role.Role)
		b = append(b, "</participantRole>"...)
	}
	b = appendXMLElem(b, "action", d.action())
	if d.ResourceURL != "" {
		b = appendXMLElem(b, "resourceURL", d.ResourceURL)
	}
	return b
}

func (d *ChatSessionData) appendJSON(b []byte) []byte {
	b = append(b, '{')
	switch d.Kind {
	case DataSubject:
		b = appendJSONKey(b, "subject", true)
		b = appendJSONString(b, d.Subject)
	case DataIcon:
		b = appendJSONKey(b, "icon", true)
		b = appendJSONString(b, d.Icon)
	default:
		b = appendJSONKey(b, "participantRole", true)
		b = append(b, `{"address":`...)
		b = appendJSONString(b, d.Role.Address)
		b = append(b, `,"role":`...)
		b = appendJSONString(b, d.Role.Role)
		b = append(b, '}')
	}
	b = appendJSONKey(b, "action", false)
	b = appendJSONString(b, d.action())
	if d.ResourceURL != "" {
		b = appendJSONKey(b, "resourceURL", false)
		b = appendJSONString(b, d.ResourceURL)
	}
	return append(b, '}')
}

func (d *ChatSessionData) action() string {
	if d.Action == "" {
		return ActionSet
	}
	return d.Action
}

// Marshal renders the chatSessionData document (the copy of a created change).
func (d *ChatSessionData) Marshal(f Format) []byte {
	if f == XML {
		b := append([]byte(XMLHeader), `<chat:chatSessionData xmlns:chat="`+NSChat+`">`...)
		b = d.appendXML(b)
		return append(b, "</chat:chatSessionData>"...)
	}
	b := append([]byte(nil), `{"chatSessionData":`...)
	b = d.appendJSON(b)
	return append(b, '}')
}
