package loadtest

import (
	"context"
	"sync/atomic"
	"time"
)

// Pacer hands out send slots: at a fixed rate (slot n is due at start + n/rate), or
// as fast as the callers come when rate is 0. With count > 0 it hands out at most
// count slots. In-flight requests are bounded by the number of workers calling Next,
// since each worker sends one request per slot and waits for its answer. Safe for
// concurrent use.
type Pacer struct {
	rate  float64
	count int64
	start time.Time
	n     atomic.Int64
}

// NewPacer starts the schedule at start.
func NewPacer(rate float64, count int64, start time.Time) *Pacer {
	return &Pacer{rate: rate, count: count, start: start}
}

// Next waits for the caller's next slot. It returns false when the count is used up
// or ctx is done.
func (p *Pacer) Next(ctx context.Context) bool {
	n := p.n.Add(1)
	if p.count > 0 && n > p.count {
		return false
	}
	if p.rate <= 0 {
		return ctx.Err() == nil
	}
	due := p.start.Add(time.Duration(float64(n-1) / p.rate * float64(time.Second)))
	wait := time.Until(due)
	if wait <= 0 {
		return ctx.Err() == nil
	}
	return sleepCtx(ctx, wait)
}

// Issued is how many slots were handed out (capped at count).
func (p *Pacer) Issued() int64 {
	n := p.n.Load()
	if p.count > 0 && n > p.count {
		return p.count
	}
	return n
}
