package relay_test

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"notifyrelay/config"
)

// TestSeedExamples sends every request example of the seed byte for byte (only the
// host and the session id adapted) and checks the answer and the notifications:
// one N1 per receiver subscription with its callbackData and the receiver's own
// links, none to the changer, and N2 Succeeded to the changer once both arrived.
func TestSeedExamples(t *testing.T) {
	s := startChat(t, nil)
	sid := s.group()
	s.subscribe(bob, "bob", "XML")
	s.subscribe(carol, "carol", "JSON")
	s.subscribe(alice, "alice", "JSON")
	wants := []struct{ file, inN1 string }{
		{"subject-xml.http", "<subject>Test123</subject><action>set</action>"},
		{"icon-attached-multipart.http", "/group/" + sid + "/icon</icon><action>set</action>"},
		{"icon-url-xml.http", "<icon>https://content.example.com/group-icon.jpg</icon>"},
		{"icon-delete-xml.http", "<icon>invalid@data.invalid</icon><action>delete</action>"},
		{"role-json.http", "<participantRole><address>tel:+19585550103</address><role>Administrator</role></participantRole>"},
	}
	for i, w := range wants {
		method, path, hdr, body := seedRequest(t, w.file)
		body = bytes.Replace(body, []byte("\xc3\xabPNG...binary image data..."), pngBytes(t), 1)
		path = strings.Replace(strings.TrimPrefix(path, "/exampleAPI/chat/v1/"), "sess001", sid, 1)
		st, h, b := s.do(method, path, "", body, hdr...)
		if st != 201 || !strings.Contains(h.Get("Location"), "/group/"+sid+"/messages/") ||
			!strings.Contains(string(b), "resourceReference") || !strings.Contains(string(b), h.Get("Location")) {
			t.Fatalf("%s: %d %v %s", w.file, st, h, b)
		}
		n1 := s.hook.wait("/bob", i+1)[i]
		if n1.ContentType != "application/xml" || !strings.Contains(n1.Body, w.inN1) ||
			!strings.Contains(n1.Body, "<callbackData>bob</callbackData>") ||
			!strings.Contains(n1.Body, `href="`+s.base+esc(bob)+"/group/"+sid+`"`) ||
			!strings.Contains(n1.Body, "<senderAddress>"+alice+"</senderAddress>") {
			t.Errorf("%s: bob's N1: %+v", w.file, n1)
		}
		if c := s.hook.wait("/carol", i+1)[i]; !strings.Contains(c.Body, `"callbackData":"carol"`) ||
			!strings.Contains(c.Body, s.base+esc(carol)+"/group/"+sid+"/messages/") {
			t.Errorf("%s: carol's N1: %+v", w.file, c)
		}
		n2 := s.hook.wait("/alice", i+1)[i]
		if !strings.Contains(n2.Body, `"chatSessionDataStatusNotification"`) || !strings.Contains(n2.Body, `"status":"Succeeded"`) ||
			!strings.Contains(n2.Body, h.Get("Location")) {
			t.Errorf("%s: alice's N2: %+v", w.file, n2)
		}
	}
	_, g := s.must(200, "GET", esc(carol)+"/group/"+sid, "", "", "Accept", "application/json")
	if !strings.Contains(g, `"address":"tel:+19585550103","role":"Administrator"`) || strings.Contains(g, `"icon"`) {
		t.Errorf("session after the examples: %s", g)
	}
}

// TestAttachedIconServed checks that an attached icon is served under each
// participant's own {userId} with its type, and that GET of the session points there.
func TestAttachedIconServed(t *testing.T) {
	s := startChat(t, nil)
	sid := s.group()
	img := pngBytes(t)
	body := "--b1\r\nContent-Disposition: form-data; name=\"root-fields\"\r\nContent-Type: application/json\r\n\r\n" +
		`{"chatSessionData":{"icon":"cid:i1@x"}}` + "\r\n--b1\r\nContent-Type: image/png\r\nContent-ID: <i1@x>\r\n\r\n" + string(img) + "\r\n--b1--\r\n"
	s.must(201, "POST", esc(alice)+"/group/"+sid+"/messages", "multipart/form-data; boundary=b1", body)
	h, got := s.must(200, "GET", esc(bob)+"/group/"+sid+"/icon", "", "")
	if got != string(img) || h.Get("Content-Type") != "image/png" {
		t.Errorf("icon: %q %v", got, h)
	}
	_, g := s.must(200, "GET", esc(bob)+"/group/"+sid, "", "", "Accept", "application/xml")
	if !strings.Contains(g, "<icon>"+s.base+esc(bob)+"/group/"+sid+"/icon</icon>") {
		t.Errorf("session: %s", g)
	}
}

// TestN2Failed: bob's webhook refuses (400, dead-lettered at once), carol's works:
// alice gets Failed with one Participant link, for bob.
func TestN2Failed(t *testing.T) {
	s := startChat(t, nil)
	sid := s.group()
	s.hook.setStatus("/bob", 400)
	s.subscribe(bob, "bob", "JSON")
	s.subscribe(carol, "carol", "JSON")
	s.subscribe(alice, "alice", "XML")
	s.must(201, "POST", esc(alice)+"/group/"+sid+"/messages", "application/json", `{"chatSessionData":{"subject":"x"}}`)
	n2 := s.hook.wait("/alice", 1)[0].Body
	link := `<link rel="Participant" href="` + s.base + esc(alice) + "/group/" + sid + "/participants/" + esc(bob) + `"/>`
	if !strings.Contains(n2, "<status>Failed</status>") || !strings.Contains(n2, link) ||
		strings.Contains(n2, esc(carol)) || !strings.Contains(n2, "<errorCode>") {
		t.Errorf("N2: %s", n2)
	}
}

// TestN2AppliedMode: with chat.status_notification: applied, N2 needs no delivery.
func TestN2AppliedMode(t *testing.T) {
	s := startChat(t, func(c *config.Config) { c.Chat.StatusNotification = "applied" })
	sid := s.group()
	s.hook.setStatus("/bob", 503) // never delivered
	s.subscribe(bob, "bob", "JSON")
	s.subscribe(alice, "alice", "JSON")
	s.must(201, "POST", esc(alice)+"/group/"+sid+"/messages", "application/xml",
		`<chat:chatSessionData xmlns:chat="urn:oma:xml:rest:netapi:chat:1"><subject>x</subject></chat:chatSessionData>`)
	if n2 := s.hook.wait("/alice", 1)[0].Body; !strings.Contains(n2, `"status":"Succeeded"`) {
		t.Errorf("N2: %s", n2)
	}
}

// TestN2AcrossRestart: the N1 is still being retried when the server restarts; once
// it is delivered afterwards, alice gets exactly one N2.
func TestN2AcrossRestart(t *testing.T) {
	s := startChat(t, nil)
	sid := s.group()
	s.hook.setStatus("/bob", 503)
	s.subscribe(bob, "bob", "JSON")
	s.subscribe(alice, "alice", "JSON")
	s.must(201, "POST", esc(alice)+"/group/"+sid+"/messages", "application/json", `{"chatSessionData":{"subject":"x"}}`)
	s.restart()
	if n := s.hook.count("/alice"); n != 0 {
		t.Fatalf("N2 before the N1 was delivered: %d", n)
	}
	s.hook.setStatus("/bob", 0)
	s.hook.wait("/bob", 1)
	if n2 := s.hook.wait("/alice", 1)[0].Body; !strings.Contains(n2, `"status":"Succeeded"`) {
		t.Errorf("N2: %s", n2)
	}
	// A second change proves the first N2 was not repeated before it.
	s.must(201, "POST", esc(alice)+"/group/"+sid+"/messages", "application/json", `{"chatSessionData":{"subject":"y"}}`)
	if got := s.hook.wait("/alice", 2); strings.Contains(got[1].Body, "Failed") || s.hook.count("/alice") != 2 {
		t.Errorf("N2s: %v", got)
	}
}

// TestNoReceiversSucceedsAtOnce: a change that causes no N1 gets N2 Succeeded.
func TestNoReceiversSucceedsAtOnce(t *testing.T) {
	s := startChat(t, nil)
	sid := s.group()
	s.subscribe(alice, "alice", "JSON")
	s.must(201, "POST", esc(alice)+"/group/"+sid+"/messages", "application/json", `{"chatSessionData":{"subject":"x"}}`)
	if n2 := s.hook.wait("/alice", 1)[0].Body; !strings.Contains(n2, `"status":"Succeeded"`) {
		t.Errorf("N2: %s", n2)
	}
}

// TestN1OutcomesAcrossRestart: bob's N1 is dead-lettered and carol's still retried
// when the server restarts; bob's outcome (staged, written by the checkpoint at
// shutdown) survives, so once carol's N1 is delivered alice's one N2 names bob.
func TestN1OutcomesAcrossRestart(t *testing.T) {
	s := startChat(t, nil)
	sid := s.group()
	s.hook.setStatus("/bob", 400)
	s.hook.setStatus("/carol", 503)
	s.subscribe(bob, "bob", "JSON")
	s.subscribe(carol, "carol", "JSON")
	s.subscribe(alice, "alice", "JSON")
	s.must(201, "POST", esc(alice)+"/group/"+sid+"/messages", "application/json", `{"chatSessionData":{"subject":"x"}}`)
	whWait(t, 10*time.Second, "bob's N1 dead-lettered", func() bool {
		return strings.Contains(s.metrics(), `notifyrelay_webhook_dead_lettered_total{kind="subscription",reason="status_4xx"} 1`)
	})
	s.restart()
	s.hook.setStatus("/carol", 0)
	s.hook.wait("/carol", 1)
	n2 := s.hook.wait("/alice", 1)[0].Body
	if !strings.Contains(n2, `"status":"Failed"`) || !strings.Contains(n2, esc(bob)) || strings.Contains(n2, esc(carol)) {
		t.Errorf("N2: %s", n2)
	}
}
