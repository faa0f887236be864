package app_test

import (
	"net/http"
	"strings"
	"testing"

	"notifyrelay/app/apptest"
	"notifyrelay/config"
)

// Pages from channels.allowed_origins get CORS answers on the user APIs: a
// preflight is answered without a token, the real request's answer may be read.
// Other origins and the operator API get no CORS headers.
func TestCORS(t *testing.T) {
	a := apptest.Start(t, func(c *config.Config) {
		c.Auth.Tokens = []config.Token{{Token: "alice-token-1", User: "alice"}, {Token: "op-token-1", Operator: true}}
		c.Channels.AllowedOrigins = []string{"https://app.example"}
	})
	base := apptest.URL(a)
	do := func(method, path, origin string, hdr map[string]string) *http.Response {
		t.Helper()
		body := ""
		if method == "POST" {
			body = `{"notificationChannel":{"channelType":"LongPolling"}}`
		}
		req, _ := http.NewRequest(method, base+path, strings.NewReader(body))
		req.Header.Set("Origin", origin)
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	preflight := map[string]string{"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "authorization,content-type"}
	token := map[string]string{"Authorization": "Bearer alice-token-1", "Content-Type": "application/json"}
	const channels = "/notificationchannel/v1/alice/channels"
	cases := []struct {
		name, method, path, origin string
		hdr                        map[string]string
		status                     int
		allow                      string
	}{
		{"preflight, allowed origin", "OPTIONS", channels, "https://app.example", preflight, 204, "https://app.example"},
		{"preflight, chat API", "OPTIONS", "/chat/v1/alice/group", "https://APP.example", preflight, 204, "https://APP.example"},
		{"request, allowed origin", "POST", channels, "https://app.example", token, 201, "https://app.example"},
		{"preflight, other origin", "OPTIONS", channels, "https://evil.example", preflight, 405, ""},
		{"request, other origin", "POST", channels, "https://evil.example", token, 201, ""},
		{"preflight, operator API", "OPTIONS", "/relay/v1/deliveries", "https://app.example", preflight, 405, ""},
	}
	for _, tc := range cases {
		resp := do(tc.method, tc.path, tc.origin, tc.hdr)
		if resp.StatusCode != tc.status || resp.Header.Get("Access-Control-Allow-Origin") != tc.allow {
			t.Errorf("%s: %d, Allow-Origin %q; want %d, %q", tc.name, resp.StatusCode, resp.Header.Get("Access-Control-Allow-Origin"), tc.status, tc.allow)
		}
	}
	resp := do("OPTIONS", channels, "https://app.example", preflight)
	if !strings.Contains(resp.Header.Get("Access-Control-Allow-Headers"), "Authorization") || resp.Header.Get("Vary") != "Origin" {
		t.Errorf("preflight headers: %v", resp.Header)
	}
	resp = do("POST", channels, "https://app.example", token)
	if !strings.Contains(resp.Header.Get("Access-Control-Expose-Headers"), "Location") {
		t.Errorf("the page cannot read Location: %v", resp.Header)
	}
}
