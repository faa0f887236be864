package bridge

import "time"

// A client pings to learn whether the socket is alive: a few a minute. Each
// answer costs a write, so beyond maxPings in one pingWindow the socket is closed
// with 1008 (a client could otherwise keep a core busy answering).
const (
	maxPings   = 20
	pingWindow = time.Second
)

// pingLimiter counts pings in fixed windows; only the reader goroutine uses it.
type pingLimiter struct {
	start time.Time
	n     int
}

func (p *pingLimiter) allow(now time.Time) bool {
	if now.Sub(p.start) >= pingWindow {
		p.start, p.n = now, 0
	}
	p.n++
	return p.n <= maxPings
}

// limitPings answers pings with pong (the library's default handler) within the
// limit. Beyond it w is stopped with 1008 and pings go unanswered; the reader
// goes on reading (and dropping) until the peer answers the close frame, so the
// socket is not closed on unread pings (that would reset the connection and lose
// the close frame).
func (w *wsConn) limitPings() {
	pong := w.conn.PingHandler()
	var lim pingLimiter
	w.conn.SetPingHandler(func(data string) error {
		if !lim.allow(time.Now()) {
			w.stop(closePolicy, "too many pings")
			return nil
		}
		return pong(data)
	})
}
