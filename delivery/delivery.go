// Package delivery is webhook delivery: the workers that POST queued notifications
// to their notifyURLs with retries, backoff and dead letters (delivery.go), the
// classification of outcomes (classify.go), signatures (sign.go), the SSRF guard
// (ssrf.go) and the delivery records the operator API reports (records.go,
// status.go). It serves the queue destinations of kinds destkind.Subscription
// ("s:", chat subscriptions) and destkind.Operator ("o:").
package delivery

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"notifyrelay/config"
	"notifyrelay/destkind"
	"notifyrelay/oma"
	"notifyrelay/queue"
	"notifyrelay/telemetry"
)

// runMax bounds how many notifications one worker delivers to a destination in a
// row before giving the lease back. Delivered notifications are acknowledged
// together (one durable Ack for the run), which is what lets one destination go
// faster than one fsync per notification; a crash repeats at most this many.
const runMax = 64

// settleMax × delivery.workers settlements may be in flight: workers hand the
// durable Ack of a run to its own goroutine and move on, and concurrent Acks share
// group commits, so delivery is not bound by one fsync per worker.
const settleMax = 2

// Subscriptions is the chat side's answer about subscription destinations ("s:")
// and the outcome of tagged notifications (chat N1).
type Subscriptions interface {
	// Target returns a subscription's notifyURL, ok=false once it is gone.
	Target(ctx context.Context, dest string) (notifyURL string, ok bool)
	// Gone ends a subscription whose webhook answered 410.
	Gone(ctx context.Context, dest string)
	// Settled is told the outcome of a tagged notification.
	Settled(tag string, delivered bool)
}

// Queue is what the workers use of the queue: leases, reads, settlements, and the
// records of their deliveries.
type Queue interface {
	Next(ctx context.Context, prefix string) (string, error)
	Release(dest string)
	Read(ctx context.Context, dest string, after uint64, max int) ([]queue.Entry, error)
	Append(ctx context.Context, w queue.Write) ([]uint64, error)
	Stage(ctx context.Context, records ...queue.Record) error
	Ack(ctx context.Context, dest string, seq uint64) error
	Retry(ctx context.Context, dest string, seq uint64, at time.Time, reason string) error
	DeadLetter(ctx context.Context, dest string, seq uint64, reason string) error
	Delete(ctx context.Context, dest string) error
	queue.Store
	queue.Stats
}

// Options is what the workers need from the composition root.
type Options struct {
	Config        config.Delivery
	Log           zerolog.Logger
	Registerer    prometheus.Registerer
	Queue         Queue
	Book          *Book     // operator destinations and delivery records, shared with the operator API
	Controls      *Controls // pauses and the breaker, shared with the operator API
	Subscriptions Subscriptions
	Tracer        trace.Tracer // a span per attempt (telemetry); nil: none
}

// Workers run the webhook delivery: for each destination with work due, one
// worker at a time (the queue's lease) POSTs its head, then acknowledges, retries
// or dead-letters it. Workers serve destinations independently, so a slow or dead
// receiver holds only its own worker.
type Workers struct {
	q        Queue
	cfg      config.Delivery
	log      zerolog.Logger
	web      *webhookClient
	dests    *Book
	ctl      *Controls
	subs     Subscriptions
	m        *deliveryMetrics
	slots    chan struct{} // bounds attempts in flight over both kinds
	settling chan struct{} // bounds settlements (durable Acks) in flight

	parkMu sync.Mutex
	parked map[string]*time.Timer // paused destinations whose lease is held (pause.go)

	take, work             context.Context // take: ask for new work; work: queue calls
	cancelTake, cancelWork context.CancelFunc
	wg                     sync.WaitGroup
	tracer                 trace.Tracer
}

// New builds the workers; Start launches them.
func New(o Options) (*Workers, error) {
	if o.Book == nil || o.Controls == nil {
		return nil, errors.New("delivery: Options.Book and Options.Controls are required")
	}
	keys, err := config.SigningKeys(o.Config.SigningSecret, o.Config.PreviousSigningSecrets)
	if err != nil {
		return nil, err
	}
	return &Workers{
		q: o.Queue, cfg: o.Config, subs: o.Subscriptions, dests: o.Book, ctl: o.Controls,
		parked:   map[string]*time.Timer{},
		log:      o.Log.With().Str("component", "delivery").Logger(),
		web:      newWebhookClient(o.Config, keys),
		tracer:   telemetry.Or(o.Tracer),
		m:        newDeliveryMetrics(o.Registerer, o.Queue),
		slots:    make(chan struct{}, o.Config.Workers),
		settling: make(chan struct{}, settleMax*o.Config.Workers),
	}, nil
}

// Start launches delivery.workers workers per destination kind (at most that many
// attempts run at once overall) and the record sweeper. They run until Stop.
func (d *Workers) Start(context.Context) error {
	d.take, d.cancelTake = context.WithCancel(context.Background())
	d.work, d.cancelWork = context.WithCancel(context.Background())
	for _, prefix := range []string{destkind.SubscriptionPrefix, destkind.OperatorPrefix} {
		for range d.cfg.Workers {
			d.wg.Add(1)
			go d.worker(prefix)
		}
	}
	d.ctl.mu.Lock()
	d.ctl.onWake = d.unpark
	d.ctl.mu.Unlock()
	d.wg.Add(2)
	go d.sweeper()
	go d.notifier()
	return nil
}

// Stop stops taking work and lets in-flight attempts finish. When ctx ends first,
// it cuts the attempts short: unacknowledged, they are sent again later.
func (d *Workers) Stop(ctx context.Context) error {
	if d.cancelTake == nil {
		return nil
	}
	d.cancelTake()
	d.stopParking()
	done := make(chan struct{})
	go func() { d.wg.Wait(); close(done) }()
	select {
	case <-done:
		d.cancelWork()
		return nil
	case <-ctx.Done():
	}
	// Out of time: cut the attempts short. Not an error: unacknowledged, they are
	// sent again after the restart, which at-least-once allows.
	d.cancelWork()
	d.web.conns.abortAll()
	select {
	case <-done:
		d.log.Warn().Msg("shutdown_timeout reached: in-flight webhook attempts given back to the queue")
		return nil
	case <-time.After(abortGrace):
		return fmt.Errorf("delivery stop: workers still running %v after shutdown_timeout", abortGrace)
	}
}

// abortGrace is how long stop still waits, once shutdown_timeout passed, for the
// attempts it aborted.
const abortGrace = 2 * time.Second

func (d *Workers) worker(prefix string) {
	defer d.wg.Done()
	for {
		dest, err := d.q.Next(d.take, prefix)
		if err != nil {
			return // stopping, or the queue is closed
		}
		parked, probe := d.park(dest)
		if parked {
			continue
		}
		d.slots <- struct{}{}
		settle := d.serve(dest, probe)
		<-d.slots
		if settle == nil {
			d.q.Release(dest)
			continue
		}
		d.settleAsync(dest, settle)
	}
}

// settleAsync runs settle (the durable Ack, retry or dead letter of what serve
// did) on its own goroutine and then ends dest's lease, so the worker takes its
// next destination at once instead of waiting for an fsync. dest stays leased
// until settle returns: nothing behind its head is sent before the head is
// acknowledged or given up on.
func (d *Workers) settleAsync(dest string, settle func()) {
	d.settling <- struct{}{}
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		settle()
		d.q.Release(dest)
		<-d.settling
	}()
}

// serve delivers dest's notifications in order while they succeed, up to runMax
// (one for a probe of a paused destination), and returns what settles them:
// acknowledge the delivered ones, then retry or dead-letter the first that was
// not. nil: nothing to settle.
func (d *Workers) serve(dest string, probe bool) (settle func()) {
	url, ok, err := d.target(dest)
	if err != nil {
		d.log.Error().Err(err).Str("dest", dest).Msg("look up destination")
		return nil
	}
	if !ok {
		d.drop(dest)
		return nil
	}
	run := &deliveredRun{retention: d.cfg.RecordRetention.D(), retain: d.cfg.RetainDelivered.D()}
	headers := d.ctl.headers(dest)
	var after uint64
	limit := runMax
	if probe {
		limit = 1
	}
	for range limit {
		if d.take.Err() != nil || (!probe && d.ctl.Paused(dest)) {
			break // stopping, or paused by the operator meanwhile
		}
		if run.n >= d.q.DestStats(dest).Depth {
			break // all delivered: spare the Read (it waits for commits in flight)
		}
		if !probe && !d.ctl.take(dest) {
			break // over its rate limit: parked at the next lease until allowed
		}
		e, found, err := d.next(dest, after)
		if err != nil || !found {
			break
		}
		t := d.attempt(dest, url, e, headers)
		if t.attempted {
			d.observe(dest, t)
		}
		if t.v.outcome == delivered {
			run.add(e, t)
			after = e.Seq
			continue
		}
		return func() {
			if d.commit(dest, run) == nil {
				d.fail(dest, e, t)
			}
		}
	}
	if run.n == 0 {
		return nil
	}
	return func() { _ = d.commit(dest, run) }
}

func (d *Workers) next(dest string, after uint64) (queue.Entry, bool, error) {
	es, err := d.q.Read(d.work, dest, after, 1)
	if err != nil {
		d.log.Error().Err(err).Str("dest", dest).Msg("read destination")
		return queue.Entry{}, false, err
	}
	if len(es) == 0 {
		return queue.Entry{}, false, nil
	}
	return es[0], true, nil
}

// target is dest's notifyURL; ok is false when the destination no longer exists.
func (d *Workers) target(dest string) (string, bool, error) {
	if KindOf(dest) == kindSubscription {
		url, ok := d.subs.Target(d.work, dest)
		return url, ok, nil
	}
	t, ok, err := d.dests.Target(d.work, dest)
	return t.NotifyURL, ok, err
}

// try is one attempt's result, as settling it needs.
type try struct {
	v         verdict
	tag       string
	lastError string
	wait      time.Duration // Retry-After, when the receiver gave one
	hasWait   bool
	attempted bool    // an HTTP request was made
	failed    Attempt // the attempt, for the history, when it did not deliver
	at        time.Time
}

// observe tells the controls an attempt's outcome: the breaker counts it, a 429
// lowers the destination's pace and a delivery raises it again.
func (d *Workers) observe(dest string, t try) {
	d.ctl.observe(d.work, dest, t.v.outcome == delivered, t.at)
	switch {
	case t.v.reason == "status_429":
		d.ctl.slowDown(dest, t.at)
	case t.v.outcome == delivered:
		d.ctl.speedUp(dest, t.at)
	}
}

// attempt POSTs e to url, with dest's custom headers, unless it is past max_age
// or unreadable.
func (d *Workers) attempt(dest, url string, e queue.Entry, headers [][2]string) try {
	if age := time.Since(e.Enqueued); d.cfg.MaxAge > 0 && age > d.cfg.MaxAge.D() {
		return try{v: verdict{dead, "max_age"}, lastError: joinError("max_age "+d.cfg.MaxAge.D().String()+" exceeded", e.LastError)}
	}
	env, err := oma.UnmarshalEnvelope(e.Data)
	if err != nil {
		return try{v: verdict{dead, "malformed"}, lastError: err.Error()}
	}
	kind := KindOf(dest)
	span, tp := telemetry.Start(d.tracer, "notifyrelay.deliver", trace.SpanKindClient, env.Traceparent,
		attribute.String("notifyrelay.id", e.ID), attribute.Int("notifyrelay.attempt", e.Attempts+1))
	env.Traceparent = tp // the receiver's parent is this attempt
	d.m.inFlight.Inc()
	res := d.web.post(url, e, env, headers)
	d.m.inFlight.Dec()
	endAttemptSpan(span, res)
	d.m.attempt.WithLabelValues(kind).Observe(res.took.Seconds())
	t := try{tag: env.Tag, attempted: true, at: time.Now(), lastError: res.describe()}
	if res.status == 0 {
		t.v = classifyError(res.err)
	} else {
		t.v = classifyStatus(res.status)
		t.wait, t.hasWait = parseRetryAfter(res.retryAfter, t.at)
	}
	if t.v.outcome == delivered {
		d.m.endToEnd.WithLabelValues(kind).Observe(t.at.Sub(e.Enqueued).Seconds())
	} else {
		t.failed = newAttempt(res, t.at)
	}
	return t
}

func joinError(what, last string) string {
	if last == "" {
		return what
	}
	return what + "; last error: " + last
}

// deliveredRun collects what one serve delivered, to acknowledge it at once.
type deliveredRun struct {
	retention time.Duration
	retain    time.Duration // delivery.retain_delivered: keep what was delivered
	last      uint64
	tags      []string
	records   []queue.Record
	n         int
}

func (r *deliveredRun) add(e queue.Entry, t try) {
	r.last, r.n = e.Seq, r.n+1
	if t.tag != "" {
		r.tags = append(r.tags, t.tag)
	}
	if r.retain > 0 {
		r.records = append(r.records, retainRecords(e, t.at, r.retain)...)
	}
	if KindOf(e.Dest) == kindOperator {
		r.records = append(r.records, settleRecords(e.ID, settledRecord{
			State: StateDelivered, Attempts: e.Attempts + 1, LastError: e.LastError, At: t.at}, r.retention)...)
	} else if e.Attempts > 0 {
		// No settlement to sweep it with: the history goes now.
		r.records = append(r.records, historyDeletes(e.ID, e.Attempts)...)
	}
}

// commit settles the run's deliveries, then acknowledges them with one Ack. The
// settlement records are staged: the queue makes them durable no later than the Ack
// (a crash in between re-sends, it never forgets). Tags are settled before the Ack
// for the same reason: a crash in between re-sends and re-settles (ignored as a
// repeat); the other order could lose the outcome and with it the change's N2.
func (d *Workers) commit(dest string, r *deliveredRun) error {
	if r.n == 0 {
		return nil
	}
	defer func() { *r = deliveredRun{retention: r.retention, retain: r.retain} }()
	if len(r.records) > 0 {
		if err := d.q.Stage(d.work, r.records...); err != nil {
			d.log.Warn().Err(err).Str("dest", dest).Msg("record deliveries; they will be sent again")
			return err
		}
	}
	for _, tag := range r.tags {
		d.subs.Settled(tag, true)
	}
	if err := d.q.Ack(d.work, dest, r.last); err != nil {
		d.log.Warn().Err(err).Str("dest", dest).Msg("acknowledge deliveries; they will be sent again")
		return err
	}
	d.m.delivered.WithLabelValues(KindOf(dest)).Add(float64(r.n))
	return nil
}

// fail settles an attempt that did not deliver: retry later, or dead-letter.
func (d *Workers) fail(dest string, e queue.Entry, t try) {
	if t.v.outcome == retry && d.cfg.MaxAttempts > 0 && e.Attempts+1 >= d.cfg.MaxAttempts {
		t.v = verdict{dead, "max_attempts"}
		t.lastError = joinError(fmt.Sprintf("max_attempts %d reached", d.cfg.MaxAttempts), t.lastError)
	}
	if t.v.outcome == dead {
		d.deadLetter(dest, e, t)
		return
	}
	if hist := d.history(e, t); len(hist) > 0 {
		if err := d.q.Stage(d.work, hist...); err != nil {
			d.log.Warn().Err(err).Str("dest", dest).Str("id", e.ID).Msg("record attempt history")
		}
	}
	now := time.Now()
	wait := retryWait(d.cfg, e.Attempts+1, t, now.Sub(e.Enqueued))
	if err := d.q.Retry(d.work, dest, e.Seq, now.Add(wait), t.lastError); err != nil {
		d.log.Warn().Err(err).Str("dest", dest).Str("id", e.ID).Msg("schedule retry")
		return
	}
	d.m.retried.WithLabelValues(KindOf(dest), t.v.reason).Inc()
	d.log.Debug().Str("dest", dest).Str("id", e.ID).Str("reason", t.v.reason).Dur("wait", wait).Msg("webhook attempt failed; will retry")
}

// retryWait is how long to wait before the next attempt: the receiver's
// Retry-After as asked (up to retry_after_max; a receiver that rate-limits must not
// be hammered), else backoff. Never past max_age: at that point the attempt
// dead-letters the notification instead of waiting longer for nothing.
func retryWait(cfg config.Delivery, failures int, t try, age time.Duration) time.Duration {
	wait := backoff(failures, cfg.Backoff.Initial.D(), cfg.Backoff.Max.D())
	if t.hasWait && cfg.RetryAfterMax > 0 {
		wait = min(t.wait, cfg.RetryAfterMax.D())
	}
	if cfg.MaxAge > 0 {
		wait = max(min(wait, cfg.MaxAge.D()-age), 0)
	}
	return wait
}

// deadLetter records the end of e, then moves it to the dead letter list.
func (d *Workers) deadLetter(dest string, e queue.Entry, t try) {
	attempts := e.Attempts
	if t.attempted {
		attempts++
	}
	s := settledRecord{State: StateDead, Attempts: attempts, LastError: t.lastError, At: time.Now()}
	recs := append(settleRecords(e.ID, s, d.cfg.RecordRetention.D()), d.history(e, t)...)
	if _, err := d.q.Append(d.work, queue.Write{Records: recs}); err != nil {
		d.log.Warn().Err(err).Str("dest", dest).Str("id", e.ID).Msg("record dead letter")
		return
	}
	// Settled before the entry leaves the queue, as in commit: a crash in between
	// dead-letters it again and re-settles (ignored as a repeat).
	if t.tag == "" {
		t.tag = tagOf(e)
	}
	if t.tag != "" {
		d.subs.Settled(t.tag, false)
	}
	if err := d.q.DeadLetter(d.work, dest, e.Seq, t.lastError); err != nil {
		d.log.Warn().Err(err).Str("dest", dest).Str("id", e.ID).Msg("dead-letter")
		return
	}
	d.m.dead.WithLabelValues(KindOf(dest), t.v.reason).Inc()
	d.log.Warn().Str("dest", dest).Str("id", e.ID).Str("reason", t.v.reason).Str("error", t.lastError).Msg("webhook notification dead-lettered")
	if t.v.reason == "gone" && KindOf(dest) == kindSubscription {
		d.subs.Gone(d.work, dest)
	}
}

// history is the record of t, a failed attempt at e, numbered; none when no HTTP
// request was made. It is best effort on retries (staged: a crash may forget the
// last ones) and durable with a dead letter.
func (d *Workers) history(e queue.Entry, t try) []queue.Record {
	if !t.attempted {
		return nil
	}
	a := t.failed
	a.N = e.Attempts + 1
	if KindOf(e.Dest) == kindOperator {
		a.N += d.dests.priorAttempts(d.work, e.ID)
	}
	return []queue.Record{attemptRecord(e.ID, a)}
}

func tagOf(e queue.Entry) string {
	env, err := oma.UnmarshalEnvelope(e.Data)
	if err != nil {
		return ""
	}
	return env.Tag
}

// drop deletes a destination whose subscription is gone, telling the chat side
// that its tagged notifications will never be delivered.
func (d *Workers) drop(dest string) {
	var after uint64
	n := 0
	for {
		es, err := d.q.Read(d.work, dest, after, 256)
		if err != nil || len(es) == 0 {
			break
		}
		if n == 0 && es[0].Attempts > 0 { // only the head has failed attempts
			if err := d.q.Stage(d.work, historyDeletes(es[0].ID, historyMax)...); err != nil {
				d.log.Warn().Err(err).Str("dest", dest).Msg("drop attempt history")
			}
		}
		for _, e := range es {
			if tag := tagOf(e); tag != "" {
				d.subs.Settled(tag, false)
			}
		}
		after, n = es[len(es)-1].Seq, n+len(es)
	}
	if err := d.q.Delete(d.work, dest); err != nil && !errors.Is(err, context.Canceled) {
		d.log.Warn().Err(err).Str("dest", dest).Msg("drop destination")
		return
	}
	d.ctl.Forget(d.work, dest)
	d.log.Info().Str("dest", dest).Int("dropped", n).Msg("destination gone: its queued notifications were dropped")
}

// sweep runs one sweep in pages of 1000 until a page comes back short.
func (d *Workers) sweep(what string, page func() (int, error)) {
	for {
		n, err := page()
		d.m.swept.WithLabelValues(what).Add(float64(n))
		if err != nil && d.take.Err() == nil {
			d.log.Warn().Err(err).Str("what", what).Msg("sweep")
		}
		if n < 1000 || err != nil {
			return
		}
	}
}

// sweeper removes delivery records past delivery.record_retention and
// idempotency keys past delivery.idempotency_window.
func (d *Workers) sweeper() {
	defer d.wg.Done()
	retention := d.cfg.RecordRetention.D()
	every := min(max(retention/4, 100*time.Millisecond), time.Minute)
	if keep := d.cfg.RetainDelivered.D(); keep > 0 {
		every = min(every, max(keep/4, 100*time.Millisecond))
	}
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		select {
		case <-d.take.Done():
			return
		case now := <-tick.C:
			d.sweep("delivery", func() (int, error) { return sweepExpired(d.take, d.q, now, retention, 1000) })
			d.sweep("idempotency", func() (int, error) {
				return sweepIdempotency(d.take, d.q, now, d.cfg.IdempotencyWindow.D(), 1000)
			})
			d.sweep("retained", func() (int, error) { return sweepRetained(d.take, d.q, now, 1000) })
		}
	}
}

// endAttemptSpan records an attempt's outcome on its span and ends it.
func endAttemptSpan(span trace.Span, res attemptResult) {
	if res.status != 0 {
		span.SetAttributes(attribute.Int("http.response.status_code", res.status))
	}
	if res.status == 0 || res.status >= 300 {
		span.SetStatus(codes.Error, res.describe())
	}
	span.End()
}
