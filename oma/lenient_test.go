package oma

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// seedBody returns the Content-Type and body of a seed request example, byte for byte.
func seedBody(t testing.TB, name string) (string, []byte) {
	data, err := os.ReadFile(filepath.Join("testdata", "seed", name))
	if err != nil {
		t.Fatal(err)
	}
	head, body, _ := bytes.Cut(data, []byte("\n\n"))
	ct := ""
	for _, line := range strings.Split(string(head), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.EqualFold(k, "Content-Type") {
			ct = strings.TrimSpace(v)
		}
	}
	return ct, body
}

func TestSeedExamplesParse(t *testing.T) {
	cases := map[string]ChatSessionData{
		"subject-xml.http":     {Kind: DataSubject, Subject: "Test123", Action: ActionSet},
		"icon-url-xml.http":    {Kind: DataIcon, Icon: "https://content.example.com/group-icon.jpg", Action: ActionSet},
		"icon-delete-xml.http": {Kind: DataIcon, Icon: "invalid@data.invalid", Action: ActionDelete},
		"role-json.http":       {Kind: DataRole, Role: ParticipantRole{"tel:+19585550103", RoleAdministrator}, Action: ActionSet},
	}
	for name, want := range cases {
		ct, body := seedBody(t, name)
		f, _ := FormatOf(ct)
		got, e := ParseChatSessionData(f, body)
		if e != nil || got != want {
			t.Errorf("%s: got %+v, %v; want %+v", name, got, e, want)
		}
	}
}

func TestSeedMultipartParses(t *testing.T) {
	ct, body := seedBody(t, "icon-attached-multipart.http")
	m, e := ParseMultipart(ct, body, 1<<20)
	if e != nil {
		t.Fatal(e)
	}
	d, e := ParseChatSessionData(m.RootFormat, m.Root)
	if e != nil || d.Icon != "99334422@example.com" {
		t.Fatalf("root: %+v %v", d, e)
	}
	a, ok := m.Find(d.Icon)
	if !ok || a.ContentType != "image/png" || !bytes.HasPrefix(a.Data, []byte("\xc3\xabPNG")) {
		t.Fatalf("attachment: %+v %v", a, ok)
	}
	if _, ok := ImageType(a.Data); ok {
		t.Error("the seed's placeholder bytes pass for an image")
	}
}

func TestLenientInputs(t *testing.T) {
	ok := map[string]string{
		"participantRple": `<chat:chatSessionData xmlns:chat="urn:oma:xml:rest:netapi:chat:1"><participantRple><address>tel:+1</address><role>participant</role></participantRple></chat:chatSessionData>`,
		"default ns":      `<chatSessionData xmlns="urn:oma:xml:rest:netapi:chat:1"><subject>x</subject><action>SET</action></chatSessionData>`,
		"message root":    `<chat:chatSessionDataMessage xmlns:chat="urn:oma:xml:rest:netapi:chat:1"><icon>cid:a@b</icon></chat:chatSessionDataMessage>`,
		"json rple":       `{"chatSessionData": {"participantRple": {"address": "tel:+1", "role": "Administrator"}}}`,
		"json null icon":  `{"chatSessionData": {"icon": null, "action": "delete"}}`,
	}
	for name, doc := range ok {
		f := XML
		if doc[0] == '{' {
			f = JSON
		}
		if _, e := ParseChatSessionData(f, []byte(doc)); e != nil {
			t.Errorf("%s: %v", name, e)
		}
	}
}

func TestBadInputs(t *testing.T) {
	deep := strings.Repeat("<a>", 40) + strings.Repeat("</a>", 40)
	cases := []struct {
		name, doc, id string
	}{
		{"doctype", `<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa">]><chat:chatSessionData xmlns:chat="urn:oma:xml:rest:netapi:chat:1"><subject>&a;</subject></chat:chatSessionData>`, "SVC0002"},
		{"doctype lax", `<!DOCTYPE x><chatSessionData><subject>x</subject></chatMessage>`, "SVC0002"},
		{"deep", `<chatSessionData>` + deep + `</chatSessionData>`, "SVC0002"},
		{"none", `<chatSessionData><action>set</action></chatSessionData>`, "SVC0002"},
		{"both", `<chatSessionData><subject>x</subject><icon>http://a/b</icon></chatSessionData>`, "SVC0002"},
		{"action", `<chatSessionData><subject>x</subject><action>toggle</action></chatSessionData>`, "SVC0003"},
		{"role", `<chatSessionData><participantRole><address>tel:+1</address><role>Owner</role></participantRole></chatSessionData>`, "SVC0003"},
		{"wrong root", `<chatMessage><text>hi</text></chatMessage>`, "SVC0002"},
		{"garbage", `<<<`, "SVC0002"},
		{"json garbage", `{"chatSessionData": `, "SVC0002"},
		{"json deep", `{"chatSessionData":` + strings.Repeat(`{"a":`, 40) + "1" + strings.Repeat("}", 41), "SVC0002"},
	}
	for _, c := range cases {
		f := XML
		if strings.HasPrefix(c.name, "json") {
			f = JSON
		}
		_, e := ParseChatSessionData(f, []byte(c.doc))
		if e == nil || e.MessageID != c.id || e.Status != 400 {
			t.Errorf("%s: got %v, want 400 %s", c.name, e, c.id)
		}
	}
}

func TestImageType(t *testing.T) {
	for in, want := range map[string]string{
		"\x89PNG\r\n\x1a\nrest": "image/png", "\xff\xd8\xff\xe0": "image/jpeg", "GIF89a..": "image/gif",
		"RIFF\x00\x00\x00\x00WEBPVP8 ": "image/webp", "<svg>": "", "": "",
	} {
		if got, _ := ImageType([]byte(in)); got != want {
			t.Errorf("ImageType(%q) = %q, want %q", in, got, want)
		}
	}
}

// FuzzParseChatSessionData feeds the lenient parsers; the seed corpus is the
// seed's request examples. Nothing may panic, and what parses must be valid.
func FuzzParseChatSessionData(f *testing.F) {
	names, _ := filepath.Glob(filepath.Join("testdata", "seed", "*.http"))
	for _, n := range names {
		ct, body := seedBody(f, filepath.Base(n))
		f.Add(ct, body)
	}
	f.Fuzz(func(t *testing.T, ct string, body []byte) {
		if m, e := ParseMultipart(ct, body, 1<<16); e == nil {
			body, ct = m.Root, m.RootFormat.ContentType()
		}
		for _, format := range []Format{XML, JSON} {
			d, e := ParseChatSessionData(format, body)
			if e != nil {
				continue
			}
			if d.Kind < DataSubject || d.Kind > DataRole || (d.Action != ActionSet && d.Action != ActionDelete) {
				t.Fatalf("accepted an invalid change: %+v", d)
			}
			_ = d.Marshal(format)
		}
	})
}
