package delivery

import (
	"errors"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/valyala/fasthttp"
)

// outcome is what one webhook attempt means for the head of its destination.
type outcome int

const (
	delivered outcome = iota // any 2xx: acknowledge
	retry                    // transient: try again after backoff
	dead                     // permanent: dead-letter now
)

// verdict classifies an attempt. reason is the metric label and log word.
type verdict struct {
	outcome outcome
	reason  string
}

// statusTable is the one place that says what a response status means; the first
// range containing the status wins. Like alertmanager's Retrier: the notifier says
// whether to retry, and a table test covers every status from 100 to 599.
var statusTable = []struct {
	lo, hi int
	v      verdict
}{
	{200, 299, verdict{delivered, "delivered"}},
	{300, 399, verdict{dead, "redirect"}}, // redirects are never followed
	{408, 408, verdict{retry, "status_408"}},
	{410, 410, verdict{dead, "gone"}}, // also ends a chat subscription
	{429, 429, verdict{retry, "status_429"}},
	{400, 499, verdict{dead, "status_4xx"}},
	{500, 599, verdict{retry, "status_5xx"}},
	// A final 1xx (or a status outside 100-599) is a broken server, which may
	// recover: retried.
	{100, 199, verdict{retry, "status_1xx"}},
}

// classifyStatus maps a response status to its verdict.
func classifyStatus(status int) verdict {
	for _, row := range statusTable {
		if status >= row.lo && status <= row.hi {
			return row.v
		}
	}
	return verdict{retry, "status_invalid"}
}

// classifyError maps a failed exchange (no response) to its verdict: a target the
// SSRF guard refuses is dead at once; timeouts and connection errors are retried.
func classifyError(err error) verdict {
	var ne net.Error
	switch {
	case errors.Is(err, errBlockedTarget):
		return verdict{dead, "blocked_target"}
	case errors.Is(err, fasthttp.ErrTimeout), errors.Is(err, fasthttp.ErrDialTimeout),
		errors.As(err, &ne) && ne.Timeout():
		return verdict{retry, "timeout"}
	}
	return verdict{retry, "connection"}
}

// backoff is exponential backoff with full jitter: a uniform wait in
// [0, min(max, initial·2^(failures-1))]. failures counts the failed attempts so
// far, starting at 1.
func backoff(failures int, initial, max time.Duration) time.Duration {
	ceiling := initial
	for i := 1; i < failures && ceiling < max; i++ {
		ceiling *= 2
	}
	ceiling = min(ceiling, max)
	return time.Duration(rand.Int64N(int64(ceiling) + 1))
}

// parseRetryAfter reads a Retry-After header (delay seconds or an HTTP-date)
// relative to now. ok is false when the header is absent or unreadable; a date in
// the past means "now".
func parseRetryAfter(h string, now time.Time) (time.Duration, bool) {
	h = strings.TrimSpace(h)
	if h == "" {
		return 0, false
	}
	if secs, err := strconv.ParseInt(h, 10, 64); err == nil {
		if secs < 0 {
			return 0, false
		}
		return time.Duration(min(secs, int64(365*24*time.Hour/time.Second))) * time.Second, true
	}
	t, err := http.ParseTime(h)
	if err != nil {
		return 0, false
	}
	return max(t.Sub(now), 0), true
}
