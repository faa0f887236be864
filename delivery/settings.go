package delivery

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/textproto"
	"strings"
	"time"

	"notifyrelay/config"
	"notifyrelay/queue"
)

// A destination's settings (PUT /relay/v1/destinations/{id}) are records:
//
//	dlv/c/<dest>   its rate limit and custom headers
const keySettings = "dlv/c/"

// Bounds of custom headers.
const (
	maxCustomHeaders = 32
	maxHeaderValue   = 4096
)

// Settings are what the operator sets on one destination.
type Settings struct {
	RateLimit *config.RateLimit `json:"rateLimit,omitempty"` // nil: delivery.rate_limit
	Headers   map[string]string `json:"headers,omitempty"`   // operator destinations only
}

// CheckSettings returns the name of the first bad part of s for dest, or "".
func CheckSettings(dest string, s Settings) string {
	if r := s.RateLimit; r != nil && (r.Rate < 0 || math.IsNaN(r.Rate) || math.IsInf(r.Rate, 0) || r.Burst < 1) {
		return "rateLimit (rate ≥ 0, burst ≥ 1)"
	}
	if len(s.Headers) > 0 && KindOf(dest) != kindOperator {
		return "headers (operator destinations only)"
	}
	if len(s.Headers) > maxCustomHeaders {
		return fmt.Sprintf("headers (at most %d)", maxCustomHeaders)
	}
	for name, v := range s.Headers {
		if !headerToken(name) || reservedHeader(name) {
			return "headers." + name
		}
		if len(v) > maxHeaderValue || strings.ContainsAny(v, "\r\n\x00") {
			return "headers." + name
		}
	}
	return ""
}

// reservedHeader: headers a custom one may not set: the signature and gap
// detection headers (never overridden) and those that frame the request.
func reservedHeader(name string) bool {
	switch strings.ToLower(name) {
	case "content-type", "content-length", "host", "transfer-encoding", "connection", "user-agent", "accept", "te", "upgrade", "trailer":
		return true
	}
	return signedHeader(name)
}

func headerToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte("()<>@,;:\\\"/[]?={}", c) >= 0 {
			return false
		}
	}
	return true
}

// SetSettings replaces dest's settings, durably.
func (c *Controls) SetSettings(ctx context.Context, dest string, s Settings) error {
	rec := queue.Record{Key: []byte(keySettings + dest)}
	if s.RateLimit != nil || len(s.Headers) > 0 {
		rec.Value = mustJSON(s)
	}
	if _, err := c.q.Append(ctx, queue.Write{Records: []queue.Record{rec}}); err != nil {
		return fmt.Errorf("record settings of %s: %w", dest, err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if rec.Value == nil {
		delete(c.settings, dest)
	} else {
		c.settings[dest] = canonical(s)
	}
	delete(c.pace, dest) // a new limit starts with a full bucket
	c.noteLocked()
	return nil
}

// canonical writes header names as Go's HTTP code does (so lookups and views agree).
func canonical(s Settings) Settings {
	if len(s.Headers) == 0 {
		return s
	}
	h := make(map[string]string, len(s.Headers))
	for k, v := range s.Headers {
		h[textproto.CanonicalMIMEHeaderKey(k)] = v
	}
	s.Headers = h
	return s
}

// SettingsOf returns dest's settings and its effective rate limit.
func (c *Controls) SettingsOf(dest string) (Settings, config.RateLimit) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	s := c.settings[dest]
	return s, c.limitLocked(s)
}

func (c *Controls) limitLocked(s Settings) config.RateLimit {
	if s.RateLimit != nil {
		return *s.RateLimit
	}
	return c.cfg.RateLimit
}

// headers returns dest's custom headers as pairs.
func (c *Controls) headers(dest string) [][2]string {
	if c.idle.Load() {
		return nil
	}
	c.mu.RLock()
	defer c.mu.RUnlock()
	s, ok := c.settings[dest]
	if !ok || len(s.Headers) == 0 {
		return nil
	}
	out := make([][2]string, 0, len(s.Headers))
	for k, v := range s.Headers {
		out = append(out, [2]string{k, v})
	}
	return out
}

func (c *Controls) loadSettings(ctx context.Context) error {
	return c.q.Scan(ctx, []byte(keySettings), func(k, v []byte) error {
		var s Settings
		if err := json.Unmarshal(v, &s); err != nil {
			return fmt.Errorf("decode %s: %w", k, err)
		}
		c.settings[string(k[len(keySettings):])] = canonical(s)
		return nil
	})
}

// bucket is a destination's token bucket; factor is how far 429s have lowered
// its rate (1: as configured).
type bucket struct {
	tokens float64
	last   time.Time
	factor float64
}

// Bounds of the pace a 429 lowers: halved per 429, down to 1/64 of the rate;
// each delivery raises it by 1/64 again.
const minPaceFactor = 1.0 / 64

// bucketLocked returns dest's bucket refilled to now, and its rate; nil when
// dest is not limited.
func (c *Controls) bucketLocked(dest string, now time.Time) (*bucket, float64) {
	lim := c.limitLocked(c.settings[dest])
	if lim.Rate <= 0 {
		return nil, 0
	}
	b := c.pace[dest]
	if b == nil {
		b = &bucket{tokens: float64(lim.Burst), last: now, factor: 1}
		c.pace[dest] = b
	}
	rate := lim.Rate * b.factor
	b.tokens = min(float64(lim.Burst), b.tokens+now.Sub(b.last).Seconds()*rate)
	b.last = now
	return b, rate
}

// PaceWait is how long dest must wait for its next attempt under its rate limit
// (0: it may go now). It takes nothing.
func (c *Controls) PaceWait(dest string, now time.Time) time.Duration {
	if !c.limited(dest) {
		return 0
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	b, rate := c.bucketLocked(dest, now)
	if b == nil || b.tokens >= 1 {
		return 0
	}
	return time.Duration((1 - b.tokens) / rate * float64(time.Second))
}

// take spends one attempt of dest's rate limit, if one is available.
func (c *Controls) take(dest string) bool {
	if !c.limited(dest) {
		return true
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	b, _ := c.bucketLocked(dest, time.Now())
	if b == nil {
		return true
	}
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

// limited is the cheap check, under the read lock, that dest has a rate limit.
func (c *Controls) limited(dest string) bool {
	if c.idle.Load() {
		return false
	}
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.limitLocked(c.settings[dest]).Rate > 0
}

// slowDown halves dest's pace after a 429; speedUp raises it after a delivery.
func (c *Controls) slowDown(dest string, now time.Time) { c.scalePace(dest, now, 0.5, 0) }
func (c *Controls) speedUp(dest string, now time.Time)  { c.scalePace(dest, now, 1, minPaceFactor) }

func (c *Controls) scalePace(dest string, now time.Time, mul, add float64) {
	if !c.limited(dest) {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if b, _ := c.bucketLocked(dest, now); b != nil {
		b.factor = min(1, max(minPaceFactor, b.factor*mul+add))
	}
}
