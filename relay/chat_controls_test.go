package relay_test

import (
	"encoding/json"
	"regexp"
	"strings"
	"testing"

	"notifyrelay/config"
)

var subscriptionIDRe = regexp.MustCompile(`/subscriptions/([^"/]+)"`)

// subscriptionDest is the webhook destination of a subscription create answer.
func subscriptionDest(t *testing.T, created string) string {
	m := subscriptionIDRe.FindStringSubmatch(created)
	if m == nil {
		t.Fatalf("no subscription id in %s", created)
	}
	return "s:" + m[1]
}

// A chat subscription's destination is paused and resumed by the operator API
// like an operator destination (its N1s wait, other subscribers' do not), and
// takes the default rate limit unless set on its own; it has no custom headers;
// its pause ends when the subscription does.
func TestChatSubscriptionControls(t *testing.T) {
	s := startChat(t, func(c *config.Config) { c.Delivery.RateLimit = config.RateLimit{Rate: 1000, Burst: 5} })
	sid := s.group()
	bobDest := subscriptionDest(t, s.subscribe(bob, "bob", "JSON"))
	s.subscribe(carol, "carol", "JSON")
	ops := strings.TrimSuffix(s.base, "/exampleAPI/chat/v1/") + "/exampleAPI/relay/v1/destinations/"
	do := func(method, path, body string) (int, map[string]any) {
		t.Helper()
		st, _, b := whDo(t, method, ops+path, "", "application/json", []byte(body))
		var v map[string]any
		_ = json.Unmarshal(b, &v)
		return st, v
	}
	if st, v := do("POST", bobDest+"/pause", ""); st != 200 || v["paused"] != true || v["kind"] != "subscription" {
		t.Fatalf("pause bob: %d %v", st, v)
	}
	s.must(201, "POST", esc(alice)+"/group/"+sid+"/messages", "application/json", `{"chatSessionData":{"subject":"x"}}`)
	s.hook.wait("/carol", 1)
	if n := s.hook.count("/bob"); n != 0 {
		t.Fatalf("a paused subscription got %d notifications", n)
	}
	if st, v := do("POST", bobDest+"/resume", ""); st != 200 || v["paused"] != false {
		t.Fatalf("resume bob: %d %v", st, v)
	}
	s.hook.wait("/bob", 1)
	if st, v := do("PUT", bobDest, `{"headers":{"X-A":"1"}}`); st != 400 {
		t.Fatalf("headers on a subscription: %d %v, want 400", st, v)
	}
	st, v := do("PUT", bobDest, `{"rateLimit":{"rate":2,"burst":3}}`)
	if lim, _ := v["rateLimit"].(map[string]any); st != 200 || lim["rate"] != float64(2) || lim["burst"] != float64(3) {
		t.Fatalf("rate limit on a subscription: %d %v", st, v)
	}
	st, v = do("PUT", bobDest, `{}`)
	if lim, _ := v["rateLimit"].(map[string]any); st != 200 || lim["rate"] != float64(1000) {
		t.Fatalf("back to the default: %d %v", st, v)
	}
	if st, _ := do("POST", "s:nosuchsubscription/pause", ""); st != 404 {
		t.Fatalf("pause of an unknown subscription: %d", st)
	}
	// Unsubscribing ends the destination's pause with it.
	if st, _ := do("POST", bobDest+"/pause", ""); st != 200 {
		t.Fatalf("pause bob again: %d", st)
	}
	s.must(204, "DELETE", esc(bob)+"/subscriptions/"+strings.TrimPrefix(bobDest, "s:"), "", "")
	if st, _ := do("POST", bobDest+"/resume", ""); st != 404 {
		t.Fatalf("resume of an ended subscription: %d, want 404 (its pause gone with it)", st)
	}
}

// A chat change repeated with the same Idempotency-Key, before and after a
// restart, answers the first 201 (same Location) and notifies once; with another
// body it is 422.
func TestChatChangeIdempotencyKey(t *testing.T) {
	s := startChat(t, nil)
	sid := s.group()
	s.subscribe(bob, "bob", "JSON")
	path := esc(alice) + "/group/" + sid + "/messages"
	h, _ := s.must(201, "POST", path, "application/json", `{"chatSessionData":{"subject":"x"}}`, "Idempotency-Key", "change-1")
	first := h.Get("Location")
	if h, _ = s.must(201, "POST", path, "application/json", `{"chatSessionData":{"subject":"x"}}`, "Idempotency-Key", "change-1"); h.Get("Location") != first {
		t.Fatalf("repeat: Location %q, want %q", h.Get("Location"), first)
	}
	s.must(422, "POST", path, "application/json", `{"chatSessionData":{"subject":"other"}}`, "Idempotency-Key", "change-1")
	s.restart()
	if h, _ = s.must(201, "POST", path, "application/json", `{"chatSessionData":{"subject":"x"}}`, "Idempotency-Key", "change-1"); h.Get("Location") != first {
		t.Fatalf("repeat after the restart: Location %q, want %q", h.Get("Location"), first)
	}
	s.must(201, "POST", path, "application/json", `{"chatSessionData":{"subject":"y"}}`)
	got := s.hook.wait("/bob", 2)
	if len(got) != 2 || !strings.Contains(got[0].Body, `"subject":"x"`) || !strings.Contains(got[1].Body, `"subject":"y"`) {
		t.Fatalf("bob got %v, want the keyed change once, then the other", got)
	}
}
