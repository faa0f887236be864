package bridge

import (
	"strings"
	"testing"
)

// A GET of channelURL that is not a valid WebSocket handshake gets a 400
// requestError (SVC0002/SVC0003) and no upgrade.
func TestNotAHandshake(t *testing.T) {
	s := startServer(t, nil)
	u := strings.Replace(s.create("WebSockets", "").ChannelData.ChannelURL, "ws://", "http://", 1)
	ok := []string{"Connection", "Upgrade", "Upgrade", "websocket", "Sec-WebSocket-Version", "13",
		"Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==", "Sec-WebSocket-Protocol", ProtocolOMA}
	with := func(k, v string) []string {
		h := append([]string(nil), ok...)
		for i := 0; i < len(h); i += 2 {
			if h[i] == k {
				h[i+1] = v
			}
		}
		return h
	}
	for name, h := range map[string][]string{
		"plain GET":   {"Sec-WebSocket-Protocol", ProtocolOMA},
		"no upgrade":  with("Upgrade", "h2c"),
		"version 8":   with("Sec-WebSocket-Version", "8"),
		"bad key":     with("Sec-WebSocket-Key", "short"),
		"not upgrade": with("Connection", "keep-alive"),
	} {
		st, _, body := s.do("GET", u, "", "", h...)
		if st != 400 || !strings.Contains(body, "SVC000") {
			t.Errorf("%s: %d %s", name, st, body)
		}
	}
}
