package loadtest

import (
	"context"
	"encoding/json"
	"fmt"
	"time"
)

// channel is what the tool keeps of a notification channel it created.
type channel struct {
	User        string
	ResourceURL string
	CallbackURL string
	ChannelURL  string
}

// createChannel makes a WebSockets or LongPolling channel for user.
func (c *client) createChannel(user, channelType, correlator string) (channel, error) {
	body := fmt.Sprintf(`{"notificationChannel":{"clientCorrelator":%q,"applicationTag":"notifyrelay-loadtest","channelType":%q,"channelData":{"maxNotifications":100},"channelLifetime":86400}}`,
		correlator, channelType)
	r, err := c.expect(201, "POST", "/notificationchannel/v1/"+escapeUser(user)+"/channels", "application/json", []byte(body))
	if err != nil {
		return channel{}, err
	}
	var doc struct {
		NotificationChannel struct {
			ChannelData struct {
				ChannelURL string `json:"channelURL"`
			} `json:"channelData"`
			CallbackURL string `json:"callbackURL"`
			ResourceURL string `json:"resourceURL"`
		} `json:"notificationChannel"`
	}
	if err := json.Unmarshal(r.Body, &doc); err != nil {
		return channel{}, fmt.Errorf("channel of %s: %w", user, err)
	}
	nc := doc.NotificationChannel
	ch := channel{User: user, ResourceURL: nc.ResourceURL, CallbackURL: nc.CallbackURL, ChannelURL: nc.ChannelData.ChannelURL}
	if ch.ResourceURL == "" {
		ch.ResourceURL = r.Location
	}
	if ch.CallbackURL == "" || ch.ChannelURL == "" {
		return ch, fmt.Errorf("channel of %s: no callbackURL or channelURL in %s", user, snippet(r.Body))
	}
	return ch, nil
}

// sleepCtx waits d or until ctx ends; it reports whether ctx is still live.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
