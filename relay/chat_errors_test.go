package relay_test

import (
	"strings"
	"testing"

	"notifyrelay/config"
)

func withTokens(c *config.Config) {
	c.Auth.Tokens = []config.Token{{Token: "alice-token", User: alice}, {Token: "bob-token-1", User: bob},
		{Token: "dave-token-1", User: "tel:+19585550199"}}
	c.Limits.MaxBody = 4096
}

// TestBadInput sends every bad input of docs/api.md §1–§2 to POST …/messages and checks the
// status and messageId, and that nothing changed and nothing was queued.
func TestBadInput(t *testing.T) {
	s := startChat(t, withTokens)
	auth := []string{"Authorization", "Bearer alice-token"}
	_, b := s.must(201, "POST", esc(alice)+"/group", "application/json",
		`{"groupChatSessionInformation":{"subject":"Trip","participant":[{"address":"`+bob+`"}]}}`, auth...)
	sid := sessionIDRe.FindStringSubmatch(b)[1]
	s.must(201, "POST", esc(bob)+"/subscriptions", "application/json",
		`{"chatNotificationSubscription":{"callbackReference":{"notifyURL":"`+s.hook.url+`/bob"}}}`, "Authorization", "Bearer bob-token-1")
	msgs := esc(alice) + "/group/" + sid + "/messages"
	xml := func(inner string) string {
		return `<chat:chatSessionData xmlns:chat="urn:oma:xml:rest:netapi:chat:1">` + inner + `</chat:chatSessionData>`
	}
	const ax, aj = "application/xml", "application/json"
	cases := []struct {
		name, path, ct, body string
		hdr                  []string
		status               int
		id                   string
	}{
		{"malformed xml", msgs, ax, `<chat:chatSessionData><subject>x`, auth, 400, "SVC0002"},
		{"malformed json", msgs, aj, `{"chatSessionData": {"subject": }`, auth, 400, "SVC0002"},
		{"empty body", msgs, aj, ``, auth, 400, "SVC0002"},
		{"no choice", msgs, ax, xml(`<action>set</action>`), auth, 400, "SVC0002"},
		{"two choices", msgs, ax, xml(`<subject>a</subject><icon>https://x.example/i.png</icon>`), auth, 400, "SVC0002"},
		{"bad action", msgs, ax, xml(`<subject>a</subject><action>toggle</action>`), auth, 400, "SVC0003"},
		{"bad role", msgs, aj, `{"chatSessionData":{"participantRole":{"address":"` + bob + `","role":"Owner"}}}`, auth, 400, "SVC0003"},
		{"role of a stranger", msgs, aj, `{"chatSessionData":{"participantRole":{"address":"tel:+1999","role":"Administrator"}}}`, auth, 400, "SVC0004"},
		{"demote last admin", msgs, aj, `{"chatSessionData":{"participantRole":{"address":"` + alice + `","role":"Participant"}}}`, auth, 403, "POL0001"},
		{"not an admin", esc(bob) + "/group/" + sid + "/messages", aj, `{"chatSessionData":{"participantRole":{"address":"` + bob + `","role":"Administrator"}}}`, []string{"Authorization", "Bearer bob-token-1"}, 403, "POL0001"},
		{"not a participant", "tel%3A%2B19585550199/group/" + sid + "/messages", aj, `{"chatSessionData":{"subject":"x"}}`, []string{"Authorization", "Bearer dave-token-1"}, 403, "POL0001"},
		{"unknown session", esc(alice) + "/group/nosuch/messages", aj, `{"chatSessionData":{"subject":"x"}}`, auth, 404, "SVC0004"},
		{"no token", msgs, aj, `{"chatSessionData":{"subject":"x"}}`, nil, 401, "SVC2003"},
		{"unknown token", msgs, aj, `{"chatSessionData":{"subject":"x"}}`, []string{"Authorization", "Bearer nope-nope"}, 401, "SVC2003"},
		{"other user's token", msgs, aj, `{"chatSessionData":{"subject":"x"}}`, []string{"Authorization", "Bearer bob-token-1"}, 403, "POL0001"},
		{"media type", msgs, "text/plain", `subject=x`, auth, 415, "SVC0002"},
		{"not acceptable", msgs, aj, `{"chatSessionData":{"subject":"x"}}`, append([]string{"Accept", "image/png"}, auth...), 406, "POL0011"},
		{"too large", msgs, aj, `{"chatSessionData":{"subject":"` + strings.Repeat("x", 5000) + `"}}`, auth, 413, "SVC0002"},
		{"icon url not http", msgs, aj, `{"chatSessionData":{"icon":"ftp://x/y.png"}}`, auth, 400, "SVC0002"},
		{"icon not an image", msgs, "multipart/form-data; boundary=b", "--b\r\nContent-Type: application/json\r\n\r\n" +
			`{"chatSessionData":{"icon":"cid:a"}}` + "\r\n--b\r\nContent-Type: image/png\r\nContent-ID: <a>\r\n\r\nnot a png\r\n--b--\r\n", auth, 400, "SVC0002"},
		{"doctype", msgs, ax, `<?xml version="1.0"?><!DOCTYPE lol [<!ENTITY a "aaaaaaaa"><!ENTITY b "&a;&a;&a;&a;">]>` + xml(`<subject>&b;</subject>`), auth, 400, "SVC0002"},
		{"doctype after a wrongly closed root", msgs, ax, `<chat:chatSessionData xmlns:chat="urn:oma:xml:rest:netapi:chat:1"><subject>x</subject></chat:chatMessage><!DOCTYPE x [<!ENTITY a "b">]>`, auth, 400, "SVC0002"},
		{"second root after a wrongly closed root", msgs, ax, `<chat:chatSessionData xmlns:chat="urn:oma:xml:rest:netapi:chat:1"><subject>x</subject></chat:chatMessage><chatSessionData><subject>y</subject></chatSessionData>`, auth, 400, "SVC0002"},
		{"too deep", msgs, ax, xml(`<subject>x</subject>` + strings.Repeat("<a>", 40) + strings.Repeat("</a>", 40)), auth, 400, "SVC0002"},
	}
	for _, c := range cases {
		st, h, body := s.do("POST", c.path, c.ct, []byte(c.body), c.hdr...)
		if st != c.status || !strings.Contains(string(body), c.id) {
			t.Errorf("%s: %d %s, want %d %s", c.name, st, body, c.status, c.id)
		}
		if st == 401 && h.Get("WWW-Authenticate") == "" {
			t.Errorf("%s: 401 without WWW-Authenticate", c.name)
		}
	}
	// A 404 names the resource as the client asked for it: base_path included, encoded.
	if _, _, body := s.do("GET", esc(alice)+"/group/nosuch", "", nil, auth...); !strings.Contains(string(body),
		`"variables":["/exampleAPI/chat/v1/`+esc(alice)+`/group/nosuch"]`) {
		t.Errorf("404 does not name the requested path: %s", body)
	}
	_, g := s.must(200, "GET", esc(alice)+"/group/"+sid, "", "", auth...)
	if !strings.Contains(g, `"subject":"Trip"`) || strings.Contains(g, `"icon"`) || strings.Count(g, "Administrator") != 1 {
		t.Errorf("session changed by refused requests: %s", g)
	}
	// Nothing was queued: the first notification bob gets is the next good change.
	s.must(201, "POST", msgs, aj, `{"chatSessionData":{"subject":"good"}}`, auth...)
	if n := s.hook.wait("/bob", 1); !strings.Contains(n[0].Body, `"subject":"good"`) {
		t.Errorf("first notification: %v", n)
	}
}

// TestMethodNotAllowed checks 405 with the exact Allow of every chat resource.
func TestMethodNotAllowed(t *testing.T) {
	s := startChat(t, nil)
	sid := s.group()
	g := esc(alice) + "/group/" + sid
	for path, allow := range map[string]string{
		esc(alice) + "/group": "POST", g: "GET", g + "/participants": "GET, POST",
		g + "/participants/" + esc(bob): "DELETE", g + "/messages": "POST", g + "/icon": "GET",
		esc(alice) + "/subscriptions": "GET, POST", esc(alice) + "/subscriptions/x": "DELETE, GET",
	} {
		st, h, _ := s.do("PUT", path, "", nil)
		if st != 405 || h.Get("Allow") != allow {
			t.Errorf("PUT %s: %d Allow %q, want 405 %q", path, st, h.Get("Allow"), allow)
		}
	}
}

// TestSubscriptions covers create (XML and JSON), read, list, delete, duration cap,
// clientCorrelator idempotency and the SSRF check.
func TestSubscriptions(t *testing.T) {
	s := startChat(t, func(c *config.Config) { c.Chat.MaxDuration = 100 })
	xmlSub := `<chat:chatNotificationSubscription xmlns:chat="urn:oma:xml:rest:netapi:chat:1"><callbackReference>` +
		`<notifyURL>` + s.hook.url + `/x</notifyURL><callbackData>abcd</callbackData></callbackReference>` +
		`<duration>7200</duration><clientCorrelator>sub-42</clientCorrelator></chat:chatNotificationSubscription>`
	h1, b1 := s.must(201, "POST", esc(bob)+"/subscriptions", "application/xml", xmlSub)
	if !strings.Contains(b1, "<notificationFormat>XML</notificationFormat>") || !strings.Contains(b1, "<duration>100</duration>") ||
		!strings.Contains(b1, "<resourceURL>"+h1.Get("Location")+"</resourceURL>") {
		t.Errorf("created: %s", b1)
	}
	h2, _ := s.must(201, "POST", esc(bob)+"/subscriptions", "application/xml", xmlSub)
	if h2.Get("Location") != h1.Get("Location") {
		t.Errorf("repeat with the same correlator: %s vs %s", h2.Get("Location"), h1.Get("Location"))
	}
	s.must(409, "POST", esc(bob)+"/subscriptions", "application/xml", strings.Replace(xmlSub, "abcd", "efgh", 1))
	_, list := s.must(200, "GET", esc(bob)+"/subscriptions", "", "", "Accept", "application/json")
	if strings.Count(list, `"callbackData":"abcd"`) != 1 || !strings.Contains(list, `"chatNotificationSubscription":[`) {
		t.Errorf("list: %s", list)
	}
	rel := strings.TrimPrefix(h1.Get("Location"), s.base)
	s.must(200, "GET", rel, "", "")
	s.must(404, "GET", esc(alice)+"/subscriptions/"+rel[strings.LastIndexByte(rel, '/')+1:], "", "")
	s.must(204, "DELETE", rel, "", "")
	s.must(404, "GET", rel, "", "")
	s.must(400, "POST", esc(bob)+"/subscriptions", "application/json", `{"chatNotificationSubscription":{"callbackReference":{}}}`)
	s.must(400, "POST", esc(bob)+"/subscriptions", "application/json",
		`{"chatNotificationSubscription":{"callbackReference":{"notifyURL":"x","notificationFormat":"YAML"}}}`)
}

func TestSubscriptionSSRF(t *testing.T) {
	s := startChat(t, func(c *config.Config) { c.Delivery.AllowPrivateTargets = false })
	for _, u := range []string{"http://127.0.0.1:9/x", "http://10.1.2.3/x", "http://[::ffff:127.0.0.1]/x", "http://169.254.169.254/x"} {
		_, b := s.must(400, "POST", esc(bob)+"/subscriptions", "application/json",
			`{"chatNotificationSubscription":{"callbackReference":{"notifyURL":"`+u+`"}}}`)
		if !strings.Contains(b, "SVC0002") || !strings.Contains(b, "notifyURL") {
			t.Errorf("%s: %s", u, b)
		}
	}
}

// TestParticipants covers add (Administrators only), list, remove, leave, and the
// group create correlator.
func TestParticipants(t *testing.T) {
	s := startChat(t, nil)
	body := `{"groupChatSessionInformation":{"subject":"T","participant":[{"address":"` + bob + `"}],"clientCorrelator":"g1"}}`
	h1, _ := s.must(201, "POST", esc(alice)+"/group", "application/json", body)
	h2, _ := s.must(201, "POST", esc(alice)+"/group", "application/json", body)
	if h1.Get("Location") != h2.Get("Location") {
		t.Errorf("group correlator: %s vs %s", h1.Get("Location"), h2.Get("Location"))
	}
	s.must(409, "POST", esc(alice)+"/group", "application/json", strings.Replace(body, `"T"`, `"U"`, 1))
	sid := h1.Get("Location")[strings.LastIndexByte(h1.Get("Location"), '/')+1:]
	g := "/group/" + sid
	add := `{"participantList":{"participant":[{"address":"` + carol + `","name":"Carol"}]}}`
	s.must(403, "POST", esc(bob)+g+"/participants", "application/json", add)
	s.must(201, "POST", esc(alice)+g+"/participants", "application/json", add)
	_, l := s.must(200, "GET", esc(carol)+g+"/participants", "", "", "Accept", "application/json")
	if !strings.Contains(l, `"address":"`+carol+`","name":"Carol","role":"Participant","status":"Connected"`) {
		t.Errorf("list: %s", l)
	}
	s.must(403, "DELETE", esc(bob)+g+"/participants/"+esc(carol), "", "")
	s.must(204, "DELETE", esc(bob)+g+"/participants/"+esc(bob), "", "")
	s.must(403, "GET", esc(bob)+g, "", "")
	s.must(204, "DELETE", esc(alice)+g+"/participants/"+esc(carol), "", "")
	s.must(404, "DELETE", esc(alice)+g+"/participants/"+esc(carol), "", "")
	s.must(404, "GET", esc(alice)+"/group/nosuch", "", "")
}
