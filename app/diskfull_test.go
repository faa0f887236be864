//go:build linux

package app_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"notifyrelay/app/apptest"
)

// The data dir's filesystem fills up (a 24 MiB tmpfs, a ballast file written until
// ENOSPC): producers get 507 with a requestError and Retry-After, /readyz says why,
// what was accepted before is still delivered, and once the ballast is removed
// acceptance resumes by itself. After a SIGKILL nothing accepted is missing.
func TestDiskFull(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	mnt := mountTmpfs(t, 24<<20)
	dir := filepath.Join(mnt, "data")
	env := []string{"NOTIFYRELAY_QUEUE_VALUE_LOG_FILE_SIZE=1MiB", "NOTIFYRELAY_QUEUE_MEMTABLE_SIZE=1MiB",
		"NOTIFYRELAY_CHANNELS_POLL_TIMEOUT=1s", "NOTIFYRELAY_DELIVERY_ALLOW_PRIVATE_TARGETS=true"}
	p := apptest.StartProcess(t, apptest.ProcOptions{DataDir: dir, Env: env})
	poll, cb := pollChannel(t, p.URL)
	group := chatGroup(t, p.URL)
	for i := 1; i <= 10; i++ {
		mustStatus(t, postJSON(t, cb, fmt.Sprintf(`{"n":%d}`, i)), 204)
	}

	ballast := fill(t, mnt)
	for name, resp := range map[string]*http.Response{
		"callbackURL": postJSON(t, cb, `{"n":11}`),
		"operator":    postJSON(t, p.URL+"/relay/v1/deliveries?notifyURL=http%3A%2F%2F127.0.0.1%3A9%2Fx", `{"x":1}`),
		"chat":        postChat(t, group),
	} {
		body := mustStatus(t, resp, 507)
		if !strings.Contains(body, "SVC0001") || resp.Header.Get("Retry-After") == "" {
			t.Errorf("%s: 507 without requestError or Retry-After: %q %q", name, resp.Header, body)
		}
	}
	if code, body := get(t, p.URL+"/readyz"); code != 503 || !strings.Contains(body, "disk space") {
		t.Errorf("/readyz with a full disk: %d %q", code, body)
	}
	if got := pollNs(t, poll); fmt.Sprint(got) != "[1 2 3 4 5 6 7 8 9 10]" {
		t.Fatalf("delivery with a full disk: %v", got)
	}

	if err := os.Remove(ballast); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "/readyz after space was freed", func() bool { code, _ := get(t, p.URL+"/readyz"); return code == 200 })
	for i := 11; i <= 15; i++ {
		mustStatus(t, postJSON(t, cb, fmt.Sprintf(`{"n":%d}`, i)), 204)
	}
	p.Kill()

	p2 := apptest.StartProcess(t, apptest.ProcOptions{DataDir: dir, Env: env})
	got := pollNs(t, strings.Replace(poll, p.Addr, p2.Addr, 1))
	if len(got) == 0 || got[len(got)-1] != 15 || got[0] > 11 {
		t.Fatalf("after the restart: %v, want the notifications accepted after the disk filled (11…15), maybe preceded by repeats", got)
	}
}

// mountTmpfs mounts a tmpfs of size bytes on a temp dir, unmounted at cleanup.
func mountTmpfs(t *testing.T, size int) string {
	dir := t.TempDir()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, fmt.Sprintf("size=%d", size)); err != nil {
		t.Skipf("cannot mount a tmpfs (needs root, as in CI): %v", err)
	}
	t.Cleanup(func() { // registered before the processes: runs after they were killed
		if err := syscall.Unmount(dir, syscall.MNT_DETACH); err != nil {
			t.Errorf("unmount %s: %v", dir, err)
		}
	})
	return dir
}

// fill writes a file in dir until the filesystem is full and returns its path.
func fill(t *testing.T, dir string) string {
	path := filepath.Join(dir, "ballast")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 64<<10)
	for {
		if _, err := f.Write(buf); errors.Is(err, syscall.ENOSPC) {
			return path
		} else if err != nil {
			t.Fatal(err)
		}
	}
}

// chatGroup creates a group chat session and returns its messages URL.
func chatGroup(t *testing.T, base string) string {
	resp := postJSON(t, base+"/chat/v1/tel%3A%2B19585550100/group",
		`{"groupChatSessionInformation":{"subject":"Trip","participant":[{"address":"tel:+19585550101","name":"Bob"}]}}`)
	mustStatus(t, resp, 201)
	return resp.Header.Get("Location") + "/messages"
}

func postChat(t *testing.T, messages string) *http.Response {
	resp, err := http.Post(messages, "application/xml", strings.NewReader(`<?xml version="1.0" encoding="UTF-8"?>
<chat:chatSessiondata xmlns:chat="urn:oma:xml:rest:netapi:chat:1"><subject>Full</subject></chat:chatSessiondata>`))
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

// pollNs polls once and returns the n of each notification of the answer.
func pollNs(t *testing.T, url string) []int {
	body := mustStatus(t, postJSON(t, url, ""), 200)
	var list struct{ NotificationList []struct{ N int } }
	if err := json.Unmarshal([]byte(body), &list); err != nil {
		t.Fatalf("poll: %v %.200s", err, body)
	}
	out := []int{}
	for _, n := range list.NotificationList {
		out = append(out, n.N)
	}
	return out
}
