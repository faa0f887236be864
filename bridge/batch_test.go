package bridge

import (
	"encoding/json"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// countingConn counts the writes that reach the socket.
type countingConn struct {
	net.Conn
	writes *atomic.Int64
}

func (c countingConn) Write(p []byte) (int, error) {
	c.writes.Add(1)
	return c.Conn.Write(p)
}

// countWrites makes every upgraded socket count its writes into the returned counter.
func countWrites(t *testing.T) *atomic.Int64 {
	var n atomic.Int64
	wrapRawConn = func(c net.Conn) net.Conn { return countingConn{c, &n} }
	t.Cleanup(func() { wrapRawConn = nil })
	return &n
}

// A backlog of frames reaches the socket in one write per batch, not one per
// frame, in both modes.
func TestBacklogIsOneWritePerBatch(t *testing.T) {
	const n = 50 // < send_buffer and the window: one batch
	for _, mode := range []string{ProtocolOMA, ProtocolAck} {
		t.Run(mode, func(t *testing.T) {
			s := startServer(t, nil)
			writes := countWrites(t)
			ch := s.create("WebSockets", `,"channelData":{"maxNotifications":1}`)
			for i := 1; i <= n; i++ {
				s.notify(ch.CallbackURL, i)
			}
			c := mustDial(t, ch.ChannelData.ChannelURL, mode)
			for i := 1; i <= n; i++ {
				if got := readNumber(t, c, mode); got != i {
					t.Fatalf("frame %d carries %d", i, got)
				}
			}
			// The 101, then the batch.
			if w := writes.Load(); w > 2 {
				t.Fatalf("%d frames took %d writes (the 101 and one batch expected)", n, w)
			}
		})
	}
}

func readNumber(t *testing.T, c *websocket.Conn, mode string) int {
	t.Helper()
	if mode == ProtocolAck {
		return numberOf(t, []byte(readAck(t, c).Notification))
	}
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, data, err := c.ReadMessage()
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	var list struct{ NotificationList []json.RawMessage }
	if json.Unmarshal(data, &list) == nil && list.NotificationList != nil {
		t.Fatalf("maxNotifications 1 sent a list: %s", data)
	}
	return numberOf(t, data)
}
