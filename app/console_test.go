package app_test

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"notifyrelay/app/apptest"
	"notifyrelay/config"
)

func getAs(t *testing.T, url, token string) (int, http.Header, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(b)
}

// The console is on listen when admin_listen is off; its files need no token,
// the numbers it reads need the operator token.
func TestConsoleOnListen(t *testing.T) {
	a := apptest.Start(t, func(c *config.Config) {
		c.Auth.Tokens = []config.Token{{Token: "operator-tok", Operator: true}, {Token: "alice-token", User: "alice"}}
	})
	base := apptest.URL(a)
	st, h, body := getAs(t, base+"/console/", "")
	if st != 200 || !strings.Contains(body, "console.js") || !strings.Contains(h.Get("Content-Security-Policy"), "default-src 'self'") {
		t.Fatalf("/console/: %d %s %q", st, h, body)
	}
	if st, h, _ := getAs(t, base+"/console/console.js", ""); st != 200 || !strings.Contains(h.Get("Content-Type"), "javascript") {
		t.Errorf("console.js: %d %s", st, h.Get("Content-Type"))
	}
	for _, p := range []string{"/console/nope.js", "/console/../docs/docs.go", "/console/static/index.html"} {
		if st, _, _ := getAs(t, base+p, ""); st != 404 {
			t.Errorf("%s: %d", p, st)
		}
	}
	if st, _, _ := getAs(t, base+"/relay/v1/stats", "alice-token"); st != 403 {
		t.Errorf("stats with a user token: %d", st)
	}
	st, _, body = getAs(t, base+"/relay/v1/stats", "operator-tok")
	if st != 200 || !strings.Contains(body, `"queueDepth"`) {
		t.Errorf("stats: %d %s", st, body)
	}
}

// With admin_listen, the console and the operator API it calls are served there
// (one origin), and the console is no longer on listen.
func TestConsoleOnAdminListen(t *testing.T) {
	a := apptest.Start(t, func(c *config.Config) {
		c.AdminListen = "127.0.0.1:0"
		c.Auth.Tokens = []config.Token{{Token: "operator-tok", Operator: true}}
	})
	admin := "http://" + a.AdminAddr()
	if st, _, _ := getAs(t, admin+"/console/", ""); st != 200 {
		t.Errorf("console on admin_listen: %d", st)
	}
	if st, _, body := getAs(t, admin+"/relay/v1/destinations", "operator-tok"); st != 200 || !strings.Contains(body, `"destinations"`) {
		t.Errorf("operator API on admin_listen: %d %s", st, body)
	}
	if st, _, _ := getAs(t, admin+"/relay/v1/destinations", ""); st != 401 {
		t.Errorf("operator API on admin_listen without a token: %d", st)
	}
	if st, _, _ := getAs(t, apptest.URL(a)+"/console/", ""); st != 404 {
		t.Errorf("console on listen with admin_listen set: %d", st)
	}
}
