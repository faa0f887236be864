package delivery

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"notifyrelay/config"
	"notifyrelay/queue"
)

// Pauses are records too, so a paused destination stays paused across restarts:
//
//	dlv/p/<dest>   paused: why and since when
const keyPaused = "dlv/p/"

// Why a destination was paused or resumed.
const (
	CauseBreaker  = "breaker"  // its attempts kept failing
	CauseOperator = "operator" // POST /relay/v1/destinations/{id}/pause or /resume
	CauseProbe    = "probe"    // a probe attempt succeeded
)

// pauseRecord is a paused destination.
type pauseRecord struct {
	Cause    string    `json:"cause"`
	Since    time.Time `json:"since"`
	Failures int       `json:"failures,omitempty"`
}

// ControlsQueue is what the controls use of the queue: their records.
type ControlsQueue interface {
	queue.Store
	Append(ctx context.Context, w queue.Write) ([]uint64, error)
}

// Controls are the operator's and the breaker's hold on destinations: which are
// paused (and when the next probe is due), and how each has fared lately. The
// operator API pauses and resumes through them; the workers consult them before
// each run and report every attempt's outcome.
type Controls struct {
	q   ControlsQueue
	cfg config.Delivery
	log zerolog.Logger

	// idle is set while there is nothing to control: no pause, no failing run, no
	// settings, no default rate limit. The workers' checks then cost one atomic
	// load per attempt instead of taking mu.
	idle atomic.Bool

	mu       sync.RWMutex
	paused   map[string]*pauseState
	health   map[string]*health
	settings map[string]Settings // settings.go
	pace     map[string]*bucket  // rate limits in use
	onWake   func(dest string)   // the workers' unpark, set by them
	events   chan Event
	gauge    prometheus.Gauge
	counter  *prometheus.CounterVec
}

type pauseState struct {
	pauseRecord
	nextProbe time.Time // zero: no probes (paused by the operator)
}

// health is a destination's run of failed attempts.
type health struct {
	failures int
	since    time.Time // first failure of the run
}

// Event is what the operator is told when a destination is paused or resumed.
type Event struct {
	Event       string    `json:"event"` // "paused" or "resumed"
	Destination string    `json:"destination"`
	Kind        string    `json:"kind"`
	Cause       string    `json:"cause"`
	Failures    int       `json:"failures,omitempty"`
	At          time.Time `json:"at"`
}

// NewControls loads the paused destinations from q's records.
func NewControls(ctx context.Context, q ControlsQueue, cfg config.Delivery, log zerolog.Logger, reg prometheus.Registerer) (*Controls, error) {
	c := &Controls{q: q, cfg: cfg, log: log.With().Str("component", "delivery").Logger(),
		paused: map[string]*pauseState{}, health: map[string]*health{}, events: make(chan Event, 256),
		settings: map[string]Settings{}, pace: map[string]*bucket{},
		gauge: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "notifyrelay_webhook_paused_destinations", Help: "Webhook destinations paused (breaker or operator).",
		}),
		counter: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "notifyrelay_webhook_pause_events_total", Help: "Webhook destinations paused or resumed, by event and cause.",
		}, []string{"event", "cause"}),
	}
	if reg != nil {
		reg.MustRegister(c.gauge, c.counter)
	}
	now := time.Now()
	err := q.Scan(ctx, []byte(keyPaused), func(k, v []byte) error {
		var p pauseRecord
		if err := json.Unmarshal(v, &p); err != nil {
			return fmt.Errorf("decode %s: %w", k, err)
		}
		c.paused[string(k[len(keyPaused):])] = &pauseState{pauseRecord: p, nextProbe: c.firstProbe(p.Cause, now)}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("load paused destinations: %w", err)
	}
	if err := c.loadSettings(ctx); err != nil {
		return nil, fmt.Errorf("load destination settings: %w", err)
	}
	c.gauge.Set(float64(len(c.paused)))
	c.noteLocked()
	return c, nil
}

// noteLocked updates idle after a change of the maps (c.mu held, or not shared yet).
func (c *Controls) noteLocked() {
	c.idle.Store(len(c.paused) == 0 && len(c.health) == 0 && len(c.settings) == 0 && c.cfg.RateLimit.Rate <= 0)
}

// firstProbe is when a destination paused for cause is first probed.
func (c *Controls) firstProbe(cause string, now time.Time) time.Time {
	if cause != CauseBreaker {
		return time.Time{}
	}
	return now.Add(c.cfg.Breaker.ProbeInterval.D())
}

// Paused reports whether dest is paused.
func (c *Controls) Paused(dest string) bool {
	if c.idle.Load() {
		return false
	}
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.paused[dest] != nil
}

// PausedList returns the paused destinations whose id starts with prefix.
func (c *Controls) PausedList(prefix string) []string {
	c.mu.RLock()
	defer c.mu.RUnlock()
	var out []string
	for dest := range c.paused {
		if strings.HasPrefix(dest, prefix) {
			out = append(out, dest)
		}
	}
	return out
}

// Pause pauses dest for cause, durably. Pausing a paused destination changes
// nothing, except that the operator's pause replaces the breaker's (which probes).
func (c *Controls) Pause(ctx context.Context, dest, cause string) error {
	c.mu.Lock()
	failures := 0
	if h := c.health[dest]; h != nil {
		failures = h.failures
	}
	prev := c.paused[dest]
	c.mu.Unlock()
	if prev != nil && (prev.Cause == cause || cause != CauseOperator) {
		return nil // an operator's pause is kept over a breaker's: no probes
	}
	p := pauseRecord{Cause: cause, Since: time.Now(), Failures: failures}
	if _, err := c.q.Append(ctx, queue.Write{Records: []queue.Record{{Key: []byte(keyPaused + dest), Value: mustJSON(p)}}}); err != nil {
		return fmt.Errorf("record pause of %s: %w", dest, err)
	}
	c.mu.Lock()
	c.paused[dest] = &pauseState{pauseRecord: p, nextProbe: c.firstProbe(cause, p.Since)}
	c.gauge.Set(float64(len(c.paused)))
	c.noteLocked()
	c.mu.Unlock()
	c.emit(Event{Event: "paused", Destination: dest, Kind: KindOf(dest), Cause: cause, Failures: failures, At: p.Since})
	return nil
}

// Resume resumes dest, durably, and wakes its parked lease; resuming a
// destination that is not paused changes nothing.
func (c *Controls) Resume(ctx context.Context, dest, cause string) error {
	if !c.Paused(dest) {
		return nil
	}
	if _, err := c.q.Append(ctx, queue.Write{Records: []queue.Record{{Key: []byte(keyPaused + dest)}}}); err != nil {
		return fmt.Errorf("record resume of %s: %w", dest, err)
	}
	c.mu.Lock()
	delete(c.paused, dest)
	delete(c.health, dest)
	c.gauge.Set(float64(len(c.paused)))
	c.noteLocked()
	wake := c.onWake
	c.mu.Unlock()
	c.emit(Event{Event: "resumed", Destination: dest, Kind: KindOf(dest), Cause: cause, At: time.Now()})
	if wake != nil {
		wake(dest)
	}
	return nil
}

// hold reports whether dest is paused and, if so, until when its lease should be
// held (zero: until resumed). A paused destination whose probe is due is not
// held: its next probe is set and probe is true, so its run is one attempt.
func (c *Controls) hold(dest string, now time.Time) (held bool, until time.Time, probe bool) {
	if c.idle.Load() {
		return false, time.Time{}, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	p := c.paused[dest]
	switch {
	case p == nil:
		return false, time.Time{}, false
	case p.nextProbe.IsZero():
		return true, time.Time{}, false
	case now.Before(p.nextProbe):
		return true, p.nextProbe, false
	}
	p.nextProbe = now.Add(c.cfg.Breaker.ProbeInterval.D())
	return false, time.Time{}, true
}

// observe records an attempt's outcome: a success ends a failing run (and a
// breaker pause: the probe succeeded); a failure extends it and pauses dest once
// the run reaches delivery.breaker.failures or lasts delivery.breaker.for.
func (c *Controls) observe(ctx context.Context, dest string, ok bool, now time.Time) {
	if ok && c.healthy(dest) {
		return // the common case, under the read lock only
	}
	c.mu.Lock()
	h := c.health[dest]
	if ok {
		delete(c.health, dest)
		c.noteLocked()
		paused := c.paused[dest]
		c.mu.Unlock()
		if paused != nil && paused.Cause == CauseBreaker {
			c.logErr(c.Resume(ctx, dest, CauseProbe), dest)
		}
		return
	}
	if h == nil {
		h = &health{since: now}
		c.health[dest] = h
		c.noteLocked()
	}
	h.failures++
	b := c.cfg.Breaker
	trip := (b.Failures > 0 && h.failures >= b.Failures) || (b.For > 0 && now.Sub(h.since) >= b.For.D())
	trip = trip && c.paused[dest] == nil
	c.mu.Unlock()
	if trip {
		c.logErr(c.Pause(ctx, dest, CauseBreaker), dest)
	}
}

// healthy reports that dest has no failing run and no pause.
func (c *Controls) healthy(dest string) bool {
	if c.idle.Load() {
		return true
	}
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.health[dest] == nil && c.paused[dest] == nil
}

func (c *Controls) logErr(err error, dest string) {
	if err != nil {
		c.log.Warn().Err(err).Str("dest", dest).Msg("pause or resume destination")
	}
}

// Forget drops what is known of a destination that no longer exists (a chat
// subscription that ended), its pause and settings included.
func (c *Controls) Forget(ctx context.Context, dest string) {
	c.mu.Lock()
	delete(c.health, dest)
	delete(c.pace, dest)
	_, paused := c.paused[dest]
	_, set := c.settings[dest]
	delete(c.paused, dest)
	delete(c.settings, dest)
	c.gauge.Set(float64(len(c.paused)))
	c.noteLocked()
	c.mu.Unlock()
	if paused || set {
		_, err := c.q.Append(ctx, queue.Write{Records: []queue.Record{
			{Key: []byte(keyPaused + dest)}, {Key: []byte(keySettings + dest)}}})
		c.logErr(err, dest)
	}
}

// emit counts and logs an event and hands it to the operator URL's sender.
func (c *Controls) emit(e Event) {
	c.counter.WithLabelValues(e.Event, e.Cause).Inc()
	c.log.Warn().Str("dest", e.Destination).Str("event", e.Event).Str("cause", e.Cause).
		Int("failures", e.Failures).Msg("webhook destination " + e.Event)
	if c.cfg.Breaker.OperatorURL == "" {
		return
	}
	select {
	case c.events <- e:
	default:
		c.log.Warn().Str("dest", e.Destination).Msg("operator event not sent: too many waiting")
	}
}
