package loadtest

import (
	"context"
	"net/url"
	"strconv"
	"time"
)

// relayScenario drives the operator delivery API: stream i is destination d<i>, a
// webhook receiver of the tool's own sink (its notifyURL, with key d<i>). Each
// delivery's body carries its marker.
type relayScenario struct {
	e    *env
	sink *sink
	ids  []string
	seqs []int // per stream; each stream is used by one worker only
}

func newRelay(e *env) *relayScenario { return &relayScenario{e: e} }

func (s *relayScenario) Setup(ctx context.Context) error {
	sk, err := newSink(s.e.o.Listen, s.e.o.FailRate, s.receive)
	if err != nil {
		return err
	}
	s.sink = sk
	for i := range s.e.o.Destinations {
		id := "d" + strconv.Itoa(i)
		s.ids = append(s.ids, id)
		s.e.tracker.SetKind(id, "webhook")
		s.e.tracker.Expect(id, id)
	}
	s.seqs = make([]int, len(s.ids))
	return nil
}

func (s *relayScenario) Streams() int { return len(s.ids) }

func (s *relayScenario) Send(i int) {
	s.seqs[i]++
	id, now := s.ids[i], time.Now()
	m := Marker{Stream: id, Seq: s.seqs[i], Sent: now}
	body := []byte(`{"loadtestNotification":{"marker":"` + m.String() + `"}}`)
	q := url.Values{"notifyURL": {s.sink.URL(id)}, "key": {id}}
	s.e.stats.Sent()
	_, err := s.e.client.expect(202, "POST", "/relay/v1/deliveries?"+q.Encode(), "application/json", body)
	s.e.record(id, m.Seq, now, err)
}

// receive is the sink's handler; body is only valid during the call.
func (s *relayScenario) receive(receiver string, body []byte, now time.Time) {
	m, ok := findMarker(body)
	if !ok {
		s.e.stats.Error("notification without marker")
		return
	}
	s.e.observe(receiver, m, now)
}

func (s *relayScenario) Finish(context.Context, *Report) {}

func (s *relayScenario) Close() {
	if s.sink != nil {
		s.sink.Close()
	}
}
