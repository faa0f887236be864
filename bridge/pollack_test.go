package bridge

import (
	"encoding/json"
	"testing"
	"time"

	"notifyrelay/config"
	"notifyrelay/destkind"
)

// ackedPoll is POST {channelURL}?ack=N, decoded.
func (s *server) ackedPoll(t *testing.T, url, ack string) (int, []ackMsg) {
	t.Helper()
	status, _, body := s.do("POST", url+"?ack="+ack, "", "")
	var a struct{ Notifications []ackMsg }
	if status == 200 {
		if err := json.Unmarshal([]byte(body), &a); err != nil || a.Notifications == nil {
			t.Fatalf("acked poll answer %s: %v", body, err)
		}
	}
	return status, a.Notifications
}

// Acknowledged long polling: an answer carries seq and prevSeq and stays queued
// until a later poll acknowledges it (?ack=N); an ack above what was sent
// acknowledges only what was sent; tags settle when acknowledged.
func TestAckedLongPoll(t *testing.T) {
	s := startServer(t, func(c *config.Config) { c.Channels.PollTimeout = config.Duration(300 * time.Millisecond) })
	ch := s.create("LongPolling", `,"channelData":{"maxNotifications":2}`)
	url, dest := ch.ChannelData.ChannelURL, destkind.ChannelPrefix+idOf(ch)
	if status, _ := s.ackedPoll(t, url, "x"); status != 400 {
		t.Fatalf("?ack=x: %d, want 400", status)
	}
	for i := 1; i <= 2; i++ {
		s.notify(ch.CallbackURL, i)
	}
	s.appendTagged(t, ch, "tag-3")
	check := func(got []ackMsg, seqs ...uint64) {
		t.Helper()
		if len(got) != len(seqs) {
			t.Fatalf("got %d notifications, want seqs %v", len(got), seqs)
		}
		for i, m := range got {
			if m.Seq != seqs[i] || m.PrevSeq == nil || *m.PrevSeq != seqs[i]-1 {
				t.Fatalf("notification %d: %+v, want seq %d prevSeq %d", i, m, seqs[i], seqs[i]-1)
			}
		}
	}
	_, got := s.ackedPoll(t, url, "0")
	check(got, 1, 2)
	if n := numberOf(t, []byte(got[1].Notification)); n != 2 || got[1].ContentType != "application/json" {
		t.Fatalf("second notification %+v", got[1])
	}
	_, got = s.ackedPoll(t, url, "0") // received is not acknowledged: sent again
	check(got, 1, 2)
	_, got = s.ackedPoll(t, url, "2")
	check(got, 3)
	if d := s.q.DestStats(dest).Depth; d != 1 {
		t.Fatalf("depth %d after ack=2, want 1", d)
	}
	if s.isSettled("tag-3") {
		t.Fatal("tag-3 settled before it was acknowledged")
	}
	if status, got := s.ackedPoll(t, url, "99"); status != 200 || len(got) != 0 {
		t.Fatalf("ack=99 with nothing pending: %d %+v, want an empty answer", status, got)
	}
	if !s.isSettled("tag-3") || s.q.DestStats(dest).Depth != 0 {
		t.Fatal("ack=99 did not acknowledge what was sent")
	}
	s.notify(ch.CallbackURL, 4)
	_, got = s.ackedPoll(t, url, "1000") // capped at 3, the last seq sent
	check(got, 4)
}

func (s *server) isSettled(tag string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.settled[tag]
}
