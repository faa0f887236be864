package delivery

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"notifyrelay/config"
)

// wantStatus is the expected verdict of every status 100-599, written out by class
// and exception so the table in classify.go is checked against a second statement.
func wantStatus(s int) outcome {
	switch {
	case s >= 200 && s <= 299:
		return delivered
	case s == 408 || s == 429:
		return retry
	case s >= 300 && s <= 499:
		return dead
	}
	return retry // 1xx and 5xx
}

func TestClassifyEveryStatus(t *testing.T) {
	for s := 100; s <= 599; s++ {
		got := classifyStatus(s)
		if got.outcome != wantStatus(s) {
			t.Errorf("status %d: outcome %d, want %d", s, got.outcome, wantStatus(s))
		}
		if got.reason == "" {
			t.Errorf("status %d: no reason", s)
		}
	}
	for s, reason := range map[int]string{410: "gone", 301: "redirect", 307: "redirect", 503: "status_5xx", 429: "status_429", 404: "status_4xx"} {
		if got := classifyStatus(s).reason; got != reason {
			t.Errorf("status %d: reason %q, want %q", s, got, reason)
		}
	}
	if v := classifyStatus(600); v.outcome != retry {
		t.Errorf("status 600: %+v", v)
	}
}

func TestClassifyErrors(t *testing.T) {
	cases := []struct {
		err  error
		want verdict
	}{
		{fmt.Errorf("dial: %w", errBlockedTarget), verdict{dead, "blocked_target"}},
		{&net.OpError{Op: "dial", Err: fmt.Errorf("x: %w", errBlockedTarget)}, verdict{dead, "blocked_target"}},
		{fasthttp.ErrTimeout, verdict{retry, "timeout"}},
		{fasthttp.ErrDialTimeout, verdict{retry, "timeout"}},
		{errors.New("connection refused"), verdict{retry, "connection"}},
		{fasthttp.ErrConnectionClosed, verdict{retry, "connection"}},
	}
	for _, c := range cases {
		if got := classifyError(c.err); got != c.want {
			t.Errorf("%v: %+v, want %+v", c.err, got, c.want)
		}
	}
}

func TestBackoffFullJitterBounds(t *testing.T) {
	initial, maxWait := 100*time.Millisecond, 2*time.Second
	for failures := 1; failures <= 20; failures++ {
		ceiling := min(initial<<(failures-1), maxWait)
		if failures > 10 {
			ceiling = maxWait
		}
		for range 200 {
			if d := backoff(failures, initial, maxWait); d < 0 || d > ceiling {
				t.Fatalf("failures %d: %v outside [0, %v]", failures, d, ceiling)
			}
		}
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	cases := []struct {
		h    string
		want time.Duration
		ok   bool
	}{
		{"", 0, false},
		{"7", 7 * time.Second, true},
		{" 0 ", 0, true},
		{"-3", 0, false},
		{"soon", 0, false},
		{now.Add(90 * time.Second).Format(http.TimeFormat), 90 * time.Second, true},
		{"Fri, 01 May 2026 12:00:30 GMT", 30 * time.Second, true},
		{"Friday, 01-May-26 12:00:10 GMT", 10 * time.Second, true},
		{"Fri May  1 12:00:05 2026", 5 * time.Second, true},
		{"Fri, 01 May 2026 11:00:00 GMT", 0, true}, // in the past: now
	}
	for _, c := range cases {
		got, ok := parseRetryAfter(c.h, now)
		if got != c.want || ok != c.ok {
			t.Errorf("%q: %v %v, want %v %v", c.h, got, ok, c.want, c.ok)
		}
	}
}

// retryWait honours Retry-After beyond backoff.max, up to retry_after_max, and never
// schedules past max_age.
func TestRetryWait(t *testing.T) {
	cfg := config.Delivery{Backoff: config.Backoff{Initial: config.Duration(100 * time.Millisecond), Max: config.Duration(500 * time.Millisecond)},
		MaxAge: config.Duration(24 * time.Hour), RetryAfterMax: config.Duration(time.Hour)}
	asked := func(d time.Duration) try { return try{wait: d, hasWait: true} }
	cases := []struct {
		name   string
		mod    func(*config.Delivery)
		t      try
		age    time.Duration
		lo, hi time.Duration
	}{
		{"backoff without Retry-After", nil, try{}, 0, 0, 100 * time.Millisecond},
		{"Retry-After above backoff.max", nil, asked(time.Second), 0, time.Second, time.Second},
		{"Retry-After 0", nil, asked(0), 0, 0, 0},
		{"capped at retry_after_max", nil, asked(48 * time.Hour), 0, time.Hour, time.Hour},
		{"capped at what max_age leaves", nil, asked(time.Hour), 23*time.Hour + 50*time.Minute, 10 * time.Minute, 10 * time.Minute},
		{"past max_age: at once", nil, asked(time.Hour), 25 * time.Hour, 0, 0},
		{"max_age 0 is no limit", func(d *config.Delivery) { d.MaxAge = 0 }, asked(time.Hour), 100 * time.Hour, time.Hour, time.Hour},
		{"retry_after_max 0 ignores it", func(d *config.Delivery) { d.RetryAfterMax = 0 }, asked(time.Hour), 0, 0, 100 * time.Millisecond},
	}
	for _, c := range cases {
		d := cfg
		if c.mod != nil {
			c.mod(&d)
		}
		for range 50 {
			if got := retryWait(d, 1, c.t, c.age); got < c.lo || got > c.hi {
				t.Fatalf("%s: %v outside [%v, %v]", c.name, got, c.lo, c.hi)
			}
		}
	}
}
