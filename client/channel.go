package client

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"notifyrelay/oma"
)

// ChannelSpec is what CreateChannel asks for.
type ChannelSpec struct {
	User             string        // the {userId} the channel belongs to; "" is acr:auth (the token's user)
	Type             string        // oma.ChannelWebSockets (default) or oma.ChannelLongPolling
	Lifetime         time.Duration // 0: the server's channels.default_lifetime; capped by channels.max_lifetime
	MaxNotifications int           // per long-poll answer or OMA-mode frame; 0: the server's default
	ClientCorrelator string        // the same correlator (and spec) answers the same channel: create or reuse
	ApplicationTag   string
}

// Channel is what a client keeps of a notification channel. Persist it (with
// the last seq handled) to reuse the channel after a restart.
type Channel struct {
	Type        string        `json:"type"`
	ChannelURL  string        `json:"channelURL"`  // where to connect or poll
	CallbackURL string        `json:"callbackURL"` // the notifyURL to subscribe with (a capability: keep it private)
	ResourceURL string        `json:"resourceURL"` // the channel resource (GET, DELETE)
	Lifetime    time.Duration `json:"lifetime"`    // granted at create; left at GetChannel
}

type channelDoc struct {
	NotificationChannel struct {
		ClientCorrelator string `json:"clientCorrelator,omitempty"`
		ApplicationTag   string `json:"applicationTag,omitempty"`
		ChannelType      string `json:"channelType"`
		ChannelData      struct {
			ChannelURL       string `json:"channelURL,omitempty"`
			MaxNotifications int    `json:"maxNotifications,omitempty"`
		} `json:"channelData"`
		ChannelLifetime int    `json:"channelLifetime,omitempty"`
		CallbackURL     string `json:"callbackURL,omitempty"`
		ResourceURL     string `json:"resourceURL,omitempty"`
	} `json:"notificationChannel"`
}

// CreateChannel creates a channel (201), or answers the existing one when
// spec.ClientCorrelator was used before with the same spec.
func (c *Client) CreateChannel(ctx context.Context, spec ChannelSpec) (Channel, error) {
	var d channelDoc
	nc := &d.NotificationChannel
	nc.ClientCorrelator, nc.ApplicationTag, nc.ChannelType = spec.ClientCorrelator, spec.ApplicationTag, spec.Type
	if nc.ChannelType == "" {
		nc.ChannelType = oma.ChannelWebSockets
	}
	nc.ChannelData.MaxNotifications = spec.MaxNotifications
	nc.ChannelLifetime = int(spec.Lifetime / time.Second)
	body, err := json.Marshal(d)
	if err != nil {
		return Channel{}, fmt.Errorf("create channel: %w", err)
	}
	user := spec.User
	if user == "" {
		user = "acr:auth"
	}
	u := "/notificationchannel/v1/" + url.PathEscape(user) + "/channels"
	status, b, err := c.do(ctx, "POST", u, body)
	if err != nil {
		return Channel{}, err
	}
	if status != http.StatusCreated && status != http.StatusOK {
		return Channel{}, statusError("POST", c.base+u, status, b)
	}
	return parseChannel(b)
}

// GetChannel reads a channel by its resourceURL: to check that a persisted
// channel still exists (else the error is ErrChannelGone) and how long it has left.
func (c *Client) GetChannel(ctx context.Context, resourceURL string) (Channel, error) {
	status, b, err := c.do(ctx, "GET", resourceURL, nil)
	if err != nil {
		return Channel{}, err
	}
	if status != http.StatusOK {
		return Channel{}, statusError("GET", resourceURL, status, b)
	}
	return parseChannel(b)
}

// DeleteChannel deletes a channel and everything still queued for it.
func (c *Client) DeleteChannel(ctx context.Context, resourceURL string) error {
	status, b, err := c.do(ctx, "DELETE", resourceURL, nil)
	if err != nil {
		return err
	}
	if status != http.StatusNoContent {
		return statusError("DELETE", resourceURL, status, b)
	}
	return nil
}

func parseChannel(b []byte) (Channel, error) {
	var d channelDoc
	if err := json.Unmarshal(b, &d); err != nil {
		return Channel{}, fmt.Errorf("notificationChannel: %w", err)
	}
	nc := d.NotificationChannel
	ch := Channel{Type: nc.ChannelType, ChannelURL: nc.ChannelData.ChannelURL, CallbackURL: nc.CallbackURL,
		ResourceURL: nc.ResourceURL, Lifetime: time.Duration(nc.ChannelLifetime) * time.Second}
	if ch.ChannelURL == "" || ch.CallbackURL == "" {
		return ch, fmt.Errorf("notificationChannel without channelURL or callbackURL")
	}
	return ch, nil
}
