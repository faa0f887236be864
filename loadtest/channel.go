package loadtest

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Subprotocols of the notification channel WebSocket (docs/api.md §4.2).
const (
	protoOMA = "notificationchannel-netapi-rest.openmobilealliance.org"
	protoAck = "notifyrelay.ack.v1"
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

// ackFrame is a server frame of the acknowledged mode, or a bare connCheck.
type ackFrame struct {
	Seq          int64           `json:"seq"`
	ContentType  string          `json:"contentType"`
	Notification string          `json:"notification"`
	ConnCheck    json.RawMessage `json:"connCheck"`
}

// isConnCheck reports whether an OMA-mode frame is a server connCheck.
func isConnCheck(frame []byte) bool {
	head := frame
	if len(head) > 200 {
		head = head[:200]
	}
	return strings.Contains(string(head), "connCheck")
}

// connAckFor answers a server connCheck in the frame's own format.
func connAckFor(frame []byte) []byte {
	if len(frame) > 0 && frame[0] == '<' {
		return []byte(`<?xml version="1.0" encoding="UTF-8"?>` + "\n" +
			`<nc:connAck xmlns:nc="urn:oma:xml:rest:netapi:notificationchannel:1"/>`)
	}
	return []byte(`{"connAck":{}}`)
}

func ackMessage(seq int64) []byte { return []byte(`{"ack":` + strconv.FormatInt(seq, 10) + `}`) }

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
