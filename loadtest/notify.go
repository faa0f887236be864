package loadtest

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Marker is what every notification the tool causes carries, so that it can be
// measured end to end without help from the server: the stream it belongs to, its
// sequence number in that stream, and when it was sent. Written as
// "lt:<stream>:<seq>:<unix nanoseconds>" inside a subject, an icon URL or a body.
type Marker struct {
	Stream string
	Seq    int
	Sent   time.Time
}

var markerRE = regexp.MustCompile(`lt:([A-Za-z0-9_.\-]+):([0-9]+):([0-9]+)`)

// String renders the marker.
func (m Marker) String() string {
	return fmt.Sprintf("lt:%s:%d:%d", m.Stream, m.Seq, m.Sent.UnixNano())
}

// findMarker returns the first marker in b.
func findMarker(b []byte) (Marker, bool) {
	sub := markerRE.FindSubmatch(b)
	if sub == nil {
		return Marker{}, false
	}
	seq, err1 := strconv.Atoi(string(sub[2]))
	ns, err2 := strconv.ParseInt(string(sub[3]), 10, 64)
	if err1 != nil || err2 != nil {
		return Marker{}, false
	}
	return Marker{Stream: string(sub[1]), Seq: seq, Sent: time.Unix(0, ns)}, true
}

var messageRE = regexp.MustCompile(`/group/([^/"<>\s]+)/messages/([^/"<>\s?]+)`)

// messageRef returns "sessionId/messageId" of the first chat message URL in b: how a
// notification without a marker (a role change) is matched with the POST that caused it.
func messageRef(b []byte) (string, bool) {
	sub := messageRE.FindSubmatch(b)
	if sub == nil {
		return "", false
	}
	return string(sub[1]) + "/" + string(sub[2]), true
}

// doc is one notification document: its root's local name and its bytes.
type doc struct {
	root string
	raw  []byte
}

// splitDocs turns a body (one notification, or a notificationList of several, in XML
// or JSON) into its notification documents.
func splitDocs(body []byte) ([]doc, error) {
	b := bytes.TrimSpace(body)
	if len(b) > 0 && b[0] == '{' {
		return splitJSON(b)
	}
	return splitXML(b)
}

func splitJSON(b []byte) ([]doc, error) {
	var top map[string]json.RawMessage
	if err := json.Unmarshal(b, &top); err != nil {
		return nil, fmt.Errorf("notification JSON: %w", err)
	}
	var out []doc
	for k, v := range top {
		name := localName(k)
		if name != "notificationList" {
			out = append(out, doc{root: name, raw: v})
			continue
		}
		items, err := listItems(v)
		if err != nil {
			return nil, err
		}
		for _, it := range items {
			inner, err := splitJSON(it)
			if err != nil {
				return nil, err
			}
			out = append(out, inner...)
		}
	}
	return out, nil
}

// listItems reads a notificationList value: null, one object or an array of objects.
func listItems(v json.RawMessage) ([]json.RawMessage, error) {
	v = bytes.TrimSpace(v)
	switch {
	case len(v) == 0 || string(v) == "null":
		return nil, nil
	case v[0] == '{':
		return []json.RawMessage{v}, nil
	}
	var items []json.RawMessage
	if err := json.Unmarshal(v, &items); err != nil {
		return nil, fmt.Errorf("notificationList: %w", err)
	}
	return items, nil
}

func splitXML(b []byte) ([]doc, error) {
	d := xml.NewDecoder(bytes.NewReader(b))
	for {
		tok, err := d.Token()
		if err != nil {
			return nil, fmt.Errorf("notification XML: %w", err)
		}
		if se, ok := tok.(xml.StartElement); ok {
			if se.Name.Local != "notificationList" {
				return []doc{{root: se.Name.Local, raw: b}}, nil
			}
			return xmlChildren(d, b)
		}
	}
}

// xmlChildren returns each child element of the list d has just opened.
func xmlChildren(d *xml.Decoder, b []byte) ([]doc, error) {
	var out []doc
	for {
		start := d.InputOffset()
		tok, err := d.Token()
		if err != nil {
			return nil, fmt.Errorf("notificationList XML: %w", err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			if err := d.Skip(); err != nil {
				return nil, fmt.Errorf("notificationList XML: %w", err)
			}
			out = append(out, doc{root: t.Name.Local, raw: b[start:d.InputOffset()]})
		case xml.EndElement:
			return out, nil
		}
	}
}

func localName(k string) string {
	if i := strings.LastIndexByte(k, ':'); i >= 0 {
		return k[i+1:]
	}
	return k
}
