package relay_test

import (
	"strings"
	"testing"

	"notifyrelay/config"
)

// Issue 16, F9: per-user quotas. Over one: 403 POL0001 naming the limit, nothing
// changed; the count of groups created survives a restart.
func TestChatQuotas(t *testing.T) {
	s := startChat(t, func(c *config.Config) {
		c.Limits.MaxGroupsPerUser = 2
		c.Limits.MaxParticipants = 3
		c.Limits.MaxSubscriptionsPerUser = 2
	})
	const carol, dave = "tel:+19585550102", "tel:+19585550103"
	group := func(parts ...string) string {
		var ps []string
		for _, p := range parts {
			ps = append(ps, `{"address":"`+p+`"}`)
		}
		return `{"groupChatSessionInformation":{"subject":"q","participant":[` + strings.Join(ps, ",") + `]}}`
	}
	refused := func(what, path, body string) {
		t.Helper()
		_, b := s.must(403, "POST", path, "application/json", body)
		if !strings.Contains(b, "POL0001") || !strings.Contains(b, "limits.max_") {
			t.Errorf("%s: %s", what, b)
		}
	}
	groups := esc(alice) + "/group"
	refused("4 participants", groups, group(bob, carol, dave))
	_, b := s.must(201, "POST", groups, "application/json", group(bob, carol))
	sid := sessionIDRe.FindStringSubmatch(b)[1]
	refused("a 4th participant", groups+"/"+sid+"/participants", `{"participantList":{"participant":[{"address":"`+dave+`"}]}}`)
	if _, b := s.must(200, "GET", groups+"/"+sid+"/participants", "", ""); strings.Contains(b, "550103") {
		t.Errorf("refused participant added: %s", b)
	}
	s.must(201, "POST", groups, "application/json", group(bob))
	refused("a 3rd group", groups, group(bob))
	s.restart()
	refused("a 3rd group after a restart", groups, group(bob))
	s.must(201, "POST", esc(bob)+"/group", "application/json", group(alice)) // bob's own quota

	subs := esc(alice) + "/subscriptions"
	sub := `{"chatNotificationSubscription":{"callbackReference":{"notifyURL":"` + s.hook.url + `/a"}}}`
	s.must(201, "POST", subs, "application/json", sub)
	s.must(201, "POST", subs, "application/json", sub)
	refused("a 3rd subscription", subs, sub)
}
