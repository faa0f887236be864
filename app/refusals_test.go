package app_test

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"notifyrelay/app/apptest"
	"notifyrelay/config"
)

// refusal is one bad request and what its requestError must say: the status, the
// messageId, and words of the reason in the expanded text (issue 12: errors that
// say why).
type refusal struct {
	name, method, path, ct, body string
	hdr                          map[string]string
	status                       int
	id                           string
	why                          []string
}

// TestRefusalsSayWhy sends every kind of refusal to a real server and checks that
// the requestError (OMA format) names the reason, not only the message part.
func TestRefusalsSayWhy(t *testing.T) {
	a := apptest.Start(t, func(c *config.Config) {
		c.Auth.Tokens = []config.Token{{Token: "op-token", Operator: true}, {Token: "alice-token", User: "alice"}}
	})
	base := apptest.URL(a)
	sid := createGroup(t, base)
	msgs := "/chat/v1/alice/group/" + sid + "/messages"
	const j = "application/json"
	sub := func(url string) string {
		return `{"chatNotificationSubscription":{"callbackReference":{"notifyURL":"` + url + `"}}}`
	}
	for _, c := range []refusal{
		{"loopback literal", "POST", "/chat/v1/alice/subscriptions", j, sub("http://127.1/"), nil, 400, "SVC0002",
			[]string{"notifyURL", "loopback", "delivery.allow_private_targets"}},
		{"loopback by name", "POST", "/chat/v1/alice/subscriptions", j, sub("http://localhost:8080/hook"), nil, 400, "SVC0002",
			[]string{"localhost resolves to", "loopback", "delivery.allow_private_targets"}},
		{"private", "POST", "/relay/v1/deliveries?notifyURL=http://10.1.2.3/h", j, `{}`, nil, 400, "SVC0002",
			[]string{"notifyURL", "10.1.2.3", "private", "delivery.allow_private_targets"}},
		{"link-local metadata", "POST", "/relay/v1/deliveries?notifyURL=http://169.254.169.254/", j, `{}`, nil, 400, "SVC0002",
			[]string{"link-local", "delivery.allow_private_targets"}},
		{"carrier-grade NAT", "POST", "/chat/v1/alice/subscriptions", j, sub("http://100.64.0.1/"), nil, 400, "SVC0002",
			[]string{"carrier-grade NAT"}},
		{"scheme", "POST", "/chat/v1/alice/subscriptions", j, sub("ftp://example.com/x"), nil, 400, "SVC0002",
			[]string{`scheme "ftp" not allowed`}},
		{"relative URL", "POST", "/relay/v1/deliveries?notifyURL=/hook", j, `{}`, nil, 400, "SVC0002",
			[]string{"not an absolute URL"}},
		{"port", "POST", "/relay/v1/deliveries?notifyURL=http://93.184.216.34:70000/", j, `{}`, nil, 400, "SVC0002",
			[]string{"port 70000 out of range"}},
		{"batch item", "POST", "/relay/v1/deliveries:batch", j, `[{"notifyURL":"http://[::1]/","contentType":"application/json","body":"{}"}]`, nil, 400, "SVC0002",
			[]string{"[0].notifyURL", "loopback"}},
		{"batch unknown field", "POST", "/relay/v1/deliveries:batch", j, `[{"url":"x"}]`, nil, 400, "SVC0002",
			[]string{"[0]", "unknown field"}},
		{"empty body", "POST", "/relay/v1/deliveries?notifyURL=http://93.184.216.34/", j, ``, nil, 400, "SVC0002",
			[]string{"body (empty)"}},
		{"unknown participant", "POST", msgs, j, `{"chatSessionData":{"participantRole":{"address":"carol","role":"Administrator"}}}`, nil, 400, "SVC0004",
			[]string{"carol is not a participant"}},
		{"empty subject", "POST", msgs, j, `{"chatSessionData":{"subject":" "}}`, nil, 400, "SVC0002",
			[]string{"subject (empty)"}},
		{"bad action", "POST", msgs, j, `{"chatSessionData":{"subject":"x","action":"toggle"}}`, nil, 400, "SVC0003",
			[]string{"action", "set, delete"}},
		{"negative duration", "POST", "/chat/v1/alice/subscriptions", j, `{"chatNotificationSubscription":{"callbackReference":{"notifyURL":"http://93.184.216.34/"},"duration":-1}}`, nil, 400, "SVC0002",
			[]string{"duration (a non-negative number"}},
		{"channel lifetime", "POST", "/notificationchannel/v1/alice/channels", j, `{"notificationChannel":{"channelType":"LongPolling","channelLifetime":"soon"}}`, nil, 400, "SVC0002",
			[]string{"channelLifetime (not a non-negative integer)"}},
		{"channel type", "POST", "/notificationchannel/v1/alice/channels", j, `{"notificationChannel":{"channelType":"SMS"}}`, nil, 403, "POL1023",
			[]string{"SMS", "WebSockets"}},
		{"no channel type", "POST", "/notificationchannel/v1/alice/channels", j, `{"notificationChannel":{}}`, nil, 400, "SVC0002",
			[]string{"channelType (missing)"}},
		{"another user", "GET", "/chat/v1/bob/subscriptions", "", "", nil, 403, "POL0001",
			[]string{"token not valid for user bob"}},
		{"no token", "GET", "/chat/v1/alice/subscriptions", "", "", map[string]string{"Authorization": ""}, 401, "SVC2003",
			[]string{"Invalid access token"}},
		{"operator API with a user token", "GET", "/relay/v1/destinations", "", "", nil, 403, "POL0001",
			[]string{"operator token"}},
		{"media type", "POST", msgs, "text/plain", "x", nil, 415, "SVC0002",
			[]string{"Content-Type text/plain"}},
		{"not acceptable", "GET", "/chat/v1/alice/subscriptions", "", "", map[string]string{"Accept": "image/png"}, 406, "POL0011",
			[]string{"image/png"}},
		{"method", "PUT", "/chat/v1/alice/subscriptions", j, "{}", nil, 405, "SVC0001",
			[]string{"method PUT not allowed"}},
		{"replay limit", "POST", "/relay/v1/deadletters:replay", j, `{"destination":"o:x","limit":200000}`, nil, 400, "SVC0002",
			[]string{"limit (1 to 100000)"}},
		{"unknown destination", "POST", "/relay/v1/destinations/o:nosuch/pause", "", "", nil, 404, "SVC0004",
			[]string{"/relay/v1/destinations/o:nosuch/pause"}},
	} {
		t.Run(c.name, func(t *testing.T) { checkRefusal(t, base, c) })
	}
}

// checkRefusal sends c (as alice, or as the operator on /relay/v1) and checks the
// answer's status, messageId and reason.
func checkRefusal(t *testing.T, base string, c refusal) {
	req, _ := http.NewRequest(c.method, base+c.path, strings.NewReader(c.body))
	tok := "alice-token"
	if strings.HasPrefix(c.path, "/relay/") && !strings.Contains(c.name, "user token") {
		tok = "op-token"
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	if c.ct != "" {
		req.Header.Set("Content-Type", c.ct)
	}
	for k, v := range c.hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	id, text := faultText(t, body)
	if resp.StatusCode != c.status || id != c.id {
		t.Fatalf("%d %s, want %d %s: %s", resp.StatusCode, id, c.status, c.id, body)
	}
	for _, w := range c.why {
		if !strings.Contains(text, w) {
			t.Errorf("%q does not say %q", text, w)
		}
	}
}

// faultText reads a JSON requestError and returns its messageId and its text with
// the variables filled in, as an operator reads it.
func faultText(t *testing.T, body []byte) (string, string) {
	var doc struct {
		RequestError map[string]struct {
			MessageID string   `json:"messageId"`
			Text      string   `json:"text"`
			Variables []string `json:"variables"`
		} `json:"requestError"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		t.Fatalf("not a JSON requestError: %s", body)
	}
	for _, e := range doc.RequestError {
		text := e.Text
		for i := len(e.Variables); i >= 1; i-- {
			text = strings.ReplaceAll(text, "%"+string(rune('0'+i)), e.Variables[i-1])
		}
		return e.MessageID, text
	}
	t.Fatalf("no exception in %s", body)
	return "", ""
}

func createGroup(t *testing.T, base string) string {
	req, _ := http.NewRequest("POST", base+"/chat/v1/alice/group", strings.NewReader(
		`{"groupChatSessionInformation":{"subject":"s","participant":[{"address":"bob"}]}}`))
	req.Header.Set("Authorization", "Bearer alice-token")
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var doc struct {
		G struct {
			ResourceURL string `json:"resourceURL"`
		} `json:"groupChatSessionInformation"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&doc); err != nil || resp.StatusCode != 201 {
		t.Fatalf("create group: %d %v", resp.StatusCode, err)
	}
	return doc.G.ResourceURL[strings.LastIndex(doc.G.ResourceURL, "/")+1:]
}
