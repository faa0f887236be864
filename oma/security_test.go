package oma

import (
	"bytes"
	"strings"
	"testing"
)

// The seed's examples close their root with the wrong tag, so they take the lenient
// path; these documents do too, and must still be refused (issue 16, F7).
func TestLenientRefusesWhatStrictRefuses(t *testing.T) {
	const open = `<chat:chatSessionData xmlns:chat="urn:oma:xml:rest:netapi:chat:1"><subject>x</subject></chat:chatMessage>`
	bad := map[string]string{
		"doctype after the root":  open + `<!DOCTYPE x [<!ENTITY a "b">]>`,
		"doctype, lower case":     open + `<!doctype x>`,
		"second root":             open + `<chat:chatSessionData xmlns:chat="urn:oma:xml:rest:netapi:chat:1"><subject>y</subject></chat:chatSessionData>`,
		"second root, same wrong": open + open,
		"text after the root":     open + `trailing`,
	}
	for name, doc := range bad {
		if n, err := ParseXML([]byte(doc)); err == nil {
			t.Errorf("%s: accepted (%s)", name, n.Value("subject"))
		}
	}
	if n, err := ParseXML([]byte(open + "\n<!-- c -->\n")); err != nil || n.Value("subject") != "x" {
		t.Errorf("the seed's shape with a trailing comment: %v", err)
	}
}

// F6: an XML declaration anywhere but at the start is not XML; F5: invalid UTF-8 is
// not relayed.
func TestCheckNotificationRefusesMalformed(t *testing.T) {
	bad := []struct {
		f   Format
		doc string
	}{
		{JSON, "{\"n\":{\"v\":\"bad\xff\xfe\x80\"}}"},
		{JSON, "{\"n\":\"\xc0\xaf\"}"},
		{XML, `<n>x</n><?xml version="1.0"?>`},
		{XML, `<?xml version="1.0"?><?xml version="1.0"?><n>x</n>`},
		{XML, `<n><?xml version="1.0"?>x</n>`},
		{XML, "<n>bad\xff</n>"},
		{XML, `<n>x</n>tail`},
		{XML, `<n>x</n><m/>`},
	}
	for _, c := range bad {
		if e := CheckNotification(c.f, []byte(c.doc)); e == nil || e.MessageID != "SVC0002" {
			t.Errorf("%q: got %v, want 400 SVC0002", c.doc, e)
		}
	}
	good := []struct {
		f   Format
		doc string
	}{
		{JSON, `{"n":{"v":"é \u00e9 \ud83d\ude00"}}`},
		{XML, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<n>é<?pi x?></n>\n<!-- after -->\n"},
		{XML, "\ufeff<?xml version=\"1.0\"?><n/>"},
	}
	for _, c := range good {
		if e := CheckNotification(c.f, []byte(c.doc)); e != nil {
			t.Errorf("%q: %v", c.doc, e)
		}
	}
}

// F3: a text split by many comments or processing instructions is assembled in
// linear time. The reproduction: <subject> + "xxxxx<?a?>" × 100,000, 1 MB. tail
// ends the subject: "" (well-formed), "</chat:chatMessage>" (the seed's wrong
// closing tag) or " & " (a bare ampersand: only the lax pass reads it).
func splitTextDoc(n int, tail string) []byte {
	var b bytes.Buffer
	b.WriteString(`<chat:chatSessionData xmlns:chat="urn:oma:xml:rest:netapi:chat:1"><subject>`)
	b.WriteString(strings.Repeat("xxxxx<?a?>", n))
	if tail == " & " {
		b.WriteString(tail)
	}
	b.WriteString(`</subject>`)
	if tail == wrongClose {
		b.WriteString(wrongClose)
	} else {
		b.WriteString(`</chat:chatSessionData>`)
	}
	return b.Bytes()
}

const wrongClose = "</chat:chatMessage>"

var splitTails = map[string]string{"wellformed": "", "wrongclose": wrongClose, "laxonly": " & "}

func TestSplitTextAssembled(t *testing.T) {
	for name, tail := range splitTails {
		n, err := ParseXML(splitTextDoc(1000, tail))
		want := strings.Repeat("xxxxx", 1000)
		if name == "laxonly" {
			want += " &"
		}
		if err != nil || n.Value("subject") != want {
			t.Fatalf("%s: %v", name, err)
		}
	}
}

// BenchmarkSplitText reports ms per MB of the F3 reproduction: well-formed, with
// the seed's wrong closing tag, and with what only the lax decoder reads. Target
// ≤ 50 ms per MB.
func BenchmarkSplitText(b *testing.B) {
	for _, name := range []string{"wellformed", "wrongclose", "laxonly"} {
		doc := splitTextDoc(100_000, splitTails[name])
		b.Run(name, func(b *testing.B) {
			b.SetBytes(int64(len(doc)))
			for b.Loop() {
				if _, err := ParseXML(doc); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Microseconds())/1e3/float64(b.N)/(float64(len(doc))/1e6), "ms/MB")
		})
	}
}

// CheckNotification is strict: the lenient reading of a wrong closing tag is for
// requests to the chat API only.
func TestCheckNotificationStrict(t *testing.T) {
	for _, doc := range []string{`<a><b>x</b></c>`, `<a x=1/>`, `<a>&nbsp;</a>`, `<a> & </a>`} {
		if e := CheckNotification(XML, []byte(doc)); e == nil {
			t.Errorf("%s: accepted", doc)
		}
	}
}
