package loadtest

import (
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"strings"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"
)

// client is the tool's HTTP side: every request goes to the target with the bearer
// token; with several targets (nodes of one deployment), to each in turn. Safe for
// concurrent use.
type client struct {
	bases   []string // target URLs without a trailing slash
	next    atomic.Uint64
	token   string
	timeout time.Duration
	hc      *fasthttp.Client
}

func newClient(target, token string, conns int, timeout time.Duration) *client {
	hc := &fasthttp.Client{
		Name:                          "notifyrelay-loadtest",
		MaxConnsPerHost:               conns,
		MaxIdleConnDuration:           time.Minute,
		ReadTimeout:                   timeout,
		WriteTimeout:                  timeout,
		NoDefaultUserAgentHeader:      true,
		DisableHeaderNamesNormalizing: false,
		MaxConnWaitTimeout:            timeout,
	}
	c := &client{token: token, timeout: timeout, hc: hc}
	for _, t := range targets(target) {
		c.bases = append(c.bases, strings.TrimRight(t, "/"))
	}
	return c
}

// targets splits --target's comma-separated list.
func targets(target string) []string {
	var out []string
	for _, t := range strings.Split(target, ",") {
		if t = strings.TrimSpace(t); t != "" {
			out = append(out, t)
		}
	}
	return out
}

// firstTarget is the first of --target's URLs: where the tool finds /metrics and
// /readyz.
func firstTarget(target string) string {
	if t := targets(target); len(t) > 0 {
		return t[0]
	}
	return target
}

// base is the target the next request goes to.
func (c *client) base() string {
	return c.bases[int(c.next.Add(1)%uint64(len(c.bases)))]
}

// response is what the tool keeps of an answer.
type response struct {
	Status   int
	Location string
	Body     []byte
}

// do sends one request to base+path (or to path when it is absolute).
func (c *client) do(method, path, contentType string, body []byte) (response, error) {
	req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	u := path
	if !strings.Contains(path, "://") {
		u = c.base() + path
	}
	req.SetRequestURI(u)
	req.Header.SetMethod(method)
	req.Header.Set("Accept", "application/json")
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	if body != nil {
		req.Header.SetContentType(contentType)
		req.SetBody(body)
	}
	if err := c.hc.DoTimeout(req, resp, c.timeout); err != nil {
		return response{}, fmt.Errorf("%s %s: %w", method, redact(u), err)
	}
	return response{Status: resp.StatusCode(), Location: string(resp.Header.Peek("Location")),
		Body: append([]byte(nil), resp.Body()...)}, nil
}

// expect sends a request and turns any status but want into an error.
func (c *client) expect(want int, method, path, contentType string, body []byte) (response, error) {
	r, err := c.do(method, path, contentType, body)
	if err != nil {
		return r, err
	}
	if r.Status != want {
		return r, &statusError{Method: method, Path: redact(path), Status: r.Status, Body: r.Body}
	}
	return r, nil
}

// statusError is an unexpected HTTP status, with the OMA messageId when there is one.
type statusError struct {
	Method, Path string
	Status       int
	Body         []byte
}

func (e *statusError) Error() string {
	return fmt.Sprintf("%s %s: %s (%s)", e.Method, e.Path, e.kind(), snippet(e.Body))
}

var messageIDRE = regexp.MustCompile(`(?:"messageId"\s*:\s*"|<messageId>)([A-Z]{3}[0-9]{4})`)

func (e *statusError) kind() string {
	k := fmt.Sprintf("http %d", e.Status)
	if m := messageIDRE.FindSubmatch(e.Body); m != nil {
		k += " " + string(m[1])
	}
	return k
}

// errorKind names an error for the report's "errors by kind".
func errorKind(err error) string {
	var se *statusError
	switch {
	case errors.As(err, &se):
		return se.kind()
	case errors.Is(err, fasthttp.ErrTimeout), errors.Is(err, fasthttp.ErrDialTimeout):
		return "timeout"
	case errors.Is(err, fasthttp.ErrNoFreeConns), errors.Is(err, fasthttp.ErrConnectionClosed):
		return "connection"
	case strings.Contains(err.Error(), "refused"):
		return "connection refused"
	}
	return "transport"
}

func snippet(b []byte) string {
	s := strings.Join(strings.Fields(string(b)), " ")
	if len(s) > 160 {
		s = s[:160] + "…"
	}
	return s
}

// redact drops the query string, which may hold a token.
func redact(u string) string {
	s, _, _ := strings.Cut(u, "?")
	return s
}

// escapeUser percent-encodes a userId as OMA URLs carry it (tel%3A%2B1…).
func escapeUser(u string) string { return url.QueryEscape(u) }

// lastSegment is the id at the end of a resource URL.
func lastSegment(u string) string {
	u = strings.TrimRight(redact(u), "/")
	return u[strings.LastIndexByte(u, '/')+1:]
}
