package relay_test

import (
	"encoding/base64"
	"encoding/json"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"notifyrelay/app"
	"notifyrelay/app/apptest"
	"notifyrelay/config"
)

// whFault decodes a requestError's exception.
func whFault(t testing.TB, b []byte) (id string, vars []string) {
	t.Helper()
	var doc struct {
		RequestError map[string]struct {
			MessageID string   `json:"messageId"`
			Variables []string `json:"variables"`
		} `json:"requestError"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatalf("not a requestError: %s", b)
	}
	for _, e := range doc.RequestError {
		return e.MessageID, e.Variables
	}
	t.Fatalf("empty requestError: %s", b)
	return "", nil
}

func TestOperatorAPIRefusesBadRequests(t *testing.T) {
	a := whStart(t, nil)
	base := apptest.URL(a) + "/relay/v1"
	hook := url.QueryEscape("http://127.0.0.1:9/hook")
	cases := []struct {
		name, method, path, token, ctype, body string
		status                                 int
		id, part                               string
	}{
		{"no token", "POST", "/deliveries?notifyURL=" + hook, "", "application/json", "{}", 401, "SVC2003", ""},
		{"unknown token", "POST", "/deliveries?notifyURL=" + hook, "nope-nope-nope", "application/json", "{}", 401, "SVC2003", ""},
		{"user token", "POST", "/deliveries?notifyURL=" + hook, whUser, "application/json", "{}", 403, "POL0001", ""},
		{"user token list", "GET", "/destinations", whUser, "", "", 403, "POL0001", ""},
		{"no notifyURL", "POST", "/deliveries", whOperator, "application/json", "{}", 400, "SVC0002", "notifyURL"},
		{"relative notifyURL", "POST", "/deliveries?notifyURL=%2Fhook", whOperator, "application/json", "{}", 400, "SVC0002", "notifyURL"},
		{"ftp notifyURL", "POST", "/deliveries?notifyURL=ftp%3A%2F%2Fx%2F", whOperator, "application/json", "{}", 400, "SVC0002", "notifyURL"},
		{"no content type", "POST", "/deliveries?notifyURL=" + hook, whOperator, "", "{}", 415, "SVC0002", ""},
		{"empty body", "POST", "/deliveries?notifyURL=" + hook, whOperator, "application/json", "", 400, "SVC0002", "body"},
		{"key too long", "POST", "/deliveries?notifyURL=" + hook + "&key=" + strings.Repeat("k", 300), whOperator, "application/json", "{}", 400, "SVC0002", "key (at most 256 bytes)"},
		{"batch not JSON", "POST", "/deliveries:batch", whOperator, "application/xml", "<a/>", 415, "SVC0002", ""},
		{"batch not an array", "POST", "/deliveries:batch", whOperator, "application/json", `{"a":1}`, 400, "SVC0002", ""},
		{"batch empty", "POST", "/deliveries:batch", whOperator, "application/json", `[]`, 400, "SVC0002", ""},
		{"batch bad item", "POST", "/deliveries:batch", whOperator, "application/json",
			`[{"notifyURL":"http://127.0.0.1:9/a","contentType":"application/json","body":"{}"},{"notifyURL":"","contentType":"application/json","body":"{}"}]`,
			400, "SVC0002", "[1].notifyURL"},
		{"batch unknown field", "POST", "/deliveries:batch", whOperator, "application/json", `[{"notifyURL":"http://127.0.0.1:9/a","contentType":"application/json","body":"{}","x":1}]`, 400, "SVC0002", "[0]"},
		{"batch bad content type", "POST", "/deliveries:batch", whOperator, "application/json", `[{"notifyURL":"http://127.0.0.1:9/a","contentType":"","body":"{}"}]`, 400, "SVC0002", "[0].contentType"},
		{"unknown delivery", "GET", "/deliveries/ffff", whOperator, "", "", 404, "SVC0004", ""},
		{"replay unknown", "POST", "/deadletters/ffff:replay", whOperator, "", "", 404, "SVC0004", ""},
		{"replay without suffix", "POST", "/deadletters/ffff", whOperator, "", "", 404, "SVC0004", ""},
		{"bad limit", "GET", "/deadletters?limit=0", whOperator, "", "", 400, "SVC0002", "limit (1 to 1000)"},
		{"get deliveries", "GET", "/deliveries", whOperator, "", "", 405, "SVC0001", ""},
		{"delete delivery", "DELETE", "/deliveries/x", whOperator, "", "", 405, "SVC0001", ""},
	}
	for _, c := range cases {
		status, h, b := whDo(t, c.method, base+c.path, c.token, c.ctype, []byte(c.body))
		if status != c.status {
			t.Errorf("%s: %d %s, want %d", c.name, status, b, c.status)
			continue
		}
		id, vars := whFault(t, b)
		if id != c.id || (c.part != "" && (len(vars) == 0 || !strings.HasPrefix(vars[0], c.part))) {
			t.Errorf("%s: %s %v, want %s %q", c.name, id, vars, c.id, c.part)
		}
		if status == 405 && h.Get("Allow") == "" {
			t.Errorf("%s: 405 without Allow", c.name)
		}
	}
	if got := whDestinations(t, a); len(got) != 0 {
		t.Fatalf("refused requests queued something: %+v", got)
	}
}

type whDest struct {
	ID, Kind, NotifyURL, Key, State string
	Depth, HeadAttempts             int
	OldestAgeSeconds                float64
	Paused                          bool
}

func whDestinations(t testing.TB, a *app.App) []whDest {
	t.Helper()
	status, _, b := whDo(t, "GET", apptest.URL(a)+"/relay/v1/destinations", whOperator, "", nil)
	var r struct{ Destinations []whDest }
	if status != 200 || json.Unmarshal(b, &r) != nil {
		t.Fatalf("GET /destinations: %d %s", status, b)
	}
	return r.Destinations
}

// A single POST answers 202 with an absolute Location; ordering keys make separate
// destinations; GET /destinations shows the backlog of a receiver that is down.
func TestOperatorAcceptAndInspect(t *testing.T) {
	a := whStart(t, nil)
	down := "http://127.0.0.1:1/down" // nothing listens on port 1
	u := apptest.URL(a) + "/relay/v1/deliveries?notifyURL=" + url.QueryEscape(down) + "&key=k1"
	status, h, b := whDo(t, "POST", u, whOperator, "application/xml", []byte("<a/>"))
	var r struct{ ID, State string }
	if status != 202 || json.Unmarshal(b, &r) != nil || r.State != "pending" {
		t.Fatalf("POST: %d %s", status, b)
	}
	if want := apptest.URL(a) + "/relay/v1/deliveries/" + r.ID; h.Get("Location") != want {
		t.Fatalf("Location %q, want %q", h.Get("Location"), want)
	}
	whBatch(t, a, []whItem{{NotifyURL: down, Key: "k1", ContentType: "application/json", Body: "{}"},
		{NotifyURL: down, Key: "k2", ContentType: "application/json", Body: "{}"}})
	d := whGetDelivery(t, a, r.ID)
	if d.NotifyURL != down || d.Key != "k1" || d.State != "pending" || d.CreatedAt.IsZero() || d.DeliveredAt != nil {
		t.Fatalf("delivery %+v", d)
	}
	whWait(t, 10*time.Second, "retries to show", func() bool {
		ds := whDestinations(t, a)
		return len(ds) == 2 && ds[0].HeadAttempts > 0 && ds[1].HeadAttempts > 0
	})
	depth := map[string]int{}
	for _, ds := range whDestinations(t, a) {
		if ds.Kind != "operator" || ds.NotifyURL != down || !strings.HasPrefix(ds.ID, "o:") || ds.State == "" {
			t.Fatalf("destination %+v", ds)
		}
		depth[ds.Key] = ds.Depth
	}
	if depth["k1"] != 2 || depth["k2"] != 1 {
		t.Fatalf("depths %v", depth)
	}
	if d := whGetDelivery(t, a, r.ID); d.Attempts == 0 || d.LastError == "" {
		t.Fatalf("pending delivery shows no attempts: %+v", d)
	}
}

// Dead letters are listed (with paging and a notifyURL filter) and a replay sends
// the same delivery, with the same webhook-id, once the receiver is fixed.
func TestOperatorDeadLetterAndReplay(t *testing.T) {
	a := whStart(t, nil)
	var mu sync.Mutex
	broken := true
	rc := whListen(t, func(w http.ResponseWriter, _ *http.Request, _ []byte) {
		mu.Lock()
		defer mu.Unlock()
		if broken {
			w.WriteHeader(http.StatusUnprocessableEntity)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
	ids := []string{whPost(t, a, rc.URL("/a"), "", `{"n":1}`), whPost(t, a, rc.URL("/a"), "", `{"n":2}`), whPost(t, a, rc.URL("/b"), "", `{"n":3}`)}
	for _, id := range ids {
		whWaitState(t, a, id, "dead", 10*time.Second)
	}
	list := func(q string) ([]map[string]any, string) {
		status, _, b := whDo(t, "GET", apptest.URL(a)+"/relay/v1/deadletters"+q, whOperator, "", nil)
		var r struct {
			Deadletters []map[string]any
			Next        string
		}
		if status != 200 || json.Unmarshal(b, &r) != nil {
			t.Fatalf("GET /deadletters%s: %d %s", q, status, b)
		}
		return r.Deadletters, r.Next
	}
	all, next := list("")
	if len(all) != 3 || next != "" {
		t.Fatalf("dead letters %v next %q", all, next)
	}
	page, next := list("?limit=2")
	rest, last := list("?limit=2&after=" + next)
	if len(page) != 2 || next == "" || len(rest) != 1 || last != "" {
		t.Fatalf("pages: %v / %v (next %q, %q)", page, rest, next, last)
	}
	onlyA, _ := list("?notifyURL=" + url.QueryEscape(rc.URL("/a")))
	if len(onlyA) != 2 || onlyA[0]["lastError"] == "" || onlyA[0]["attempts"] != float64(1) {
		t.Fatalf("filtered: %v", onlyA)
	}
	mu.Lock()
	broken = false
	mu.Unlock()
	status, _, b := whDo(t, "POST", apptest.URL(a)+"/relay/v1/deadletters/"+ids[1]+":replay", whOperator, "", nil)
	if status != 202 {
		t.Fatalf("replay: %d %s", status, b)
	}
	d := whWaitState(t, a, ids[1], "delivered", 10*time.Second)
	if d.Attempts != 2 { // the refused attempt before the replay, and the one that delivered
		t.Fatalf("replayed delivery %+v, want 2 attempts in all", d)
	}
	if got := rc.delivered("/a"); len(got) != 1 || got[0] != `{"n":2}` {
		t.Fatalf("after replay /a got %v", got)
	}
	var ofReplayed []string
	for _, r := range rc.requests() {
		if r.Body == `{"n":2}` {
			ofReplayed = append(ofReplayed, r.ID)
		}
	}
	if len(ofReplayed) != 2 || ofReplayed[0] != ids[1] || ofReplayed[1] != ids[1] {
		t.Fatalf("webhook-ids of the replayed delivery: %v, want %s twice", ofReplayed, ids[1])
	}
	if left, _ := list(""); len(left) != 2 {
		t.Fatalf("dead letters after replay: %v", left)
	}
	if status, _, _ := whDo(t, "POST", apptest.URL(a)+"/relay/v1/deadletters/"+ids[1]+":replay", whOperator, "", nil); status != 404 {
		t.Fatalf("second replay: %d", status)
	}
}

// With the SSRF guard on, a notifyURL that is or resolves to a private address is
// refused at acceptance; with allow_private_targets it is accepted and delivered.
func TestOperatorSSRFGuard(t *testing.T) {
	rc := whListen(t, nil)
	_, port, _ := net.SplitHostPort(strings.TrimPrefix(rc.URL(""), "http://"))
	targets := []string{
		"http://127.0.0.1:" + port + "/x", "http://localhost:" + port + "/x", "http://[::ffff:127.0.0.1]:" + port + "/x",
		"http://0.0.0.0:" + port + "/x", "http://[::1]:" + port + "/x", "http://10.0.0.1/x", "http://169.254.169.254/x",
		"http://192.168.1.1/x", "http://100.64.0.1/x",
	}
	guarded := whStart(t, func(c *config.Config) { c.Delivery.AllowPrivateTargets = false })
	for _, target := range targets {
		u := apptest.URL(guarded) + "/relay/v1/deliveries?notifyURL=" + url.QueryEscape(target)
		status, _, b := whDo(t, "POST", u, whOperator, "application/json", []byte("{}"))
		if id, vars := whFault(t, b); status != 400 || id != "SVC0002" || len(vars) != 1 || !strings.HasPrefix(vars[0], "notifyURL (") ||
			!strings.Contains(vars[0], "delivery.allow_private_targets") {
			t.Errorf("guard on, %s: %d %s", target, status, b)
		}
	}
	open := whStart(t, nil)
	for _, target := range targets[:4] { // the ones that reach the receiver
		id := whPost(t, open, target, "", `{"to":"`+target+`"}`)
		whWaitState(t, open, id, "delivered", 10*time.Second)
	}
}

// Every attempt carries Standard Webhooks headers that the reference library
// verifies, with the same webhook-id on a retry.
func TestDeliverySignatureVerifiedByReferenceLibrary(t *testing.T) {
	secret := "whsec_" + base64.StdEncoding.EncodeToString([]byte("a 32-byte secret for the test!!!"))
	wh, err := standardwebhooks.NewWebhook(secret)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var verified []error
	attempts := 0
	rc := whListen(t, func(w http.ResponseWriter, r *http.Request, body []byte) {
		mu.Lock()
		defer mu.Unlock()
		verified = append(verified, wh.Verify(body, r.Header))
		if attempts++; attempts == 1 {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
	a := whStart(t, func(c *config.Config) { c.Delivery.SigningSecret = secret })
	id := whPost(t, a, rc.URL("/signed"), "", `{"signed":"yes ✓"}`)
	whWaitState(t, a, id, "delivered", 10*time.Second)
	reqs := rc.requests()
	if len(reqs) != 2 {
		t.Fatalf("%d requests", len(reqs))
	}
	for i, r := range reqs {
		if verified[i] != nil {
			t.Errorf("attempt %d: reference library says %v", i+1, verified[i])
		}
		if r.ID != id || r.Header.Get("webhook-timestamp") == "" || !strings.HasPrefix(r.Header.Get("webhook-signature"), "v1,") {
			t.Errorf("attempt %d headers %v", i+1, r.Header)
		}
		if r.Header.Get("Content-Type") != "application/json" || r.Header.Get("Accept") != "application/json" {
			t.Errorf("attempt %d: Content-Type %q Accept %q", i+1, r.Header.Get("Content-Type"), r.Header.Get("Accept"))
		}
	}
	tampered := reqs[1].Header.Clone()
	if err := wh.Verify([]byte(`{"signed":"no"}`), tampered); err == nil {
		t.Error("reference library accepted a tampered body")
	}
}
