//go:build linux

package bridge_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"notifyrelay/app/apptest"
	"notifyrelay/bridge"
)

// An OMA-mode frame counts as delivered only once the client's TCP stack has it.
// A client that has not received its frames (tiny receive buffer, not reading)
// when the server is killed with SIGKILL gets every notification after the
// restart: none is lost. A client that read them gets nothing twice.
func TestOMAModeAcrossSIGKILL(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	dir := t.TempDir()
	p := apptest.StartProcess(t, apptest.ProcOptions{DataDir: dir})
	_, cb, ws := createChannel(t, p.URL)
	pad := strings.Repeat("x", 8<<10) // 5 × 8 KiB: more than the client's window
	for i := 1; i <= 5; i++ {
		postBody(t, cb, fmt.Sprintf(`{"p":{"n":%d,"pad":%q}}`, i, pad))
	}

	c := dialOMATiny(t, ws)
	waitFor(t, "frames to reach the client's buffer", func() bool { return inQueue(t, c) > 0 })
	// The server wrote the batch into its socket buffer; the client's window holds
	// a part of it. It must not count the batch delivered meanwhile.
	for deadline := time.Now().Add(500 * time.Millisecond); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if n := metric(t, p.URL, "notifyrelay_channel_acks_total"); n != "0" {
			t.Fatalf("frames acknowledged (acks_total %s) before the client received them", n)
		}
	}
	p.Kill()
	c.Close() // the client never read its frames

	p2 := apptest.StartProcess(t, apptest.ProcOptions{DataDir: dir})
	ws = strings.Replace(ws, p.Addr, p2.Addr, 1)
	if got := readOMA(t, ws, 5); fmt.Sprint(got) != "[1 2 3 4 5]" {
		t.Fatalf("after the restart: %v, want [1 2 3 4 5]", got)
	}
	waitFor(t, "the frames acknowledged", func() bool { return metric(t, p2.URL, "notifyrelay_channel_backlog") == "0" })
	postBody(t, strings.Replace(cb, p.Addr, p2.Addr, 1), `{"p":{"n":6}}`)
	if got := readOMA(t, ws, 1); fmt.Sprint(got) != "[6]" {
		t.Fatalf("received frames sent again: %v, want [6]", got)
	}
}

// dialOMATiny opens an OMA-mode socket with a receive buffer of a few KiB and
// returns the TCP connection under it (nothing is read from it).
func dialOMATiny(t *testing.T, url string) *net.TCPConn {
	var tcp *net.TCPConn
	d := websocket.Dialer{Subprotocols: []string{bridge.ProtocolOMA}, HandshakeTimeout: 5 * time.Second,
		NetDialContext: func(_ context.Context, _, addr string) (net.Conn, error) {
			tcp = dialTinyBuffer(t, addr)
			return tcp, nil
		}}
	ws, _, err := d.Dial(url, nil)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { ws.Close() })
	return tcp
}

// readOMA reads OMA-mode frames until it has want notifications and returns
// their n in the order received (a frame is one document or a notificationList).
func readOMA(t *testing.T, url string, want int) []int {
	d := websocket.Dialer{Subprotocols: []string{bridge.ProtocolOMA}, HandshakeTimeout: 5 * time.Second}
	c, _, err := d.Dial(url, nil)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	defer c.Close()
	var got []int
	for len(got) < want {
		_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
		_, data, err := c.ReadMessage()
		if err != nil {
			t.Fatalf("read after %v: %v", got, err)
		}
		var list struct{ NotificationList []struct{ P struct{ N int } } }
		var one struct{ P struct{ N int } }
		if json.Unmarshal(data, &list) == nil && list.NotificationList != nil {
			for _, n := range list.NotificationList {
				got = append(got, n.P.N)
			}
		} else if json.Unmarshal(data, &one) == nil {
			got = append(got, one.P.N)
		}
	}
	return got
}
