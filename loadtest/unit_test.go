package loadtest

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestTrackerFindsLossDuplicatesAndDisorder(t *testing.T) {
	tr := NewTracker()
	tr.Expect("r1", "s")
	tr.Expect("r2", "s")
	for seq := 1; seq <= 4; seq++ {
		tr.Accepted("s", seq)
	}
	for _, seq := range []int{1, 2, 3, 4} {
		if got := tr.Receive("r1", "s", seq); got != First {
			t.Fatalf("r1 seq %d: %v", seq, got)
		}
	}
	want := []Arrival{First, OutOfOrder, Duplicate}
	for i, seq := range []int{3, 1, 3} {
		if got := tr.Receive("r2", "s", seq); got != want[i] {
			t.Errorf("r2 seq %d: got %v, want %v", seq, got, want[i])
		}
	}
	if got := tr.Receive("r3", "s", 1); got != Unexpected {
		t.Errorf("unknown flow: %v", got)
	}
	c := tr.Count()
	if c.Expected != 8 || c.Received != 6 || c.Lost != 2 || c.Duplicates != 1 || c.OutOfOrder != 1 || c.Flows != 2 {
		t.Errorf("counts %+v", c)
	}
}

func TestTrackerIgnoresReceiptsOfUnacceptedSeqs(t *testing.T) {
	tr := NewTracker()
	tr.Expect("r", "s")
	tr.Receive("r", "s", 70) // the request timed out but the server took it
	tr.Accepted("s", 1)
	tr.Receive("r", "s", 1)
	if c := tr.Count(); c.Lost != 0 || c.Expected != 1 {
		t.Errorf("counts %+v", c)
	}
}

func TestPacerCountAndRate(t *testing.T) {
	ctx := context.Background()
	p := NewPacer(0, 3, time.Now())
	n := 0
	for p.Next(ctx) {
		n++
	}
	if n != 3 || p.Issued() != 3 {
		t.Fatalf("max pacer gave %d slots, issued %d", n, p.Issued())
	}
	// At 1000/s slot 51 is due 50ms after the start: a cancelled ctx stops the wait.
	p = NewPacer(1000, 0, time.Now().Add(time.Hour))
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if p.Next(cctx) {
		t.Fatal("a slot in an hour was handed out on a cancelled context")
	}
	p = NewPacer(1e6, 0, time.Now())
	for range 100 {
		if !p.Next(ctx) {
			t.Fatal("rate pacer refused a due slot")
		}
	}
}

func TestStatsTimelineAndSummary(t *testing.T) {
	start := time.Now()
	s := NewStats(start)
	s.Sent()
	s.Accepted(2 * time.Millisecond)
	for i := 1; i <= 100; i++ {
		s.Delivered(time.Duration(i) * time.Millisecond)
	}
	s.Error("http 503")
	p := s.Tick(start.Add(time.Second), 3)
	if p.Accepted != 1 || p.Delivered != 100 || p.InFlight != 3 || p.P50 < 49 || p.P50 > 51 || p.Max < 99 {
		t.Errorf("point %+v", p)
	}
	if p2 := s.Tick(start.Add(2*time.Second), 0); p2.Delivered != 0 || p2.P99 != 0 {
		t.Errorf("the second window kept the first one's values: %+v", p2)
	}
	var r Report
	s.fill(&r)
	if r.Latency.Count != 100 || r.Latency.P99 < 98 || r.Errors["http 503"] != 1 || len(r.Timeline) != 2 {
		t.Errorf("report %+v", r)
	}
}

func TestMarkerRoundTripInsideDocuments(t *testing.T) {
	m := Marker{Stream: "g12c0", Seq: 42, Sent: time.Unix(0, 1700000000123456789)}
	for _, body := range []string{
		`{"chatSessionDataNotification":{"message":{"subject":"` + m.String() + `"}}}`,
		`<icon>https://icons.example.com/` + m.String() + `.png</icon>`,
	} {
		got, ok := findMarker([]byte(body))
		if !ok || got != m {
			t.Errorf("findMarker(%s) = %+v, %v", body, got, ok)
		}
	}
	if _, ok := findMarker([]byte(`{"subject":"hello"}`)); ok {
		t.Error("marker found in a body without one")
	}
	ref, ok := messageRef([]byte(`<link rel="GroupChatSessionInformation" href="http://h/chat/v1/u/group/s1"/><link rel="ChatSessionData" href="http://h/chat/v1/u/group/s1/messages/m9"/>`))
	if !ok || ref != "s1/m9" {
		t.Errorf("messageRef = %q, %v", ref, ok)
	}
}

func TestSplitDocs(t *testing.T) {
	cases := map[string][]string{
		`{"chatSessionDataNotification":{"a":1}}`:                                                                           {"chatSessionDataNotification"},
		`{"notificationList":[{"chatSessionDataNotification":{}},{"chatSessionDataStatusNotification":{}}]}`:                {"chatSessionDataNotification", "chatSessionDataStatusNotification"},
		`{"notificationList":{"chatSessionDataNotification":{}}}`:                                                           {"chatSessionDataNotification"},
		`{"notificationList":null}`:                                                                                         nil,
		`<?xml version="1.0"?><chat:chatSessionDataNotification xmlns:chat="urn:x"><a/></chat:chatSessionDataNotification>`: {"chatSessionDataNotification"},
		`<nc:notificationList xmlns:nc="urn:n"><chat:chatSessionDataNotification xmlns:chat="urn:c"><s>x</s></chat:chatSessionDataNotification><chat:chatSessionDataStatusNotification xmlns:chat="urn:c"/></nc:notificationList>`: {"chatSessionDataNotification", "chatSessionDataStatusNotification"},
		`<nc:notificationList xmlns:nc="urn:n"/>`: nil,
	}
	for body, want := range cases {
		docs, err := splitDocs([]byte(body))
		if err != nil {
			t.Errorf("splitDocs(%s): %v", body, err)
			continue
		}
		var got []string
		for _, d := range docs {
			got = append(got, d.root)
		}
		if strings.Join(got, ",") != strings.Join(want, ",") {
			t.Errorf("splitDocs(%s) = %v, want %v", body, got, want)
		}
	}
	docs, _ := splitDocs([]byte(`<nc:notificationList xmlns:nc="urn:n"><chat:x xmlns:chat="urn:c"><subject>lt:a:1:2</subject></chat:x></nc:notificationList>`))
	if len(docs) != 1 || !strings.Contains(string(docs[0].raw), "lt:a:1:2") {
		t.Errorf("XML child bytes: %q", docs)
	}
	if _, err := splitDocs([]byte(`{"broken`)); err == nil {
		t.Error("broken JSON accepted")
	}
}

func TestReportFiles(t *testing.T) {
	r := &Report{Scenario: "relay", Target: "http://127.0.0.1:1", Started: time.Now(), SendSeconds: 2,
		Accepted: 10, Delivered: 10, Errors: map[string]int64{"http 503": 2, "timeout": 5},
		Timeline: []Point{{T: 1, Accepted: 5, Delivered: 4, P50: 1, P90: 2, P99: 3, Max: 4}, {T: 2, Accepted: 5, Delivered: 6, P50: 1, P99: 5, Max: 9}}}
	r.rates()
	dir := t.TempDir()
	jp, hp := filepath.Join(dir, "r.json"), filepath.Join(dir, "r.html")
	if err := r.WriteJSON(jp); err != nil {
		t.Fatal(err)
	}
	if err := r.WriteHTML(hp); err != nil {
		t.Fatal(err)
	}
	checkReportFiles(t, jp, hp)
	var table strings.Builder
	r.WriteTable(&table)
	for _, want := range []string{"accepted/s", "5.0", "lost", "out of order", "error: timeout", "p99.9"} {
		if !strings.Contains(table.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, table.String())
		}
	}
	if strings.Index(table.String(), "timeout") > strings.Index(table.String(), "http 503") {
		t.Errorf("errors not sorted by count:\n%s", table.String())
	}
}

// checkReportFiles checks that the JSON parses and the HTML page carries both plots
// (when there was a sending phase) with nothing loaded from elsewhere.
// plots is the number of charts a report's page has: two per run.
func plots(r Report) int {
	if r.Ceiling != nil {
		return 4
	}
	return 2
}

func checkReportFiles(t *testing.T, jsonPath, htmlPath string) Report {
	t.Helper()
	b, err := os.ReadFile(jsonPath)
	if err != nil {
		t.Fatal(err)
	}
	var back Report
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatalf("report JSON does not parse: %v", err)
	}
	h, err := os.ReadFile(htmlPath)
	if err != nil {
		t.Fatal(err)
	}
	page := string(h)
	if back.Memory != nil {
		if !strings.Contains(page, "memory per connection") && !strings.Contains(page, "server memory") {
			t.Errorf("HTML report of channels lacks the memory figures")
		}
	} else if strings.Count(page, "<svg") != plots(back) || !strings.Contains(page, "<polyline") || !strings.Contains(page, "Throughput") || !strings.Contains(page, "latency percentiles") {
		t.Errorf("HTML report lacks its plots")
	}
	if back.Ceiling != nil && (!strings.Contains(page, "vs ceiling") || !strings.Contains(page, "— ceiling")) {
		t.Errorf("HTML report lacks the ceiling")
	}
	for _, ext := range []string{"<script src", "<link ", "https://cdn", "@import"} {
		if strings.Contains(page, ext) {
			t.Errorf("HTML report loads something from outside: %q", ext)
		}
	}
	return back
}

func TestParseFlags(t *testing.T) {
	var errs strings.Builder
	o, err := parse([]string{"relay", "--max", "--count", "50", "--destinations", "3"}, &errs)
	if err != nil || o.Rate != 0 || o.Count != 50 || o.Duration != 0 || o.Destinations != 3 {
		t.Fatalf("parse: %+v, %v", o, err)
	}
	for _, bad := range [][]string{{"nope"}, {"relay", "--rate", "5", "--max"}, {"chat", "--receivers", "pigeon"},
		{"relay", "--duration", "1s", "--count", "2"}, {"relay", "--fail-rate", "1"}, {"chat", "--participants", "1"}} {
		if _, err := parse(bad, &errs); err == nil {
			t.Errorf("parse(%v) accepted", bad)
		}
	}
	if code := Main(context.Background(), []string{"--help"}, &errs, &errs); code != 0 {
		t.Errorf("--help exit %d", code)
	}
	if code := Main(context.Background(), nil, &errs, &errs); code != exitUsage {
		t.Errorf("no args exit %d", code)
	}
}

func TestParseGaugeAndNiceCeil(t *testing.T) {
	v, err := parseGauge([]byte("# HELP x\nprocess_resident_memory_bytes 1.2345e+07\nother 1\n"), "process_resident_memory_bytes")
	if err != nil || v != 12345000 {
		t.Errorf("parseGauge = %d, %v", v, err)
	}
	for in, want := range map[float64]float64{0: 1, 3: 5, 10: 10, 11: 20, 420: 500} {
		if got := niceCeil(in); got != want {
			t.Errorf("niceCeil(%v) = %v, want %v", in, got, want)
		}
	}
}

// Each kill is charged with what the life it ended accepted and never delivered,
// and with the duplicates that arrived after it; the last row is the final life.
func TestKillAttribution(t *testing.T) {
	tr := NewTracker()
	tr.SetKind("w", "webhook")
	tr.SetKind("p", "longpoll")
	tr.Expect("w", "s")
	tr.Expect("p", "s")
	for seq, epoch := range []int{0, 0, 0, 1, 1, 2} { // seq 1..5 (0 unused)
		if seq > 0 {
			tr.AcceptedIn("s", seq, epoch)
		}
	}
	for seq := 1; seq <= 5; seq++ {
		tr.ReceiveIn("w", "s", seq, 0)
		if seq != 2 && seq != 4 { // the long poll loses 2 (life 0) and 4 (life 1)
			tr.ReceiveIn("p", "s", seq, 0)
		}
	}
	tr.ReceiveIn("w", "s", 1, 1) // replayed after kill 1
	tr.ReceiveIn("w", "s", 3, 2) // and after kill 2
	tr.ReceiveIn("w", "s", 3, 2)
	base := time.Now()
	sv := &supervisor{kills: []Kill{{N: 1, at: base}, {N: 2, at: base.Add(time.Second)}}}
	if sv.epochAt(base.Add(-time.Millisecond)) != 0 || sv.epochAt(base) != 1 || sv.epochAt(base.Add(2*time.Second)) != 2 {
		t.Fatal("epochAt does not count the kills made by then")
	}
	rows := sv.report(tr)
	want := []map[string]KindCounts{
		{"webhook": {Expected: 2, Lost: 0, Duplicates: 1}, "longpoll": {Expected: 2, Lost: 1}},
		{"webhook": {Expected: 2, Lost: 0, Duplicates: 2}, "longpoll": {Expected: 2, Lost: 1}},
		{"webhook": {Expected: 1}, "longpoll": {Expected: 1}},
	}
	if len(rows) != 3 || rows[2].N != 0 {
		t.Fatalf("rows %+v", rows)
	}
	for i, w := range want {
		for kind, c := range w {
			if rows[i].ByKind[kind] != c {
				t.Errorf("row %d %s: %+v, want %+v", i, kind, rows[i].ByKind[kind], c)
			}
		}
	}
}

// --target a,b sends requests to each node in turn.
func TestSeveralTargetsTakenInTurn(t *testing.T) {
	var hits [2]atomic.Int64
	var urls []string
	for i := range hits {
		srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { hits[i].Add(1) }))
		defer srv.Close()
		urls = append(urls, srv.URL+"/")
	}
	c := newClient(strings.Join(urls, ", "), "", 4, 5*time.Second)
	for range 6 {
		if _, err := c.expect(200, "GET", "/x", "", nil); err != nil {
			t.Fatal(err)
		}
	}
	if hits[0].Load() != 3 || hits[1].Load() != 3 {
		t.Fatalf("requests per target: %d and %d, want 3 and 3", hits[0].Load(), hits[1].Load())
	}
	if got := firstTarget(strings.Join(urls, ",")); got != urls[0] {
		t.Fatalf("firstTarget = %s", got)
	}
}
