package relay

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"notifyrelay/api"
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
func (r *Relay) subDoc(s *subscription) oma.ChatNotificationSubscription {
	left := int(time.Until(s.Expires).Round(time.Second) / time.Second)
	return oma.ChatNotificationSubscription{
		CallbackReference: oma.CallbackReference{NotifyURL: s.NotifyURL, CallbackData: s.CallbackData, NotificationFormat: s.Format},
		Duration:          max(left, 0), ClientCorrelator: s.Correlator,
		ResourceURL: r.chat.base + api.EscapeID(s.User) + "/subscriptions/" + s.ID,
	}
}

func (c *chatState) putSub(s *subscription) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.subs[s.ID] = s
	list := c.byUser[s.User]
	c.byUser[s.User] = append(list[:len(list):len(list)], s)
}

func (c *chatState) dropSub(id string) {
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
func (c *chatState) userSubs(user string) []*subscription {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.byUser[user]
}

// createSubscription: POST /{userId}/subscriptions.
func (r *Relay) createSubscription(c *api.Request) (api.Answer, *oma.RequestError) {
	f, body, e := requestBody(c.RequestCtx)
	if e != nil {
		return api.Answer{}, e
	}
	req, e := oma.ParseChatNotificationSubscription(f, body)
	if e != nil {
		return api.Answer{}, e
	}
	if req.CallbackReference.NotificationFormat == "" {
		req.CallbackReference.NotificationFormat = f.String()
	}
	s, e := r.subscribe(c, req)
	if e != nil {
		return api.Answer{}, e
	}
	d := r.subDoc(s)
	return api.Created(d.ResourceURL, d.Marshal(c.Format)), nil
}

// subscribe makes the subscription durable, or returns the one created with the
// same clientCorrelator.
func (r *Relay) subscribe(c *api.Request, req oma.ChatNotificationSubscription) (*subscription, *oma.RequestError) {
	dest, e := r.destFor(c, req.CallbackReference.NotifyURL)
	if e != nil {
		return nil, e
	}
	r.chat.createMu.Lock()
	defer r.chat.createMu.Unlock()
	id, hash, e := r.correlated(c, "sub", c.User, req.ClientCorrelator, req)
	if e != nil {
		return nil, e
	}
	if id != "" {
		r.chat.mu.RLock()
		s := r.chat.subs[id]
		r.chat.mu.RUnlock()
		if s != nil {
			return s, nil
		}
	}
	if e := r.checkNewSubscription(c.User); e != nil {
		return nil, e
	}
	s := r.newSubscription(c.User, req, dest)
	w := queue.Write{Records: []queue.Record{s.record()}}
	if s.Correlator != "" {
		w.Records = append(w.Records, correlationRecord("sub", c.User, s.Correlator, hash, s.ID))
	}
	if err := r.append(c, w); err != nil {
		return nil, oma.Unavailable().Because(err)
	}
	r.chat.putSub(s)
	return s, nil
}

func (r *Relay) newSubscription(user string, req oma.ChatNotificationSubscription, dest string) *subscription {
	d := req.Duration
	if d <= 0 {
		d = defaultDuration
	}
	d = min(d, r.opts.Config.Chat.MaxDuration)
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
func (r *Relay) destFor(ctx context.Context, notifyURL string) (string, *oma.RequestError) {
	if r.opts.Channels != nil {
		if dest, ok := r.opts.Channels.CallbackDest(notifyURL); ok {
			return dest, nil
		}
	}
	if err := checkTarget(ctx, notifyURL, r.opts.Config.Delivery.AllowPrivateTargets); err != nil {
		return "", oma.InvalidInput("notifyURL (" + err.Error() + ")")
	}
	return "", nil
}

// ownSub finds the caller's subscription; an expired one is deleted on the way.
func (r *Relay) ownSub(c *api.Request, id string) (*subscription, *oma.RequestError) {
	r.chat.mu.RLock()
	s := r.chat.subs[id]
	r.chat.mu.RUnlock()
	if s != nil && !s.active(time.Now()) {
		r.removeExpired(c, s)
		s = nil
	}
	if s == nil || s.User != c.User {
		return nil, oma.NotFound(api.RequestPath(c.RequestCtx))
	}
	return s, nil
}

// forgetSub deletes the subscription's records (it and its correlator) and its
// cache entry.
func (r *Relay) forgetSub(ctx context.Context, s *subscription) error {
	w := queue.Write{Records: []queue.Record{{Key: []byte(keySubscription + s.ID)}}}
	if s.Correlator != "" {
		w.Records = append(w.Records, queue.Record{Key: correlatorKey("sub", s.User, s.Correlator)})
	}
	if err := r.append(ctx, w); err != nil {
		return err
	}
	r.chat.dropSub(s.ID)
	return nil
}

// removeSub deletes the subscription and (for webhooks) whatever is still queued
// for it. An error means the subscription is still there.
func (r *Relay) removeSub(ctx context.Context, s *subscription) error {
	if err := r.forgetSub(ctx, s); err != nil {
		return fmt.Errorf("delete subscription %s: %w", s.ID, err)
	}
	if strings.HasPrefix(s.Dest, destkind.SubscriptionPrefix) {
		// The subscription is gone either way: its workers drop what a failed Delete leaves.
		if err := r.opts.Queue.Delete(ctx, s.Dest); err != nil {
			r.log.Warn().Err(err).Str("dest", s.Dest).Msg("drop queued notifications of a deleted subscription")
		}
	}
	return nil
}

// removeExpired deletes an expired subscription found on the way; a failure only
// delays that (an expired subscription gets nothing more meanwhile).
func (r *Relay) removeExpired(ctx context.Context, s *subscription) {
	if err := r.removeSub(ctx, s); err != nil {
		r.log.Warn().Err(err).Msg("delete expired subscription")
	}
}

// getSubscription: GET /{userId}/subscriptions/{subscriptionId}.
func (r *Relay) getSubscription(c *api.Request) (api.Answer, *oma.RequestError) {
	s, e := r.ownSub(c, c.Params["subscriptionId"])
	if e != nil {
		return api.Answer{}, e
	}
	d := r.subDoc(s)
	return api.OK(d.Marshal(c.Format)), nil
}

// deleteSubscription: DELETE /{userId}/subscriptions/{subscriptionId}.
func (r *Relay) deleteSubscription(c *api.Request) (api.Answer, *oma.RequestError) {
	s, e := r.ownSub(c, c.Params["subscriptionId"])
	if e != nil {
		return api.Answer{}, e
	}
	if err := r.removeSub(c, s); err != nil {
		return api.Answer{}, oma.Unavailable().Because(err)
	}
	return api.NoContent(), nil
}

// listSubscriptions: GET /{userId}/subscriptions (active ones).
func (r *Relay) listSubscriptions(c *api.Request) (api.Answer, *oma.RequestError) {
	var docs []oma.ChatNotificationSubscription
	for _, s := range r.chat.userSubs(c.User) {
		if !s.active(time.Now()) {
			r.removeExpired(c, s)
			continue
		}
		docs = append(docs, r.subDoc(s))
	}
	return api.OK(oma.MarshalChatSubscriptionList(c.Format, docs, r.chat.base+api.EscapeID(c.User)+"/subscriptions")), nil
}

// subscriptionTarget is the webhook workers' view of a subscription destination
// ("s:<id>"): its notifyURL while the subscription exists and has not expired.
func (r *Relay) subscriptionTarget(ctx context.Context, dest string) (notifyURL string, ok bool) {
	id, found := strings.CutPrefix(dest, destkind.SubscriptionPrefix)
	if !found {
		return "", false
	}
	r.chat.mu.RLock()
	s := r.chat.subs[id]
	r.chat.mu.RUnlock()
	if s == nil || !s.active(time.Now()) {
		return "", false
	}
	return s.NotifyURL, true
}

// endSubscription ends the subscription behind dest (its webhook answered 410 Gone).
func (r *Relay) endSubscription(ctx context.Context, dest string) {
	id, _ := strings.CutPrefix(dest, destkind.SubscriptionPrefix)
	r.chat.mu.RLock()
	s := r.chat.subs[id]
	r.chat.mu.RUnlock()
	if s == nil {
		return
	}
	if err := r.forgetSub(ctx, s); err != nil {
		r.log.Warn().Err(err).Str("subscription", s.ID).Msg("end subscription")
		return
	}
	r.log.Info().Str("subscription", s.ID).Msg("subscription ended by its webhook (410 Gone)")
}

// ChannelGone ends the chat subscriptions whose notifyURL is the callbackURL of the
// channel behind dest (deleted or expired), as a webhook's 410 ends a webhook
// subscription. Once it returns the chat appends nothing more to dest, so the
// bridge can drop the channel's queue (settling what it held as not delivered).
func (r *Relay) ChannelGone(ctx context.Context, dest string) {
	r.chat.destMu.Lock()
	defer r.chat.destMu.Unlock()
	for _, s := range r.chat.subsTo(dest) {
		if err := r.forgetSub(ctx, s); err != nil {
			r.log.Warn().Err(err).Str("subscription", s.ID).Msg("end subscription to an ended channel")
			continue
		}
		r.log.Info().Str("subscription", s.ID).Str("dest", dest).Msg("subscription ended with its channel")
	}
}

// subsTo lists the subscriptions that deliver into dest.
func (c *chatState) subsTo(dest string) []*subscription {
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
