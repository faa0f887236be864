package loadtest

import (
	"context"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"notifyrelay/app/apptest"
	"notifyrelay/config"
)

// startServer runs an in-process notifyrelay that may deliver to 127.0.0.1 and
// retries failed attempts quickly.
func startServer(t *testing.T) string {
	t.Helper()
	a := apptest.Start(t, func(c *config.Config) {
		c.Delivery.AllowPrivateTargets = true
		c.Delivery.Backoff.Initial = config.Duration(5 * time.Millisecond)
		c.Delivery.Backoff.Max = config.Duration(50 * time.Millisecond)
	})
	return apptest.URL(a)
}

type toolRun struct {
	code   int
	out    string
	report Report
}

// runTool runs the tool with args (plus --target, --json and --html) and reads back
// its reports. drop, when set, is the lossy-receiver hook.
func runTool(t *testing.T, ctx context.Context, target string, drop func() bool, args ...string) toolRun {
	t.Helper()
	dir := t.TempDir()
	jp, hp := filepath.Join(dir, "report.json"), filepath.Join(dir, "report.html")
	var stdout, stderr strings.Builder
	o, err := parse(append(args, "--target", target, "--json", jp, "--html", hp), &stderr)
	if err != nil {
		t.Fatalf("parse %v: %v", args, err)
	}
	o.drop = drop
	code := run(ctx, o, &stdout, &stderr)
	t.Logf("loadtest %s → exit %d\n%s\n%s", strings.Join(args, " "), code, stdout.String(), stderr.String())
	if code == exitSetup {
		t.Fatalf("setup failed: %s", stderr.String())
	}
	return toolRun{code: code, out: stdout.String(), report: checkReportFiles(t, jp, hp)}
}

// checkClean checks a run that must have delivered everything exactly once, in order.
func checkClean(t *testing.T, r toolRun) {
	t.Helper()
	c := r.report.Counts
	if r.code != exitOK || c.Lost != 0 || c.Duplicates != 0 || c.OutOfOrder != 0 {
		t.Errorf("exit %d, counts %+v", r.code, c)
	}
	if r.report.Accepted == 0 || c.Expected == 0 || c.Received != c.Expected {
		t.Errorf("nothing measured: accepted %d, counts %+v", r.report.Accepted, c)
	}
	if r.report.Latency.Count == 0 || r.report.Latency.P99 <= 0 {
		t.Errorf("no latency: %+v", r.report.Latency)
	}
}

func TestRelayScenarioWithFailingAttemptsLosesNothing(t *testing.T) {
	target := startServer(t)
	r := runTool(t, context.Background(), target, nil, "relay", "--duration", "2s", "--rate", "300",
		"--destinations", "8", "--fail-rate", "0.2", "--drain", "30s")
	checkClean(t, r)
	if len(r.report.Timeline) == 0 {
		t.Error("empty timeline")
	}
}

func TestLossyReceiverIsDetected(t *testing.T) {
	target := startServer(t)
	var n atomic.Int64
	drop := func() bool { return n.Add(1)%7 == 0 } // every 7th notification vanishes
	r := runTool(t, context.Background(), target, drop, "relay", "--count", "200", "--max",
		"--destinations", "4", "--drain", "2s")
	if r.code != exitLost || r.report.Counts.Lost == 0 {
		t.Errorf("loss not reported: exit %d, counts %+v", r.code, r.report.Counts)
	}
	if !strings.Contains(r.out, "lost") {
		t.Errorf("table lacks the loss:\n%s", r.out)
	}
}

func TestChatScenarioOverWebhooks(t *testing.T) {
	target := startServer(t)
	r := runTool(t, context.Background(), target, nil, "chat", "--duration", "2s", "--rate", "100",
		"--groups", "4", "--participants", "4", "--changers", "2", "--receivers", "webhook")
	checkClean(t, r)
}

func TestChatScenarioOverChannels(t *testing.T) {
	target := startServer(t)
	r := runTool(t, context.Background(), target, nil, "chat", "--duration", "2s", "--rate", "100",
		"--groups", "3", "--participants", "6", "--receivers", "mixed", "--ws-mode", "ack", "--format", "xml")
	checkClean(t, r)
	r = runTool(t, context.Background(), target, nil, "chat", "--count", "60", "--max",
		"--groups", "3", "--participants", "3", "--receivers", "websocket", "--ws-mode", "oma")
	checkClean(t, r)
}

func TestChannelsScenarioReportsMemory(t *testing.T) {
	target := startServer(t)
	r := runTool(t, context.Background(), target, nil, "channels", "--connections", "40", "--duration", "1s")
	m := r.report.Memory
	if r.code != exitOK || m == nil || m.Connections != 40 || m.Dropped != 0 {
		t.Fatalf("exit %d, memory %+v", r.code, m)
	}
	// In process the RSS is the test binary's too, so only check that it was read.
	if m.Source != "/metrics" || m.BeforeBytes <= 0 || m.AfterBytes <= 0 {
		t.Errorf("server memory not read: %+v", m)
	}
}

func TestInterruptGivesPartialReport(t *testing.T) {
	target := startServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 1500*time.Millisecond)
	defer cancel()
	r := runTool(t, ctx, target, nil, "relay", "--duration", "1m", "--rate", "100", "--destinations", "2")
	if !r.report.Interrupted || r.report.SendSeconds > 30 || !strings.Contains(r.out, "INTERRUPTED") {
		t.Errorf("not a partial report: %+v\n%s", r.report, r.out)
	}
}

// --ceiling runs the same load on the in-process reference server first: both
// runs deliver everything, and the report carries both and the ratios.
func TestCeilingRunsBothAndReportsRatios(t *testing.T) {
	target := startServer(t)
	for _, args := range [][]string{
		{"chat", "--count", "60", "--max", "--groups", "3", "--participants", "4", "--receivers", "mixed", "--ws-mode", "oma"},
		{"chat", "--duration", "1s", "--rate", "100", "--groups", "2", "--participants", "3", "--changers", "2", "--receivers", "websocket", "--format", "xml"},
		{"relay", "--count", "100", "--max", "--destinations", "4", "--fail-rate", "0.2"},
	} {
		r := runTool(t, context.Background(), target, nil, append(args, "--ceiling")...)
		checkClean(t, r)
		c := r.report.Ceiling
		if c == nil || !strings.HasPrefix(c.Target, "http://127.0.0.1:") || c.Target == target {
			t.Fatalf("%v: no ceiling run in the report: %+v", args, c)
		}
		checkClean(t, toolRun{code: r.code, report: *c})
		v := r.report.VsCeiling
		if v == nil || v.AcceptedPerSec <= 0 || v.DeliveredPerSec <= 0 || v.LatencyP99 <= 0 {
			t.Errorf("%v: ratios %+v", args, v)
		}
		if !strings.Contains(r.out, "ceiling (in-process") || !strings.Contains(r.out, "vs ceiling") {
			t.Errorf("%v: table lacks the ceiling:\n%s", args, r.out)
		}
	}
}
