package oma

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"unicode/utf8"
)

// Fuzz targets, one per parser of untrusted input. .ci/run runs each for a few
// seconds; `go test ./oma` runs their seeds: the seed's request examples
// (testdata/seed), our golden documents (testdata/golden), a few more requests and
// the reproductions of issue 16 (testdata/fuzz-seeds).

func addSeeds(f *testing.F) {
	f.Helper()
	for _, dir := range []string{"golden", "fuzz-seeds"} {
		files, err := filepath.Glob(filepath.Join("testdata", dir, "*"))
		if err != nil {
			f.Fatal(err)
		}
		for _, p := range files {
			b, err := os.ReadFile(p)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(b)
		}
	}
	seeds, _ := filepath.Glob(filepath.Join("testdata", "seed", "*.http"))
	for _, p := range seeds {
		_, body := seedBody(f, filepath.Base(p))
		f.Add(body)
	}
}

// FuzzParseXML: the lenient XML reader never panics, and what it accepts is one
// root no deeper than MaxDepth.
func FuzzParseXML(f *testing.F) {
	addSeeds(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		n, err := ParseXML(b)
		if err == nil && (n == nil || depth(n) > MaxDepth) {
			t.Fatalf("accepted %q: %+v", b, n)
		}
	})
}

func depth(n *Node) int {
	d := 0
	for _, k := range n.Kids {
		d = max(d, depth(k))
	}
	return d + 1
}

// FuzzParseJSON: the JSON reader never panics.
func FuzzParseJSON(f *testing.F) {
	addSeeds(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		if n, err := ParseJSON(b); err == nil && n == nil {
			t.Fatal("nil node without an error")
		}
	})
}

// FuzzCheckNotification: a notification the callbackURL accepts is valid UTF-8,
// and a notificationList made of it is well-formed (XML: one document the strict
// reader takes; JSON: valid JSON).
func FuzzCheckNotification(f *testing.F) {
	addSeeds(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, format := range []Format{XML, JSON} {
			if CheckNotification(format, b) != nil {
				continue
			}
			if !utf8.Valid(b) {
				t.Fatalf("accepted invalid UTF-8 %q", b)
			}
			list := MarshalNotificationList(format, [][]byte{b, b})
			if format == XML {
				if _, err := parseXML(list, true); err != nil {
					t.Fatalf("%q makes an ill-formed list: %v", b, err)
				}
			} else if !json.Valid(list) {
				t.Fatalf("%q makes an invalid JSON list", b)
			}
		}
	})
}

// FuzzRequestDocuments: every request parser of the APIs, in both formats.
func FuzzRequestDocuments(f *testing.F) {
	addSeeds(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, format := range []Format{XML, JSON} {
			_, _ = ParseChatSessionData(format, b)
			_, _ = ParseGroupChatSessionInformation(format, b)
			_, _ = ParseParticipantList(format, b)
			_, _ = ParseChatNotificationSubscription(format, b)
			_, _ = ParseNotificationChannel(format, b)
			_, _ = ParseChannelLifetime(format, b)
			_ = CheckLongPollingRequest(format, b)
		}
		_, _ = ParseClientMessage(b, true)
	})
}

// FuzzParseMultipart: the multipart reader never panics and keeps parts within
// the limit.
func FuzzParseMultipart(f *testing.F) {
	ct, body := seedBody(f, "icon-attached-multipart.http")
	f.Add(ct, body)
	f.Add("multipart/form-data; boundary=b", []byte("--b\r\nContent-Type: application/json\r\n\r\n{\"chatSessionData\":{\"icon\":\"cid:a\"}}\r\n--b--\r\n"))
	f.Fuzz(func(t *testing.T, ct string, b []byte) {
		m, e := ParseMultipart(ct, b, 4096)
		if e != nil {
			return
		}
		for _, a := range m.Attachments {
			if len(a.Data) > 4096 || !bytes.Contains(b, a.Data) {
				t.Fatalf("attachment of %d bytes", len(a.Data))
			}
		}
	})
}
