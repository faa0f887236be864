package app_test

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"notifyrelay/app/apptest"
)

// Issue 16, F2: fasthttp's own error lines printed the partial request, bearer
// token and callbackURL capability included. A request cut off in its headers is
// logged (at debug) without them, on stdout and stderr alike.
func TestCutRequestLogsNoSecret(t *testing.T) {
	const secret = "dave-secret-token"
	const capability = "0123456789abcdef0123456789abcdef"
	dir := t.TempDir()
	cfgFile := filepath.Join(dir, "cfg.yaml")
	cfg := "auth:\n  tokens:\n    - token: " + secret + "\n      user: dave\n"
	if err := os.WriteFile(cfgFile, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	out := &apptest.Output{}
	p := apptest.StartProcess(t, apptest.ProcOptions{DataDir: filepath.Join(dir, "data"),
		Args: []string{"--config", cfgFile, "--log-level", "debug"}, Output: out})
	cut := []string{
		"POST /chat/v1/dave/group HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + secret + "\r\n",
		"POST /notifications/" + capability + " HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n",
		"GET /notificationchannel/v1/dave/channels/x/ws?access_token=" + secret + " HTTP/1.1\r\nHost: x\r\n",
	}
	for _, req := range cut {
		sendAndClose(t, p.Addr, req)
	}
	deadline := time.Now().Add(30 * time.Second)
	for strings.Count(out.String(), "error when reading request headers") < len(cut) {
		if time.Now().After(deadline) {
			t.Fatalf("the cut requests were not logged:\n%s", out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	for _, s := range []string{secret, capability} {
		if strings.Contains(out.String(), s) {
			t.Errorf("the output names %s:\n%s", s, out.String())
		}
	}
}

func sendAndClose(t *testing.T, addr, data string) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Write([]byte(data)); err != nil {
		t.Fatal(err)
	}
	c.Close()
}
