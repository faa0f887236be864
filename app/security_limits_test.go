package app_test

import (
	"bufio"
	"errors"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"notifyrelay/app/apptest"
	"notifyrelay/config"
)

// rawConn is one client connection written to by hand.
type rawConn struct {
	net.Conn
	r *bufio.Reader
}

func dialRaw(t *testing.T, addr string) *rawConn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &rawConn{Conn: c, r: bufio.NewReader(c)}
}

func (c *rawConn) send(t *testing.T, s string) {
	t.Helper()
	if _, err := c.Write([]byte(s)); err != nil {
		t.Fatal(err)
	}
}

// response reads one response: its status and header.
func (c *rawConn) response(t *testing.T) *http.Response {
	t.Helper()
	resp, err := http.ReadResponse(c.r, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp
}

// answered reports whether a response (or the end of the connection) is already
// waiting to be read.
func (c *rawConn) answered() bool {
	c.SetReadDeadline(time.Now().Add(10 * time.Millisecond))
	defer c.SetReadDeadline(time.Time{})
	_, err := c.r.Peek(1)
	var ne net.Error
	return !(errors.As(err, &ne) && ne.Timeout())
}

func post(path, hdr string, length int) string {
	return "POST " + path + " HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n" + hdr +
		"Content-Length: " + strconv.Itoa(length) + "\r\n\r\n"
}

// A request that cannot be served is answered from its headers alone, before its
// body is sent: the body is never waited for, nor held.
func TestRefusedBeforeTheBody(t *testing.T) {
	a := apptest.Start(t, func(c *config.Config) {
		c.Auth.Tokens = []config.Token{{Token: "alice-token-1", User: "alice"}}
	})
	cases := []struct {
		name, req string
		status    int
	}{
		{"no token", post("/chat/v1/alice/group", "", 1<<20), 401},
		{"unknown token", post("/chat/v1/alice/group", "Authorization: Bearer nope-nope\r\n", 1<<20), 401},
		{"unknown path", post("/does-not-exist", "", 1<<20), 404},
		{"unknown callbackURL", post("/notifications/0123456789abcdef0123456789abcdef", "", 1<<20), 404},
		{"over max_body", post("/chat/v1/alice/group", "Authorization: Bearer alice-token-1\r\n", 1<<20+1), 413},
	}
	for _, tc := range cases {
		c := dialRaw(t, a.Addr())
		c.send(t, tc.req+strings.Repeat("x", 9000)) // past what fasthttp reads ahead (8 KiB)
		if resp := c.response(t); resp.StatusCode != tc.status {
			t.Errorf("%s: %d, want %d", tc.name, resp.StatusCode, tc.status)
		}
	}
}

// Bodies in flight are bounded together: while one admitted body is being read,
// another that would go over limits.max_inflight_body gets 503 with Retry-After;
// once the first is done, the second goes through.
func TestInflightBodiesBounded(t *testing.T) {
	a := apptest.Start(t, func(c *config.Config) {
		c.Limits.MaxBody = 64 << 10
		c.Limits.MaxInflightBody = 64 << 10
		c.Limits.MaxConnsPerIP = 0 // the probe below may take many connections
	})
	startSlow := func() *rawConn {
		c := dialRaw(t, a.Addr())
		c.send(t, post("/chat/v1/alice/group", "", 64<<10)+strings.Repeat(" ", 9000))
		return c
	}
	slow := startSlow()
	small := `{"x":1}`
	deadline := time.Now().Add(30 * time.Second)
	var resp *http.Response
	for {
		c := dialRaw(t, a.Addr())
		c.send(t, post("/chat/v1/alice/group", "", len(small))+small)
		resp = c.response(t)
		c.Close()
		if resp.StatusCode == 503 || time.Now().After(deadline) {
			break
		}
		if slow.answered() {
			// A probe was admitted first and the slow body was the one refused:
			// the server ran the two connections in the other order. Start again.
			slow = startSlow()
		}
		time.Sleep(10 * time.Millisecond)
	}
	if resp.StatusCode != 503 || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("with the budget taken: %d, Retry-After %q", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	slow.send(t, strings.Repeat(" ", 64<<10-9000))
	if resp := slow.response(t); resp.StatusCode != 400 {
		t.Fatalf("the slow body: %d", resp.StatusCode)
	}
	c := dialRaw(t, a.Addr())
	c.send(t, post("/chat/v1/alice/group", "", len(small))+small)
	if resp := c.response(t); resp.StatusCode != 400 {
		t.Fatalf("after the budget came back: %d", resp.StatusCode)
	}
}

// A chunked body is cut at limits.max_body too.
func TestChunkedBodyBounded(t *testing.T) {
	a := apptest.Start(t, func(c *config.Config) { c.Limits.MaxBody = 4096 })
	c := dialRaw(t, a.Addr())
	c.send(t, "POST /chat/v1/alice/group HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n")
	chunk := strings.Repeat("x", 1000)
	for range 5 {
		c.send(t, "3e8\r\n"+chunk+"\r\n")
	}
	if resp := c.response(t); resp.StatusCode != 413 {
		t.Fatalf("%d, want 413", resp.StatusCode)
	}
}

// limits.max_conns_per_ip: the connection over it is refused with 429.
func TestConnectionsPerIPBounded(t *testing.T) {
	a := apptest.Start(t, func(c *config.Config) { c.Limits.MaxConnsPerIP = 3 })
	for range 3 {
		c := dialRaw(t, a.Addr())
		c.send(t, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
		if resp := c.response(t); resp.StatusCode != 200 {
			t.Fatalf("within the limit: %d", resp.StatusCode)
		}
	}
	c := dialRaw(t, a.Addr())
	c.send(t, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
	if resp := c.response(t); resp.StatusCode != 429 {
		t.Fatalf("over the limit: %d, want 429", resp.StatusCode)
	}
}
