package loadtest

import (
	"fmt"
	"regexp"
	"strconv"
	"time"

	"notifyrelay/oma"
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
	docs, err := oma.SplitNotifications(body)
	if err != nil {
		return nil, err
	}
	out := make([]doc, len(docs))
	for i, d := range docs {
		out[i] = doc{root: d.Root, raw: d.Body}
	}
	return out, nil
}
