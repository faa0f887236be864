package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"net"
	"testing"

	"github.com/rs/zerolog"
	"github.com/valyala/fasthttp"
	"github.com/valyala/fasthttp/fasthttputil"

	"notifyrelay/config"
	"notifyrelay/oma"
)

// serve runs the router on an in-memory listener; the client speaks real HTTP/1.1.
func serve(t *testing.T, r *Router) *fasthttp.Client {
	ln := fasthttputil.NewInmemoryListener()
	srv := &fasthttp.Server{Handler: func(ctx *fasthttp.RequestCtx) {
		if !r.Serve(ctx) {
			ctx.SetStatusCode(404)
		}
	}}
	go srv.Serve(ln) //nolint:errcheck // ends when ln closes
	t.Cleanup(func() { ln.Close() })
	return &fasthttp.Client{DisablePathNormalizing: true, Dial: func(string) (net.Conn, error) { return ln.Dial() }}
}

func do(t *testing.T, c *fasthttp.Client, method, path string, hdr map[string]string) *fasthttp.Response {
	req := fasthttp.AcquireRequest()
	req.SetRequestURI("http://x" + path)
	req.Header.SetMethod(method)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp := &fasthttp.Response{}
	if err := c.Do(req, resp); err != nil {
		t.Fatal(err)
	}
	return resp
}

func TestRouterDecodesSegmentsAndAnswers405WithAllow(t *testing.T) {
	r := NewRouter(nil, zerolog.Nop())
	var got Params
	r.Handle("/chat/v1/{userId}/group/{sessionId}", ForAnyone, Methods{
		"GET":    func(r *Request) (Answer, *oma.RequestError) { got = r.Params; return OK(nil), nil },
		"DELETE": func(r *Request) (Answer, *oma.RequestError) { return NoContent(), nil },
	})
	c := serve(t, r)
	if resp := do(t, c, "GET", "/chat/v1/tel%3A%2B19585550100/group/s%2F1", nil); resp.StatusCode() != 200 {
		t.Fatalf("GET status %d", resp.StatusCode())
	}
	if got["userId"] != "tel:+19585550100" || got["sessionId"] != "s/1" {
		t.Errorf("params %v", got)
	}
	do(t, c, "GET", "/chat/v1/tel:+19585550100/group/s1", nil)
	if got["userId"] != "tel:+19585550100" {
		t.Errorf("raw userId: %v", got)
	}
	resp := do(t, c, "PUT", "/chat/v1/u/group/s1", map[string]string{"Accept": "application/xml"})
	if resp.StatusCode() != 405 || string(resp.Header.Peek("Allow")) != "DELETE, GET" {
		t.Errorf("PUT: %d Allow %q", resp.StatusCode(), resp.Header.Peek("Allow"))
	}
	if !bytes.Contains(resp.Body(), []byte("<common:requestError")) {
		t.Errorf("405 body not an XML requestError: %s", resp.Body())
	}
	if resp := do(t, c, "GET", "/chat/v1/u/group", nil); resp.StatusCode() != 404 {
		t.Errorf("unknown route: %d", resp.StatusCode())
	}
}

func TestNegotiate(t *testing.T) {
	cases := []struct {
		accept, contentType string
		want                string
		status              int
	}{
		{"", "", "application/json", 0},
		{"application/xml", "application/json", "application/xml", 0},
		{"", "application/xml; charset=utf-8", "application/xml", 0},
		{"text/html, application/json;q=0.9", "", "application/json", 0},
		{"*/*", "application/xml", "application/xml", 0},
		{"image/png", "", "application/json", 406},
	}
	for _, c := range cases {
		var ctx fasthttp.RequestCtx
		ctx.Request.Header.Set("Accept", c.accept)
		ctx.Request.Header.SetContentType(c.contentType)
		f, err := Negotiate(&ctx)
		status := 0
		if err != nil {
			status = err.Status
		}
		if f.ContentType() != c.want || status != c.status {
			t.Errorf("Accept %q CT %q: %s %d, want %s %d", c.accept, c.contentType, f.ContentType(), status, c.want, c.status)
		}
	}
}

func TestAuth(t *testing.T) {
	a := NewAuth([]config.Token{{Token: "alice-token", User: "tel:+1"}, {Token: "operator-token", Operator: true}})
	cases := []struct {
		header, user, want string
		status             int
	}{
		{"Bearer alice-token", "tel:+1", "tel:+1", 0},
		{"bearer alice-token", "acr:auth", "tel:+1", 0},
		{"Bearer alice-token", "tel:+2", "", 403},
		{"Bearer operator-token", "tel:+2", "tel:+2", 0},
		{"Bearer nope", "tel:+1", "", 401},
		{"", "tel:+1", "", 401},
		{"Basic alice-token", "tel:+1", "", 401},
	}
	for _, c := range cases {
		var ctx fasthttp.RequestCtx
		ctx.Request.Header.Set("Authorization", c.header)
		got, err := a.ActAs(&ctx, c.user)
		status := 0
		if err != nil {
			status = err.Status
		}
		if got != c.want || status != c.status {
			t.Errorf("%q as %s: %q %d, want %q %d", c.header, c.user, got, status, c.want, c.status)
		}
	}
}

func TestFailWritesJSONRequestErrorAndChallenge(t *testing.T) {
	var ctx fasthttp.RequestCtx
	a := NewAuth([]config.Token{{Token: "operator-token", Operator: true}})
	_, e := a.ActAs(&ctx, "u")
	Fail(&ctx, e)
	var doc struct {
		RequestError struct {
			ServiceException struct{ MessageID string } `json:"serviceException"`
		} `json:"requestError"`
	}
	if err := json.Unmarshal(ctx.Response.Body(), &doc); err != nil || doc.RequestError.ServiceException.MessageID != "SVC2003" {
		t.Errorf("body %s: %v", ctx.Response.Body(), err)
	}
	if ctx.Response.StatusCode() != 401 || len(ctx.Response.Header.Peek("WWW-Authenticate")) == 0 {
		t.Errorf("status %d, WWW-Authenticate %q", ctx.Response.StatusCode(), ctx.Response.Header.Peek("WWW-Authenticate"))
	}
}

// One handler shape: the opening runs before every handler of a route, faults are
// rendered in the opening's format, and a 5xx's cause is logged, never sent.
func TestHandlerShape(t *testing.T) {
	var log bytes.Buffer
	r := NewRouter(nil, zerolog.New(&log))
	a := NewAuth([]config.Token{{Token: "alice-token", User: "alice"}, {Token: "operator-token", Operator: true}})
	ran := 0
	r.Handle("/relay/v1/x", ForOperator(a), Methods{"GET": func(*Request) (Answer, *oma.RequestError) {
		ran++
		return Answer{}, oma.Unavailable().Because(errors.New("disk on fire"))
	}})
	r.Handle("/chat/v1/{userId}/x", ForUser(a), Methods{"POST": func(q *Request) (Answer, *oma.RequestError) {
		ran++
		return Created("/where", []byte(q.User)), nil
	}})
	c := serve(t, r)
	xml := map[string]string{"Authorization": "Bearer alice-token", "Accept": "application/xml"}
	if resp := do(t, c, "GET", "/relay/v1/x", xml); resp.StatusCode() != 403 || !bytes.HasPrefix(resp.Body(), []byte("{")) || ran != 0 {
		t.Errorf("user token on the operator API: %d %s (handler ran %d)", resp.StatusCode(), resp.Body(), ran)
	}
	resp := do(t, c, "GET", "/relay/v1/x", map[string]string{"Authorization": "Bearer operator-token"})
	if resp.StatusCode() != 503 || bytes.Contains(resp.Body(), []byte("fire")) || !bytes.Contains(log.Bytes(), []byte("disk on fire")) {
		t.Errorf("503: %s; log %s", resp.Body(), log.Bytes())
	}
	resp = do(t, c, "POST", "/chat/v1/acr:auth/x", xml)
	if resp.StatusCode() != 201 || string(resp.Header.Peek("Location")) != "/where" || string(resp.Body()) != "alice" ||
		string(resp.Header.ContentType()) != "application/xml" {
		t.Errorf("201: %d %q %s %s", resp.StatusCode(), resp.Header.Peek("Location"), resp.Body(), resp.Header.ContentType())
	}
	if resp := do(t, c, "POST", "/chat/v1/bob/x", xml); resp.StatusCode() != 403 || !bytes.Contains(resp.Body(), []byte("<common:requestError")) {
		t.Errorf("alice as bob: %d %s", resp.StatusCode(), resp.Body())
	}
}
