package bridge_test

import (
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"notifyrelay/app/apptest"
	"notifyrelay/bridge"
	"notifyrelay/internal/await"
)

// A chat change reaches a WebSocket client in OMA mode, in JSON and in XML: bob
// subscribes his chat notifications to two channels' callbackURLs.
func TestChatChangeReachesWebSocket(t *testing.T) {
	a := apptest.Start(t, nil)
	base := apptest.URL(a)
	const alice, bob = "tel%3A%2B19585550100", "tel%3A%2B19585550101"
	body := send(t, "POST", base+"/chat/v1/"+alice+"/group", `{"groupChatSessionInformation":{"subject":"Trip","participant":[{"address":"tel:+19585550101","name":"Bob"}]}}`, 201)
	sid := regexp.MustCompile(`/group/([0-9a-f]+)"`).FindStringSubmatch(body)
	if sid == nil {
		t.Fatalf("no session id: %s", body)
	}
	socks := map[string]*websocket.Conn{}
	for _, format := range []string{"JSON", "XML"} {
		_, cb, ws := createChannel(t, base)
		send(t, "POST", base+"/chat/v1/"+bob+"/subscriptions",
			`{"chatNotificationSubscription":{"callbackReference":{"notifyURL":"`+cb+`","callbackData":"cb-`+format+`","notificationFormat":"`+format+`"}}}`, 201)
		d := websocket.Dialer{Subprotocols: []string{bridge.ProtocolOMA}}
		c, _, err := d.Dial(ws, nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		socks[format] = c
	}
	send(t, "POST", base+"/chat/v1/"+alice+"/group/"+sid[1]+"/messages", `{"chatSessionData":{"subject":"Weekend trip"}}`, 201)
	want := map[string][]string{
		"JSON": {`{"chatSessionDataNotification":`, `"callbackData":"cb-JSON"`, `"subject":"Weekend trip"`},
		"XML":  {`<chat:chatSessionDataNotification`, `<callbackData>cb-XML</callbackData>`, `<subject>Weekend trip</subject>`},
	}
	for format, c := range socks {
		_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
		_, data, err := c.ReadMessage()
		if err != nil {
			t.Fatalf("%s: %v", format, err)
		}
		for _, w := range want[format] {
			if !strings.Contains(string(data), w) {
				t.Errorf("%s frame lacks %s: %s", format, w, data)
			}
		}
	}
}

func send(t *testing.T, method, url, body string, want int) string {
	t.Helper()
	req, _ := http.NewRequest(method, url, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want {
		t.Fatalf("%s %s: %d %s", method, url, resp.StatusCode, b)
	}
	return string(b)
}

// An N1 delivered by long poll settles the change: Alice's N2 (Succeeded) arrives
// after Carol's one poll, with no further poll.
func TestChatN1ByLongPollYieldsN2(t *testing.T) {
	a := apptest.Start(t, nil)
	base := apptest.URL(a)
	const alice, carol = "tel%3A%2B19585550100", "tel%3A%2B19585550102"
	body := send(t, "POST", base+"/chat/v1/"+alice+"/group", `{"groupChatSessionInformation":{"subject":"Trip","participant":[{"address":"tel:+19585550102","name":"Carol"}]}}`, 201)
	sid := regexp.MustCompile(`/group/([0-9a-f]+)"`).FindStringSubmatch(body)
	if sid == nil {
		t.Fatalf("no session id: %s", body)
	}
	created := send(t, "POST", base+"/notificationchannel/v1/carol/channels", `{"notificationChannel":{"channelType":"LongPolling"}}`, 201)
	carolCB := regexp.MustCompile(`"callbackURL":"([^"]+)"`).FindStringSubmatch(created)[1]
	pollURL := regexp.MustCompile(`"channelURL":"([^"]+)"`).FindStringSubmatch(created)[1]
	send(t, "POST", base+"/chat/v1/"+carol+"/subscriptions",
		`{"chatNotificationSubscription":{"callbackReference":{"notifyURL":"`+carolCB+`","callbackData":"carol"}}}`, 201)
	_, aliceCB, aliceWS := createChannel(t, base)
	send(t, "POST", base+"/chat/v1/"+alice+"/subscriptions",
		`{"chatNotificationSubscription":{"callbackReference":{"notifyURL":"`+aliceCB+`","callbackData":"alice"}}}`, 201)
	ws, _, err := (&websocket.Dialer{Subprotocols: []string{bridge.ProtocolOMA}}).Dial(aliceWS, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()

	send(t, "POST", base+"/chat/v1/"+alice+"/group/"+sid[1]+"/messages", `{"chatSessionData":{"subject":"Weekend trip"}}`, 201)
	if got := send(t, "POST", pollURL, "", 200); !strings.Contains(got, `"chatSessionDataNotification"`) {
		t.Fatalf("carol's poll: %s", got)
	}
	_ = ws.SetReadDeadline(time.Now().Add(10 * time.Second))
	for {
		_, frame, err := ws.ReadMessage()
		if err != nil {
			t.Fatalf("no N2 for alice: %v", err)
		}
		if strings.Contains(string(frame), "chatSessionDataStatusNotification") {
			if !strings.Contains(string(frame), `"status":"Succeeded"`) {
				t.Fatalf("N2: %s", frame)
			}
			return
		}
	}
}

// A channel that is deleted or expires ends the chat subscriptions pointing at its
// callbackURL (as a webhook's 410 does): what was queued for it is dropped at once,
// the changer's N2 names the receiver as not reached, and later changes queue
// nothing for it.
func TestEndedChannelEndsChatSubscriptions(t *testing.T) {
	for _, how := range []string{"deleted", "expired"} {
		t.Run(how, func(t *testing.T) { testEndedChannel(t, how) })
	}
}

func testEndedChannel(t *testing.T, how string) {
	a := apptest.Start(t, nil)
	base := apptest.URL(a)
	const alice, bob = "tel%3A%2B19585550100", "tel%3A%2B19585550101"
	body := send(t, "POST", base+"/chat/v1/"+alice+"/group", `{"groupChatSessionInformation":{"subject":"Trip","participant":[{"address":"tel:+19585550101","name":"Bob"}]}}`, 201)
	sid := regexp.MustCompile(`/group/([0-9a-f]+)"`).FindStringSubmatch(body)[1]
	created := send(t, "POST", base+"/notificationchannel/v1/bob/channels", `{"notificationChannel":{"channelType":"LongPolling"}}`, 201)
	bobRes := regexp.MustCompile(`"resourceURL":"([^"]+)"`).FindStringSubmatch(created)[1]
	bobCB := regexp.MustCompile(`"callbackURL":"([^"]+)"`).FindStringSubmatch(created)[1]
	send(t, "POST", base+"/chat/v1/"+bob+"/subscriptions",
		`{"chatNotificationSubscription":{"callbackReference":{"notifyURL":"`+bobCB+`","callbackData":"bob"}}}`, 201)
	_, aliceCB, aliceWS := createChannel(t, base)
	send(t, "POST", base+"/chat/v1/"+alice+"/subscriptions",
		`{"chatNotificationSubscription":{"callbackReference":{"notifyURL":"`+aliceCB+`","callbackData":"alice"}}}`, 201)
	ws, _, err := (&websocket.Dialer{Subprotocols: []string{bridge.ProtocolOMA}}).Dial(aliceWS, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()

	send(t, "POST", base+"/chat/v1/"+alice+"/group/"+sid+"/messages", `{"chatSessionData":{"subject":"One"}}`, 201)
	if how == "deleted" {
		send(t, "DELETE", bobRes, "", 204)
	} else {
		send(t, "PUT", bobRes+"/channelLifetime", `{"notificationChannelLifetime":{"channelLifetime":1}}`, 200)
	}
	n2 := readUntil(t, ws, "chatSessionDataStatusNotification")
	if !strings.Contains(n2, `"status":"Failed"`) || !strings.Contains(n2, "/participants/tel%3A%2B19585550101") {
		t.Fatalf("N2 after bob's channel %s: %s", how, n2)
	}
	if list := send(t, "GET", base+"/chat/v1/"+bob+"/subscriptions", "", 200); strings.Contains(list, bobCB) {
		t.Fatalf("bob's subscription is still listed after his channel %s: %s", how, list)
	}
	send(t, "POST", base+"/chat/v1/"+alice+"/group/"+sid+"/messages", `{"chatSessionData":{"subject":"Two"}}`, 201)
	if n2 = readUntil(t, ws, "chatSessionDataStatusNotification"); !strings.Contains(n2, `"status":"Succeeded"`) {
		t.Fatalf("N2 of a change with no receiver left: %s", n2)
	}
	waitFor(t, "no channel queue left", func() bool {
		return strings.Contains(send(t, "GET", base+"/metrics", "", 200), `notifyrelay_queue_depth{kind="channel"} 0`)
	})
}

// readUntil reads frames (10 s at most) until one contains want.
func readUntil(t *testing.T, ws *websocket.Conn, want string) string {
	t.Helper()
	_ = ws.SetReadDeadline(time.Now().Add(10 * time.Second))
	for {
		_, frame, err := ws.ReadMessage()
		if err != nil {
			t.Fatalf("no frame with %s: %v", want, err)
		}
		if strings.Contains(string(frame), want) {
			return string(frame)
		}
	}
}

// waitFor polls cond until it holds or 10 s pass.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	await.Until(t, 10*time.Second, what, cond)
}
