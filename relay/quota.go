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
func (r *Relay) checkNewGroup(user string, s *session) *oma.RequestError {
	r.chat.mu.RLock()
	n := r.chat.created[user]
	r.chat.mu.RUnlock()
	if max := r.opts.Config.Limits.MaxGroupsPerUser; max > 0 && n >= max {
		return quotaFault(max, "group chat sessions created per user", "max_groups_per_user")
	}
	return r.checkParticipants(s)
}

func (r *Relay) checkParticipants(s *session) *oma.RequestError {
	if max := r.opts.Config.Limits.MaxParticipants; max > 0 && len(s.Participants) > max {
		return quotaFault(max, "participants per group chat session", "max_participants")
	}
	return nil
}

func (r *Relay) checkNewSubscription(user string) *oma.RequestError {
	r.chat.mu.RLock()
	n := len(r.chat.byUser[user])
	r.chat.mu.RUnlock()
	if max := r.opts.Config.Limits.MaxSubscriptionsPerUser; max > 0 && n >= max {
		return quotaFault(max, "chat subscriptions per user", "max_subscriptions_per_user")
	}
	return nil
}
