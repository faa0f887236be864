//go:build linux

package bridge_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"notifyrelay/app/apptest"
)

// A long-poll answer counts as delivered only once the client's TCP stack has it.
// A client that has not received it (tiny receive buffer, not reading) when the
// server is killed with SIGKILL gets every notification again after the restart:
// none is lost. A client that read its answer gets nothing twice.
func TestLongPollAcrossSIGKILL(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	dir := t.TempDir()
	env := []string{"NOTIFYRELAY_CHANNELS_POLL_TIMEOUT=1s"}
	p := apptest.StartProcess(t, apptest.ProcOptions{DataDir: dir, Env: env})
	poll, cb := createPollChannel(t, p.URL)
	pad := strings.Repeat("x", 8<<10) // 5 × 8 KiB: more than the client's window
	for i := 1; i <= 5; i++ {
		postBody(t, cb, fmt.Sprintf(`{"p":{"n":%d,"pad":%q}}`, i, pad))
	}

	c := dialTinyBuffer(t, p.Addr)
	path := strings.TrimPrefix(poll, p.URL)
	if _, err := io.WriteString(c, "POST "+path+" HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "the answer to reach the client's buffer", func() bool { return inQueue(t, c) > 0 })
	// The server wrote what the client's window allowed; the rest waits. It must
	// not count the answer delivered meanwhile (it would lose it below).
	for deadline := time.Now().Add(500 * time.Millisecond); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if n := metric(t, p.URL, "notifyrelay_channel_acks_total"); n != "0" {
			t.Fatalf("answer acknowledged (acks_total %s) before the client received it", n)
		}
	}
	p.Kill()
	c.Close() // the client never saw a complete answer

	p2 := apptest.StartProcess(t, apptest.ProcOptions{DataDir: dir, Env: env})
	poll = strings.Replace(poll, p.Addr, p2.Addr, 1)
	if got := pollNs(t, poll); fmt.Sprint(got) != "[1 2 3 4 5]" {
		t.Fatalf("after the restart: %v, want [1 2 3 4 5]", got)
	}
	waitUntil(t, "the answer acknowledged", func() bool { return metric(t, p2.URL, "notifyrelay_channel_acks_total") == "1" })
	if got := pollNs(t, poll); len(got) != 0 {
		t.Fatalf("received answer sent again: %v", got)
	}
}

// createPollChannel makes a LongPolling channel; it returns its channelURL and callbackURL.
func createPollChannel(t *testing.T, base string) (string, string) {
	resp, err := http.Post(base+"/notificationchannel/v1/alice/channels", "application/json",
		strings.NewReader(`{"notificationChannel":{"channelType":"LongPolling"}}`))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var doc struct {
		NotificationChannel struct {
			ChannelData struct{ ChannelURL string }
			CallbackURL string
		}
	}
	if err := json.NewDecoder(resp.Body).Decode(&doc); err != nil || resp.StatusCode != 201 {
		t.Fatalf("create: %d %v", resp.StatusCode, err)
	}
	return doc.NotificationChannel.ChannelData.ChannelURL, doc.NotificationChannel.CallbackURL
}

func postBody(t *testing.T, cb, body string) {
	resp, err := http.Post(cb, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 204 {
		t.Fatalf("post: %d", resp.StatusCode)
	}
}

// pollNs polls once and returns the n of each notification of the answer. It
// reads the response to its end, closing chunk included, as a client must for the
// server to count the answer received (docs/channels.md §4).
func pollNs(t *testing.T, url string) []int {
	resp, err := http.Post(url, "application/json", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	var list struct {
		NotificationList []struct{ P struct{ N int } }
	}
	if err != nil || resp.StatusCode != 200 || json.Unmarshal(b, &list) != nil {
		t.Fatalf("poll: %d %v %.100s", resp.StatusCode, err, b)
	}
	out := []int{}
	for _, n := range list.NotificationList {
		out = append(out, n.P.N)
	}
	return out
}

// dialTinyBuffer connects with a receive buffer of a few KiB.
func dialTinyBuffer(t *testing.T, addr string) *net.TCPConn {
	d := net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
		var err error
		_ = rc.Control(func(fd uintptr) { err = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUF, 2048) })
		return err
	}}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c.(*net.TCPConn)
}

// inQueue is the bytes waiting in c's receive buffer (SIOCINQ).
func inQueue(t *testing.T, c *net.TCPConn) int {
	rc, err := c.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var n int
	_ = rc.Control(func(fd uintptr) { n, err = unix.IoctlGetInt(int(fd), unix.SIOCINQ) })
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// metric reads one unlabelled series from /metrics ("" when absent).
func metric(t *testing.T, base, name string) string {
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), name+" "); ok {
			return v
		}
	}
	return ""
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
