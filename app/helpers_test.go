package app_test

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"notifyrelay/internal/await"
)

// Helpers the app tests share, on every platform (the disk-full test that first
// had them runs on Linux only).

// pollChannel creates a long-polling channel for alice and returns its poll URL
// and callbackURL.
func pollChannel(t *testing.T, base string) (string, string) {
	body := mustStatus(t, postJSON(t, base+"/notificationchannel/v1/alice/channels",
		`{"notificationChannel":{"channelType":"LongPolling"}}`), 201)
	var doc struct {
		NotificationChannel struct {
			ChannelData struct{ ChannelURL string }
			CallbackURL string
		}
	}
	if err := json.Unmarshal([]byte(body), &doc); err != nil {
		t.Fatal(err)
	}
	return doc.NotificationChannel.ChannelData.ChannelURL, doc.NotificationChannel.CallbackURL
}

func postJSON(t *testing.T, url, body string) *http.Response {
	resp, err := http.Post(url, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

// mustStatus reads resp's body and fails unless its status is want.
func mustStatus(t *testing.T, resp *http.Response, want int) string {
	t.Helper()
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != want {
		t.Fatalf("%s %s: %d, want %d: %.300s", resp.Request.Method, resp.Request.URL, resp.StatusCode, want, b)
	}
	return string(b)
}

// waitFor polls cond until it holds or 20 s pass.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	await.Until(t, 20*time.Second, what, cond)
}
