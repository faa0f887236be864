package relay_test

import (
	"fmt"
	"net"
	"testing"
	"time"

	"notifyrelay/app/apptest"
)

// Accept 1,000 deliveries while the receiver is down, SIGKILL the server, restart
// it on the same data dir, bring the receiver up: all 1,000 arrive, in order.
func TestDeliveryCrashRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the real binary")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // the receiver is down: connections to addr are refused
	dir := t.TempDir()
	opts := apptest.ProcOptions{DataDir: dir, Env: []string{
		"NOTIFYRELAY_DELIVERY_ALLOW_PRIVATE_TARGETS=true",
		"NOTIFYRELAY_DELIVERY_BACKOFF_INITIAL=10ms",
		"NOTIFYRELAY_DELIVERY_BACKOFF_MAX=100ms",
	}}
	p := apptest.StartProcess(t, opts)
	const n = 1000
	for chunk := 0; chunk < n; chunk += 250 {
		items := make([]whItem, 250)
		for i := range items {
			items[i] = whItem{NotifyURL: "http://" + addr + "/crash", ContentType: "application/json", Body: fmt.Sprintf(`{"n":%d}`, chunk+i)}
		}
		whBatchAt(t, p.URL, items)
	}
	p.Kill()

	p = apptest.StartProcess(t, opts)
	rc := whListenAt(t, addr, nil)
	whWait(t, 60*time.Second, "1,000 deliveries after the restart", func() bool { return len(rc.delivered("/crash")) == n })
	for i, body := range rc.delivered("/crash") {
		if want := fmt.Sprintf(`{"n":%d}`, i); body != want {
			t.Fatalf("delivery %d is %s, want %s", i, body, want)
		}
	}
	if err := p.Stop(10 * time.Second); err != nil {
		t.Fatalf("graceful stop: %v", err)
	}
}
