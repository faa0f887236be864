package loadtest

import (
	"sort"
	"sync"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// Latencies are recorded in microseconds, from 1µs to 1h, with 3 significant digits.
const (
	histMin  = 1
	histMax  = int64(time.Hour / time.Microsecond)
	histSigs = 3
)

func newHist() *hdrhistogram.Histogram { return hdrhistogram.New(histMin, histMax, histSigs) }

// Stats collects what a run measures: counters, the whole-run latency histograms and a
// one-second timeline. Safe for concurrent use.
type Stats struct {
	mu        sync.Mutex
	start     time.Time
	e2e       *hdrhistogram.Histogram // accepted notification → received
	accept    *hdrhistogram.Histogram // request sent → 2xx
	window    *hdrhistogram.Histogram // e2e within the current second
	sent      int64
	accepted  int64
	delivered int64
	winAcc    int64
	winDel    int64
	errors    map[string]int64
	timeline  []Point
}

// Point is one second of the run: throughput and end-to-end latency percentiles (ms).
type Point struct {
	T         float64 `json:"t"` // seconds since start
	Accepted  int64   `json:"accepted"`
	Delivered int64   `json:"delivered"`
	InFlight  int64   `json:"inFlight"`
	P50       float64 `json:"p50"`
	P90       float64 `json:"p90"`
	P99       float64 `json:"p99"`
	Max       float64 `json:"max"`
}

// NewStats starts the clock.
func NewStats(now time.Time) *Stats {
	return &Stats{start: now, e2e: newHist(), accept: newHist(), window: newHist(), errors: map[string]int64{}}
}

// begin restarts the clock and the timeline: the sending phase starts.
func (s *Stats) begin(now time.Time) {
	s.mu.Lock()
	s.start, s.timeline = now, nil
	s.window.Reset()
	s.winAcc, s.winDel = 0, 0
	s.mu.Unlock()
}

// Sent counts one request about to be sent.
func (s *Stats) Sent() {
	s.mu.Lock()
	s.sent++
	s.mu.Unlock()
}

// Accepted records a 2xx from the server and how long it took.
func (s *Stats) Accepted(d time.Duration) {
	s.mu.Lock()
	s.accepted++
	s.winAcc++
	_ = s.accept.RecordValue(micros(d))
	s.mu.Unlock()
}

// Delivered records one first-time receipt of a notification and its end-to-end latency.
func (s *Stats) Delivered(d time.Duration) {
	us := micros(d)
	s.mu.Lock()
	s.delivered++
	s.winDel++
	_ = s.e2e.RecordValue(us)
	_ = s.window.RecordValue(us)
	s.mu.Unlock()
}

// Error counts one failure of the given kind ("http 503", "connect", "timeout" …).
func (s *Stats) Error(kind string) {
	s.mu.Lock()
	s.errors[kind]++
	s.mu.Unlock()
}

// Tick closes the current second into a timeline point and returns it.
func (s *Stats) Tick(now time.Time, inFlight int64) Point {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := Point{T: now.Sub(s.start).Seconds(), Accepted: s.winAcc, Delivered: s.winDel, InFlight: inFlight,
		P50: ms(s.window.ValueAtQuantile(50)), P90: ms(s.window.ValueAtQuantile(90)),
		P99: ms(s.window.ValueAtQuantile(99)), Max: ms(s.window.Max())}
	s.timeline = append(s.timeline, p)
	s.window.Reset()
	s.winAcc, s.winDel = 0, 0
	return p
}

// Totals is a snapshot of the counters.
type Totals struct {
	Sent, Accepted, Delivered int64
	P99                       float64 // end-to-end, ms, whole run so far
}

// Snapshot reads the counters.
func (s *Stats) Snapshot() Totals {
	s.mu.Lock()
	defer s.mu.Unlock()
	return Totals{Sent: s.sent, Accepted: s.accepted, Delivered: s.delivered, P99: ms(s.e2e.ValueAtQuantile(99))}
}

// Latency is a latency summary in milliseconds.
type Latency struct {
	Count int64   `json:"count"`
	P50   float64 `json:"p50"`
	P90   float64 `json:"p90"`
	P99   float64 `json:"p99"`
	P999  float64 `json:"p999"`
	Max   float64 `json:"max"`
	Mean  float64 `json:"mean"`
}

func summarize(h *hdrhistogram.Histogram) Latency {
	return Latency{Count: h.TotalCount(), P50: ms(h.ValueAtQuantile(50)), P90: ms(h.ValueAtQuantile(90)),
		P99: ms(h.ValueAtQuantile(99)), P999: ms(h.ValueAtQuantile(99.9)), Max: ms(h.Max()), Mean: h.Mean() / 1000}
}

// fill copies the measurements into r.
func (s *Stats) fill(r *Report) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r.Sent, r.Accepted, r.Delivered = s.sent, s.accepted, s.delivered
	r.Latency, r.AcceptLatency = summarize(s.e2e), summarize(s.accept)
	r.Errors = make(map[string]int64, len(s.errors))
	for k, v := range s.errors {
		r.Errors[k] = v
	}
	r.Timeline = append([]Point(nil), s.timeline...)
}

// errorKinds lists the error kinds sorted by count, largest first.
func errorKinds(m map[string]int64) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if m[keys[i]] != m[keys[j]] {
			return m[keys[i]] > m[keys[j]]
		}
		return keys[i] < keys[j]
	})
	return keys
}

func micros(d time.Duration) int64 {
	us := d.Microseconds()
	if us < histMin {
		return histMin
	}
	if us > histMax {
		return histMax
	}
	return us
}

func ms(us int64) float64 { return float64(us) / 1000 }
