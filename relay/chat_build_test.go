package relay

import (
	"fmt"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"notifyrelay/config"
	"notifyrelay/destkind"
	"notifyrelay/oma"
	"notifyrelay/queue"
)

// buildFixture is a chat without a queue holding one 10-participant session whose
// 9 receivers have one subscription each.
func buildFixture() (*chat, *session) {
	cfg := config.Default()
	cfg.PublicURL = "http://127.0.0.1:8080"
	r := newChat(nil, cfg, zerolog.Nop(), nil)
	s := &session{ID: "0123456789abcdef0123"}
	for i := range 10 {
		addr := fmt.Sprintf("tel:+1958555%04d", i)
		s.Participants = append(s.Participants, participant{Address: addr, Name: "User", Role: oma.RoleParticipant})
		if i > 0 {
			r.putSub(&subscription{ID: fmt.Sprint(i), User: addr, NotifyURL: "http://h/x", CallbackData: "cb",
				Format: "XML", Expires: time.Now().Add(time.Hour), Dest: destkind.SubscriptionPrefix + fmt.Sprint(i)})
		}
	}
	s.Participants[0].Role = oma.RoleAdministrator
	s.index()
	return r, s
}

// buildChange is the CPU part of a change: parse, authorise and apply, build every
// N1 (the durable append excluded).
func buildChange(r *chat, s *session, body []byte) (queue.Write, error) {
	d, e := oma.ParseChatSessionData(oma.XML, body)
	if e != nil {
		return queue.Write{}, e
	}
	next, e := applyTo(s, 0, change{data: d})
	if e != nil {
		return queue.Write{}, e
	}
	w := queue.Write{Records: []queue.Record{next.record()}}
	t := r.notify(next, 0, change{data: d}, newID(16), &w)
	r.untrack(t)
	return w, nil
}

var subjectXML = []byte(`<?xml version="1.0" encoding="UTF-8"?>
<chat:chatSessiondata xmlns:chat="urn:oma:xml:rest:netapi:chat:1">
<subject>Test123</subject>
</chat:chatMessage>`)

// TestN1AllocationBudget: building the N1s of a change stays under 30 allocations
// per notification (the whole of notify divided by the N1s it builds).
func TestN1AllocationBudget(t *testing.T) {
	r, s := buildFixture()
	d := oma.ChatSessionData{Kind: oma.DataSubject, Subject: "x", Action: oma.ActionSet}
	allocs := testing.AllocsPerRun(200, func() {
		w := queue.Write{}
		r.untrack(r.notify(s, 0, change{data: d}, "msgid", &w))
	})
	if per := allocs / 9; per >= 30 {
		t.Errorf("%.1f allocations per N1, want < 30", per)
	}
	t.Logf("%.1f allocations per change, %.1f per N1", allocs, allocs/9)
}

// BenchmarkChangeBuild measures parse + authorise + apply + build of 9 N1s.
func BenchmarkChangeBuild(b *testing.B) {
	r, s := buildFixture()
	b.ReportAllocs()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := buildChange(r, s, subjectXML); err != nil {
				b.Fatal(err)
			}
		}
	})
	secs := time.Since(start).Seconds()
	b.ReportMetric(float64(b.N)/secs, "changes/s")
	b.ReportMetric(float64(9*b.N)/secs, "N1/s")
}

// TestChangeRecordRoundTrip: the hand-assembled record decodes to the same change
// and outcomes.
func TestChangeRecordRoundTrip(t *testing.T) {
	tr := &tracker{rec: changeRecord{Session: "s", Changer: `tel:+1"x`, Msg: "m", Receivers: []string{"a", "b"}, Owner: []int{0, 1, 1}},
		outcome: []int8{n1Delivered, n1Pending, n1Dead}, left: 1}
	for _, want := range [][]int8{{n1Delivered, n1Pending, n1Dead}, {0, 0, 0}} {
		tr.outcome, tr.left = want, 0
		if want[0] == 0 {
			tr.left = 3
		}
		c := &chat{trackers: map[string]*tracker{}}
		if err := c.loadChange("m", tr.record().Value); err != nil {
			t.Fatal(err)
		}
		got := c.trackers["m"]
		if fmt.Sprint(got.rec, got.outcome) != fmt.Sprint(tr.rec, want) {
			t.Fatalf("got %v %v, want %v %v", got.rec, got.outcome, tr.rec, want)
		}
	}
}
