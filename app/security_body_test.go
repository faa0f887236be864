package app_test

import (
	"bufio"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"notifyrelay/app/apptest"
)

// heldConns is how many connections TestDeclaredBodiesHoldNoMemory holds, and
// rssGrowthBound what the server may grow by while they are held (issue 16, F1:
// before the fix each held its declared Content-Length, 1 MiB).
const (
	heldConns      = 2000
	rssGrowthBound = 128 << 20
)

// A declared Content-Length buys no memory before the route and the token are
// known: 2,000 connections each declaring 1 MiB to an unknown path and sending one
// byte keep the server's RSS within rssGrowthBound, and /readyz keeps answering.
func TestDeclaredBodiesHoldNoMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("holds 2,000 connections")
	}
	dir := t.TempDir()
	p := apptest.StartProcess(t, apptest.ProcOptions{DataDir: filepath.Join(dir, "data"),
		Env: []string{"NOTIFYRELAY_LIMITS_MAX_CONNS_PER_IP=0"}})
	before := rssOf(t, p.Pid())
	held := make([]net.Conn, 0, heldConns)
	defer func() {
		for _, c := range held {
			c.Close()
		}
	}()
	for range heldConns {
		c, err := net.Dial("tcp", p.Addr)
		if err != nil {
			t.Fatalf("after %d connections: %v", len(held), err)
		}
		held = append(held, c)
		if _, err := c.Write([]byte("POST /does-not-exist HTTP/1.1\r\nHost: x\r\nContent-Length: 1048576\r\n\r\nx")); err != nil {
			t.Fatal(err)
		}
	}
	waitOpenConns(t, p.URL, heldConns)
	for range 20 {
		if st := statusOf(t, p.URL+"/readyz"); st != 200 {
			t.Fatalf("/readyz: %d", st)
		}
	}
	after := rssOf(t, p.Pid())
	t.Logf("RSS %d MiB → %d MiB with %d connections held", before>>20, after>>20, heldConns)
	if after-before > rssGrowthBound {
		t.Fatalf("RSS grew by %d MiB, bound %d MiB", (after-before)>>20, rssGrowthBound>>20)
	}
}

// waitOpenConns polls /metrics until the server has at least n connections open.
func waitOpenConns(t *testing.T, base string, n int) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		if v := metricValue(t, base, "notifyrelay_http_open_connections"); v >= float64(n) {
			return
		} else if time.Now().After(deadline) {
			t.Fatalf("open connections %v, want %d", v, n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func metricValue(t *testing.T, base, name string) float64 {
	t.Helper()
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), name+" "); ok {
			f, _ := strconv.ParseFloat(v, 64)
			return f
		}
	}
	return -1
}

func statusOf(t *testing.T, url string) int {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// rssOf is a process's resident set size in bytes, from /proc.
func rssOf(t *testing.T, pid int) int64 {
	t.Helper()
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb << 10
		}
	}
	t.Fatal("no VmRSS")
	return 0
}
