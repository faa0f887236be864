//go:build linux

package bridge_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
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
	waitFor(t, "the answer to reach the client's buffer", func() bool { return inQueue(t, c) > 0 })
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
	waitFor(t, "the answer acknowledged", func() bool { return metric(t, p2.URL, "notifyrelay_channel_acks_total") == "1" })
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

// A long-poll answer is bounded by channels.max_answer_bytes and streamed: with
// 200 notifications of 1 MB queued, one poll allowing 1,024 of them does not grow
// the server's memory by the batch (it grew by twice the batch when answers were
// built whole: issue 16 F4, 800 × 1 MB → 3.9 GB).
func TestLongPollAnswerMemoryBounded(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	p := apptest.StartProcess(t, apptest.ProcOptions{DataDir: t.TempDir()})
	resp, err := http.Post(p.URL+"/notificationchannel/v1/alice/channels", "application/json",
		strings.NewReader(`{"notificationChannel":{"channelType":"LongPolling","channelData":{"maxNotifications":1024}}}`))
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		NotificationChannel struct {
			ChannelData struct{ ChannelURL string }
			CallbackURL string
		}
	}
	if err := json.NewDecoder(resp.Body).Decode(&doc); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	body := `{"n":"` + strings.Repeat("x", 999_990) + `"}`
	for range 200 {
		postBody(t, doc.NotificationChannel.CallbackURL, body)
	}
	status := "/proc/" + fmt.Sprint(p.Pid()) + "/status"
	if err := os.WriteFile("/proc/"+fmt.Sprint(p.Pid())+"/clear_refs", []byte("5"), 0); err != nil {
		t.Skipf("cannot reset the peak RSS: %v", err)
	}
	before := procKiB(t, status, "VmRSS")
	resp, err = http.Post(doc.NotificationChannel.ChannelData.ChannelURL, "application/json", nil)
	if err != nil {
		t.Fatal(err)
	}
	answer, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	peak := procKiB(t, status, "VmHWM")
	t.Logf("answer %d bytes; RSS %d MiB before the poll, peak %d MiB during it", len(answer), before>>10, peak>>10)
	if n := strings.Count(string(answer), `{"n":`); n != 1 {
		t.Errorf("answer carries %d notifications of 1 MB, want 1 (max_answer_bytes 1 MiB)", n)
	}
	if peak-before > 64<<10 {
		t.Errorf("peak RSS grew by %d MiB during one poll", (peak-before)>>10)
	}
}

// procKiB reads one "Name: N kB" line of /proc/PID/status.
func procKiB(t *testing.T, path, name string) int {
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, name+":"); ok {
			var n int
			fmt.Sscanf(strings.TrimSpace(v), "%d", &n)
			return n
		}
	}
	t.Fatalf("%s not in %s", name, path)
	return 0
}
