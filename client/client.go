// Package client receives notifications from a notifyrelay notification channel,
// for clients that cannot take webhooks (behind NAT): it creates or reuses the
// channel, holds a WebSocket to it (acknowledged or OMA mode) or long-polls it,
// hands each notification to a handler in order, acknowledges it once the handler
// returned, reconnects with jittered backoff, resumes where it stopped, keeps the
// channel's lifetime running and reports gaps. docs/clients.md is its guide.
//
//	c := client.New(client.Options{BaseURL: "http://127.0.0.1:8080", Token: "alice-token"})
//	ch, err := c.CreateChannel(ctx, client.ChannelSpec{ClientCorrelator: "alice-phone"})
//	// subscribe with ch.CallbackURL as notifyURL, then:
//	err = c.Receive(ctx, ch, client.ReceiveOptions{Handler: func(ctx context.Context, n client.Notification) error {
//		return store(n.Seq, n.Body) // acknowledged once this returns nil
//	}})
package client

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// Options configures a Client.
type Options struct {
	BaseURL    string       // public_url plus base_path, e.g. "http://127.0.0.1:8080"
	Token      string       // bearer token; "" when the server has authentication off
	HTTPClient *http.Client // for channel resources and long polls; default: one without a timeout (each call has its own)
}

// Client talks to one notifyrelay server. Safe for concurrent use.
type Client struct {
	base  string
	token string
	hc    *http.Client
}

// New returns a Client for o.
func New(o Options) *Client {
	hc := o.HTTPClient
	if hc == nil {
		hc = &http.Client{}
	}
	return &Client{base: strings.TrimRight(o.BaseURL, "/"), token: o.Token, hc: hc}
}

// ErrChannelGone is returned (wrapped in a StatusError) when the channel does not
// exist any more: deleted, or expired after its lifetime ran out.
var ErrChannelGone = errors.New("notification channel gone")

// StatusError is an answer the client cannot go on from.
type StatusError struct {
	Method, URL string
	Status      int
	Body        string // the start of the answer (an OMA requestError)
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("%s %s: status %d: %s", e.Method, redact(e.URL), e.Status, e.Body)
}

// Is makes errors.Is(err, ErrChannelGone) true for a 404.
func (e *StatusError) Is(target error) bool {
	return target == ErrChannelGone && e.Status == http.StatusNotFound
}

// redact drops the query (it may hold access_token) and the last path segment
// of a callbackURL (a capability) from URLs put in errors.
func redact(u string) string {
	u, _, _ = strings.Cut(u, "?")
	if i := strings.Index(u, "/notifications/"); i >= 0 {
		return u[:i] + "/notifications/…"
	}
	return u
}

// do sends one request to url (absolute, or a path under BaseURL) and reads the
// whole answer (a long poll counts as received only once read to its end).
func (c *Client) do(ctx context.Context, method, url string, body []byte) (int, []byte, error) {
	if !strings.Contains(url, "://") {
		url = c.base + url
	}
	var rd io.Reader
	if body != nil {
		rd = strings.NewReader(string(body))
	}
	req, err := http.NewRequestWithContext(ctx, method, url, rd)
	if err != nil {
		return 0, nil, fmt.Errorf("%s %s: %w", method, redact(url), err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json, application/xml")
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return 0, nil, fmt.Errorf("%s %s: %w", method, redact(url), err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return resp.StatusCode, nil, fmt.Errorf("%s %s: %w", method, redact(url), err)
	}
	return resp.StatusCode, b, nil
}

func statusError(method, url string, status int, body []byte) *StatusError {
	s := string(body)
	if len(s) > 300 {
		s = s[:300]
	}
	return &StatusError{Method: method, URL: url, Status: status, Body: s}
}
