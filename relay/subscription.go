package relay

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"notifyrelay/api"
	"notifyrelay/delivery"
	"notifyrelay/destkind"
	"notifyrelay/oma"
	"notifyrelay/queue"
)

// defaultDuration is the subscription lifetime when the request names none.
const defaultDuration = 86400

// subscription is one chat notification subscription of a user.
type subscription struct {
	ID           string    `json:"id"`
	User         string    `json:"u"`
	NotifyURL    string    `json:"url"`
	CallbackData string    `json:"cd,omitempty"`
	Format       string    `json:"f"` // XML or JSON
	Correlator   string    `json:"cc,omitempty"`
	Expires      time.Time `json:"exp"`
	Dest         string    `json:"d"` // queue destination: s:<id> or a channel's c:<id>
}

func (s *subscription) active(t time.Time) bool { return t.Before(s.Expires) }

func (s *subscription) format() oma.Format {
	if s.Format == "XML" {
		return oma.XML
	}
	return oma.JSON
}

func (s *subscription) record() queue.Record {
	v, _ := json.Marshal(s)
	return queue.Record{Key: []byte(keySubscription + s.ID), Value: v}
}

// doc is the subscription as its owner reads it; duration is what remains.
func (c *chat) subDoc(s *subscription) oma.ChatNotificationSubscription {
	left := int(time.Until(s.Expires).Round(time.Second) / time.Second)
	return oma.ChatNotificationSubscription{
		CallbackReference: oma.CallbackReference{NotifyURL: s.NotifyURL, CallbackData: s.CallbackData, NotificationFormat: s.Format},
		Duration:          max(left, 0), ClientCorrelator: s.Correlator,
		ResourceURL: c.base + api.EscapeID(s.User) + "/subscriptions/" + s.ID,
	}
}

func (c *chat) putSub(s *subscription) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.subs[s.ID] = s
	list := c.byUser[s.User]
	c.byUser[s.User] = append(list[:len(list):len(list)], s)
}

func (c *chat) dropSub(id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.subs[id]
	if s == nil {
		return
	}
	delete(c.subs, id)
	var keep []*subscription
	for _, o := range c.byUser[s.User] {
		if o.ID != id {
			keep = append(keep, o)
		}
	}
	c.byUser[s.User] = keep
}

// userSubs returns user's subscriptions; the slice must not be modified.
func (c *chat) userSubs(user string) []*subscription {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.byUser[user]
}

// createSubscription: POST /{userId}/subscriptions.
func (c *chat) createSubscription(req *api.Request) (api.Answer, *oma.RequestError) {
	f, body, e := requestBody(req.RequestCtx)
	if e != nil {
		return api.Answer{}, e
	}
	doc, e := oma.ParseChatNotificationSubscription(f, body)
	if e != nil {
		return api.Answer{}, e
	}
	if doc.CallbackReference.NotificationFormat == "" {
		doc.CallbackReference.NotificationFormat = f.String()
	}
	s, e := c.subscribe(req, doc)
	if e != nil {
		return api.Answer{}, e
	}
	d := c.subDoc(s)
	return api.Created(d.ResourceURL, d.Marshal(req.Format)), nil
}

// subscribe makes the subscription durable, or returns the one created with the
// same clientCorrelator.
func (c *chat) subscribe(req *api.Request, doc oma.ChatNotificationSubscription) (*subscription, *oma.RequestError) {
	dest, e := c.destFor(req, doc.CallbackReference.NotifyURL)
	if e != nil {
		return nil, e
	}
	c.createMu.Lock()
	defer c.createMu.Unlock()
	id, hash, e := c.correlated(req, "sub", req.User, doc.ClientCorrelator, doc)
	if e != nil {
		return nil, e
	}
	if id != "" {
		c.mu.RLock()
		s := c.subs[id]
		c.mu.RUnlock()
		if s != nil {
			return s, nil
		}
	}
	if e := c.checkNewSubscription(req.User); e != nil {
		return nil, e
	}
	s := c.newSubscription(req.User, doc, dest)
	w := queue.Write{Records: []queue.Record{s.record()}}
	if s.Correlator != "" {
		w.Records = append(w.Records, correlationRecord("sub", req.User, s.Correlator, hash, s.ID))
	}
	if err := c.append(req, w); err != nil {
		return nil, oma.Unavailable().Because(err)
	}
	c.putSub(s)
	return s, nil
}

func (c *chat) newSubscription(user string, req oma.ChatNotificationSubscription, dest string) *subscription {
	d := req.Duration
	if d <= 0 {
		d = defaultDuration
	}
	d = min(d, c.cfg.Chat.MaxDuration)
	s := &subscription{ID: newID(10), User: user, NotifyURL: req.CallbackReference.NotifyURL,
		CallbackData: req.CallbackReference.CallbackData, Format: req.CallbackReference.NotificationFormat,
		Correlator: req.ClientCorrelator, Expires: time.Now().Add(time.Duration(d) * time.Second)}
	s.Dest = dest
	if dest == "" {
		s.Dest = destkind.SubscriptionPrefix + s.ID
	}
	return s
}

// destFor recognises our own channels' callbackURLs (their queue destination is
// returned) and otherwise checks the webhook URL against the SSRF guard ("" dest).
func (c *chat) destFor(ctx context.Context, notifyURL string) (string, *oma.RequestError) {
	if c.channels != nil {
		if dest, ok := c.channels.CallbackDest(notifyURL); ok {
			return dest, nil
		}
	}
	if err := delivery.CheckTarget(ctx, notifyURL, c.cfg.Delivery.AllowPrivateTargets); err != nil {
		return "", oma.InvalidInput("notifyURL (" + err.Error() + ")")
	}
	return "", nil
}

// ownSub finds the caller's subscription; an expired one is deleted on the way.
func (c *chat) ownSub(req *api.Request, id string) (*subscription, *oma.RequestError) {
	c.mu.RLock()
	s := c.subs[id]
	c.mu.RUnlock()
	if s != nil && !s.active(time.Now()) {
		c.removeExpired(req, s)
		s = nil
	}
	if s == nil || s.User != req.User {
		return nil, oma.NotFound(api.RequestPath(req.RequestCtx))
	}
	return s, nil
}

// forgetSub deletes the subscription's records (it and its correlator) and its
// cache entry.
func (c *chat) forgetSub(ctx context.Context, s *subscription) error {
	w := queue.Write{Records: []queue.Record{{Key: []byte(keySubscription + s.ID)}}}
	if s.Correlator != "" {
		w.Records = append(w.Records, queue.Record{Key: correlatorKey("sub", s.User, s.Correlator)})
	}
	if err := c.append(ctx, w); err != nil {
		return err
	}
	c.dropSub(s.ID)
	return nil
}

// removeSub deletes the subscription and (for webhooks) whatever is still queued
// for it. An error means the subscription is still there.
func (c *chat) removeSub(ctx context.Context, s *subscription) error {
	if err := c.forgetSub(ctx, s); err != nil {
		return fmt.Errorf("delete subscription %s: %w", s.ID, err)
	}
	if strings.HasPrefix(s.Dest, destkind.SubscriptionPrefix) {
		// The subscription is gone either way: its workers drop what a failed Delete leaves.
		if err := c.q.Delete(ctx, s.Dest); err != nil {
			c.log.Warn().Err(err).Str("dest", s.Dest).Msg("drop queued notifications of a deleted subscription")
		}
		if c.destGone != nil {
			c.destGone(ctx, s.Dest) // its pause and settings go with it
		}
	}
	return nil
}

// removeExpired deletes an expired subscription found on the way; a failure only
// delays that (an expired subscription gets nothing more meanwhile).
func (c *chat) removeExpired(ctx context.Context, s *subscription) {
	if err := c.removeSub(ctx, s); err != nil {
		c.log.Warn().Err(err).Msg("delete expired subscription")
	}
}

// getSubscription: GET /{userId}/subscriptions/{subscriptionId}.
func (c *chat) getSubscription(req *api.Request) (api.Answer, *oma.RequestError) {
	s, e := c.ownSub(req, req.Params["subscriptionId"])
	if e != nil {
		return api.Answer{}, e
	}
	d := c.subDoc(s)
	return api.OK(d.Marshal(req.Format)), nil
}

// deleteSubscription: DELETE /{userId}/subscriptions/{subscriptionId}.
func (c *chat) deleteSubscription(req *api.Request) (api.Answer, *oma.RequestError) {
	s, e := c.ownSub(req, req.Params["subscriptionId"])
	if e != nil {
		return api.Answer{}, e
	}
	if err := c.removeSub(req, s); err != nil {
		return api.Answer{}, oma.Unavailable().Because(err)
	}
	return api.NoContent(), nil
}

// listSubscriptions: GET /{userId}/subscriptions (active ones).
func (c *chat) listSubscriptions(req *api.Request) (api.Answer, *oma.RequestError) {
	var docs []oma.ChatNotificationSubscription
	for _, s := range c.userSubs(req.User) {
		if !s.active(time.Now()) {
			c.removeExpired(req, s)
			continue
		}
		docs = append(docs, c.subDoc(s))
	}
	return api.OK(oma.MarshalChatSubscriptionList(req.Format, docs, c.base+api.EscapeID(req.User)+"/subscriptions")), nil
}

// Target is the webhook workers' view of a subscription destination ("s:<id>"):
// its notifyURL while the subscription exists and has not expired.
func (c *chat) Target(_ context.Context, dest string) (notifyURL string, ok bool) {
	id, found := strings.CutPrefix(dest, destkind.SubscriptionPrefix)
	if !found {
		return "", false
	}
	c.mu.RLock()
	s := c.subs[id]
	c.mu.RUnlock()
	if s == nil || !s.active(time.Now()) {
		return "", false
	}
	return s.NotifyURL, true
}

// Gone ends the subscription behind dest (its webhook answered 410 Gone).
func (c *chat) Gone(ctx context.Context, dest string) {
	id, _ := strings.CutPrefix(dest, destkind.SubscriptionPrefix)
	c.mu.RLock()
	s := c.subs[id]
	c.mu.RUnlock()
	if s == nil {
		return
	}
	if err := c.forgetSub(ctx, s); err != nil {
		c.log.Warn().Err(err).Str("subscription", s.ID).Msg("end subscription")
		return
	}
	c.log.Info().Str("subscription", s.ID).Msg("subscription ended by its webhook (410 Gone)")
}

// channelGone ends the subscriptions that deliver into dest (Relay.ChannelGone).
func (c *chat) channelGone(ctx context.Context, dest string) {
	c.destMu.Lock()
	defer c.destMu.Unlock()
	for _, s := range c.subsTo(dest) {
		if err := c.forgetSub(ctx, s); err != nil {
			c.log.Warn().Err(err).Str("subscription", s.ID).Msg("end subscription to an ended channel")
			continue
		}
		c.log.Info().Str("subscription", s.ID).Str("dest", dest).Msg("subscription ended with its channel")
	}
}

// subsTo lists the subscriptions that deliver into dest.
func (c *chat) subsTo(dest string) []*subscription {
	c.mu.RLock()
	defer c.mu.RUnlock()
	var out []*subscription
	for _, s := range c.subs {
		if s.Dest == dest {
			out = append(out, s)
		}
	}
	return out
}
