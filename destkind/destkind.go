// Package destkind names the kinds of queue destinations, the one place where their
// id prefixes are spelled: the relay, the bridge and the app's metrics all read
// them from here (relay and bridge never import each other).
package destkind

import "strings"

// Kind is a destination kind, as metrics label it.
type Kind string

// The kinds. Ids are the kind's prefix and an id of its owner.
const (
	Subscription Kind = "subscription" // s:<subscriptionId>: a chat subscription to a webhook (relay)
	Operator     Kind = "operator"     // o:<hex>: an operator destination, (notifyURL, key) (relay)
	Channel      Kind = "channel"      // c:<channelId>: a notification channel (bridge)
)

// The id prefixes of the kinds.
const (
	SubscriptionPrefix = "s:"
	OperatorPrefix     = "o:"
	ChannelPrefix      = "c:"
)

// All lists every kind, for metrics that report each one.
var All = []Kind{Subscription, Operator, Channel}

// Prefix starts the id of every destination of kind k.
func (k Kind) Prefix() string {
	switch k {
	case Subscription:
		return SubscriptionPrefix
	case Operator:
		return OperatorPrefix
	case Channel:
		return ChannelPrefix
	}
	return ""
}

// Of names the kind of destination id dest; "" when it has no known prefix.
func Of(dest string) Kind {
	for _, k := range All {
		if strings.HasPrefix(dest, k.Prefix()) {
			return k
		}
	}
	return ""
}
