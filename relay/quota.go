package relay

import (
	"fmt"

	"notifyrelay/oma"
)

// The per-user quotas of limits.* (0: none). Over one: 403 POL0001 naming the key,
// nothing changed. Creates are serialised (chat.createMu), so a count read before
// the write is still true after it.

func quotaFault(max int, what, key string) *oma.RequestError {
	return oma.Forbidden(fmt.Sprintf("at most %d %s (limits.%s)", max, what, key))
}

// checkNewGroup: the groups user created, and the participants of s.
func (c *chat) checkNewGroup(user string, s *session) *oma.RequestError {
	c.mu.RLock()
	n := c.created[user]
	c.mu.RUnlock()
	if max := c.cfg.Limits.MaxGroupsPerUser; max > 0 && n >= max {
		return quotaFault(max, "group chat sessions created per user", "max_groups_per_user")
	}
	return c.checkParticipants(s)
}

func (c *chat) checkParticipants(s *session) *oma.RequestError {
	if max := c.cfg.Limits.MaxParticipants; max > 0 && len(s.Participants) > max {
		return quotaFault(max, "participants per group chat session", "max_participants")
	}
	return nil
}

func (c *chat) checkNewSubscription(user string) *oma.RequestError {
	c.mu.RLock()
	n := len(c.byUser[user])
	c.mu.RUnlock()
	if max := c.cfg.Limits.MaxSubscriptionsPerUser; max > 0 && n >= max {
		return quotaFault(max, "chat subscriptions per user", "max_subscriptions_per_user")
	}
	return nil
}
