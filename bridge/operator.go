package bridge

import (
	"encoding/json"
	"sort"
	"strconv"
	"time"

	"notifyrelay/api"
	"notifyrelay/destkind"
	"notifyrelay/oma"
)

// channelView is one element of the operator's GET /relay/v1/channels.
type channelView struct {
	ID        string    `json:"id"`
	User      string    `json:"user"`
	Type      string    `json:"type"`
	Depth     int       `json:"depth"`
	Connected bool      `json:"connected"`
	Mode      string    `json:"mode,omitempty"`   // of the connection: oma, ack, longpoll
	Window    int       `json:"window,omitempty"` // acknowledged mode
	LastSeen  time.Time `json:"lastSeen"`         // the last refresh of the lifetime
	ExpiresAt time.Time `json:"expiresAt"`
}

// listChannels is GET /relay/v1/channels[?limit=]: the live channels, those with
// the most queued first, for the console.
func (s *store) listChannels(r *api.Request) (api.Answer, *oma.RequestError) {
	limit := 500
	if v := string(r.QueryArgs().Peek("limit")); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 10000 {
			return api.Answer{}, oma.InvalidInput("limit (1 to 10000)")
		}
		limit = n
	}
	depth := map[string]int{}
	for _, d := range s.q.Dests(destkind.ChannelPrefix) {
		depth[d.Dest] = d.Depth
	}
	out := s.channelViews(depth)
	sort.Slice(out, func(i, j int) bool {
		if out[i].Depth != out[j].Depth {
			return out[i].Depth > out[j].Depth
		}
		return out[i].ID < out[j].ID
	})
	more := len(out) > limit
	b, _ := json.Marshal(map[string]any{"channels": out[:min(limit, len(out))], "more": more})
	return api.OK(b), nil
}

func (s *store) channelViews(depth map[string]int) []channelView {
	s.hub.mu.Lock()
	chans := make([]*channel, 0, len(s.hub.byID))
	views := make([]channelView, 0, len(s.hub.byID))
	for _, c := range s.hub.byID {
		chans = append(chans, c)
		views = append(views, channelView{ID: c.st.ID, User: c.st.User, Type: c.st.Type, Depth: depth[c.dest()],
			ExpiresAt: c.st.Expires, LastSeen: c.st.Expires.Add(-time.Duration(c.st.Lifetime) * time.Second)})
	}
	s.hub.mu.Unlock()
	for i, c := range chans {
		c.mu.Lock()
		switch {
		case c.conn != nil && c.conn.ack:
			views[i].Connected, views[i].Mode, views[i].Window = true, "ack", c.conn.window
		case c.conn != nil:
			views[i].Connected, views[i].Mode = true, "oma"
		case c.poll != nil:
			views[i].Connected, views[i].Mode = true, "longpoll"
		}
		c.mu.Unlock()
	}
	return views
}
