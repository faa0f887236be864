package client_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"notifyrelay/app/apptest"
	"notifyrelay/client"
)

// The flow of docs/clients.md with the chat API: Bob's channel, a chat
// subscription with its callbackURL, Alice's group with Bob and a subject change:
// Bob's receiver gets the chatSessionDataNotification.
func TestChatNotificationsOverAChannel(t *testing.T) {
	base := apptest.URL(apptest.Start(t, nil)) // authentication off: any user
	c := client.New(client.Options{BaseURL: base})
	ch, err := c.CreateChannel(context.Background(), client.ChannelSpec{User: "tel:+19585550101", ClientCorrelator: "bob-phone"})
	if err != nil {
		t.Fatal(err)
	}
	chatPost(t, base+"/chat/v1/tel%3A%2B19585550101/subscriptions", 201,
		`{"chatNotificationSubscription":{"callbackReference":{"notifyURL":"`+ch.CallbackURL+`","notificationFormat":"JSON"},"duration":86400}}`)
	loc := chatPost(t, base+"/chat/v1/tel%3A%2B19585550100/group", 201,
		`{"groupChatSessionInformation":{"subject":"Trip","participant":[{"address":"tel:+19585550101","name":"Bob"}]}}`)
	chatPost(t, loc+"/messages", 201, `{"chatSessionData":{"subject":"Trip to Lyon","action":"set"}}`)

	got := make(chan client.Notification, 16)
	receive(t, c, ch, client.ReceiveOptions{Handler: func(_ context.Context, n client.Notification) error {
		got <- n
		return nil
	}})
	timeout := time.After(20 * time.Second)
	for {
		select {
		case n := <-got:
			if n.Root == "chatSessionDataNotification" && strings.Contains(string(n.Body), "Trip to Lyon") {
				return
			}
		case <-timeout:
			t.Fatal("no chatSessionDataNotification within 20 s")
		}
	}
}

// chatPost POSTs JSON and returns the answer's Location.
func chatPost(t *testing.T, url string, want int, body string) string {
	t.Helper()
	resp, err := http.Post(url, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != want {
		t.Fatalf("POST %s: %d", url, resp.StatusCode)
	}
	return resp.Header.Get("Location")
}
