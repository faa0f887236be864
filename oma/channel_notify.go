package oma

import (
	"bytes"
	"encoding/xml"
	"errors"
	"strconv"
	"strings"
	"unicode/utf8"
)

// CheckNotification checks a document POSTed to a channel's callbackURL: well-formed
// (strictly: no lax retry, no quote repair), one root (in JSON: an object with one
// key), no DOCTYPE, nesting at most MaxDepth, valid UTF-8 throughout (it is relayed
// as is: one bad byte in an OMA WebSocket frame makes the client drop the frame's
// other notifications too), an XML declaration only at the start. Anything else is
// 400 SVC0002.
func CheckNotification(f Format, b []byte) *RequestError {
	if !utf8.Valid(b) {
		return InvalidInput("notification (not valid UTF-8)")
	}
	var err error
	if f == XML {
		_, err = parseXML(b, true)
	} else {
		err = checkJSONDocument(b)
	}
	if err != nil {
		return InvalidInput("notification (" + err.Error() + ")")
	}
	return nil
}

func checkJSONDocument(b []byte) error {
	var v any
	if err := decodeJSON(b, &v); err != nil {
		return err
	}
	obj, ok := v.(map[string]any)
	if !ok || len(obj) != 1 {
		return errors.New("not a root-wrapped object")
	}
	for k, val := range obj {
		if _, err := jsonKids(k, val, 1); err != nil {
			return err
		}
	}
	return nil
}

// SniffFormat guesses the format of a document from its first non-space byte, for
// bodies sent without a Content-Type.
func SniffFormat(b []byte) (Format, bool) {
	t := bytes.TrimLeft(b, " \t\r\n\ufeff")
	switch {
	case len(t) > 0 && t[0] == '<':
		return XML, true
	case len(t) > 0 && t[0] == '{':
		return JSON, true
	}
	return JSON, false
}

// MarshalNotificationList wraps documents of format f (each a complete document as
// CheckNotification accepted it) in one notificationList. XML declarations of the
// inner documents are dropped; each keeps its own namespace declarations.
func MarshalNotificationList(f Format, docs [][]byte) []byte {
	if f == XML && len(docs) == 0 {
		return append([]byte(XMLHeader), `<nc:notificationList xmlns:nc="`+NSChannel+`"/>`...)
	}
	b := NotificationListHead(f)
	for i, d := range docs {
		b = AppendNotificationListItem(b, f, d, i)
	}
	return append(b, NotificationListTail(f)...)
}

// NotificationListHead, AppendNotificationListItem (document i of the list) and
// NotificationListTail let a non-empty notificationList be streamed piece by piece.
func NotificationListHead(f Format) []byte {
	if f == XML {
		return append([]byte(XMLHeader), `<nc:notificationList xmlns:nc="`+NSChannel+`">`...)
	}
	return []byte(`{"notificationList":[`)
}

func AppendNotificationListItem(b []byte, f Format, doc []byte, i int) []byte {
	if f == XML {
		return append(b, stripXMLDecl(doc)...)
	}
	if i > 0 {
		b = append(b, ',')
	}
	return append(b, bytes.TrimSpace(doc)...)
}

func NotificationListTail(f Format) []byte {
	if f == XML {
		return []byte("</nc:notificationList>")
	}
	return []byte("]}")
}

// stripXMLDecl removes a leading XML declaration (and a BOM). The declaration is
// found by the XML decoder itself, its target matched in any case as checkToken
// matches it: a "<?Xml!?>" left inside a notificationList would be a declaration
// after its start.
func stripXMLDecl(d []byte) []byte {
	d = bytes.TrimLeft(d, " \t\r\n\ufeff")
	if bytes.HasPrefix(d, []byte("<?")) {
		dec := xml.NewDecoder(bytes.NewReader(d))
		tok, err := dec.RawToken()
		if pi, ok := tok.(xml.ProcInst); ok && err == nil && strings.EqualFold(pi.Target, "xml") {
			d = d[dec.InputOffset():]
		}
	}
	return bytes.TrimSpace(d)
}

// ClientMessage is a frame a client sends on a channel WebSocket.
type ClientMessage struct {
	Kind          string // "connCheck", "connAck" or "ack"
	CheckInterval int    // connCheck
	Ack           uint64 // ack (acknowledged mode)
	Format        Format // format the client used
}

// ParseClientMessage reads a client frame: connCheck or connAck in XML or JSON, or,
// when acks is set, {"ack": N}.
func ParseClientMessage(b []byte, acks bool) (ClientMessage, error) {
	f, ok := SniffFormat(b)
	if !ok {
		return ClientMessage{}, errors.New("not an XML or JSON document")
	}
	var n *Node
	var err error
	if f == XML {
		n, err = parseXML(b, true)
	} else {
		n, err = ParseJSON(b)
	}
	if err != nil {
		return ClientMessage{}, err
	}
	m := ClientMessage{Format: f}
	switch {
	case strings.EqualFold(n.Name, "connCheck"):
		m.Kind = "connCheck"
		m.CheckInterval, _ = strconv.Atoi(n.Value("checkInterval"))
	case strings.EqualFold(n.Name, "connAck"):
		m.Kind = "connAck"
	case acks && f == JSON && n.Name == "ack":
		m.Kind = "ack"
		if m.Ack, err = strconv.ParseUint(strings.TrimSpace(n.Text), 10, 64); err != nil {
			return ClientMessage{}, errors.New("ack is not a sequence number")
		}
	default:
		return ClientMessage{}, errors.New("unexpected message " + n.Name)
	}
	return m, nil
}

// MarshalConnAck renders connAck carrying the channel's new lifetime.
func MarshalConnAck(f Format, lifetime int) []byte {
	if f == XML {
		b := append([]byte(XMLHeader), `<nc:connAck xmlns:nc="`+NSChannel+`">`...)
		b = appendXMLElem(b, "channelLifetime", strconv.Itoa(lifetime))
		return append(b, "</nc:connAck>"...)
	}
	b := strconv.AppendInt([]byte(`{"connAck":{"channelLifetime":`), int64(lifetime), 10)
	return append(b, "}}"...)
}

// SupportedChannelTypes lists the channel types POL1023 names as supported.
const SupportedChannelTypes = ChannelLongPolling + ", " + ChannelWebSockets

// UnsupportedChannelType is 403 POL1023 naming the refused type and the supported ones.
func UnsupportedChannelType(t string) *RequestError {
	return &RequestError{Status: 403, MessageID: "POL1023", Text: "Notification channel type %1 not supported. Supported types: %2.",
		Variables: []string{t, SupportedChannelTypes}}
}

// PollSuperseded is 409 SVC1012: a newer long poll on the same channel took over.
func PollSuperseded() *RequestError {
	return &RequestError{Status: 409, MessageID: "SVC1012", Text: "Simultaneous channel requests not supported"}
}
