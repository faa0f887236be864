package delivery

import (
	"bytes"
	"net/http"
	"strconv"
	"time"
)

// The workers' side of pausing: a paused destination's lease is parked (kept,
// so the scheduler does not hand it out again) until its next probe is due or it
// is resumed. Parking costs a timer, not a worker.

// park holds dest's lease if it is paused and no probe is due, and reports
// whether it did; probe reports that this run is a probe (one attempt).
// A destination over its rate limit is parked the same way until its next
// attempt is allowed.
func (d *Workers) park(dest string) (parked, probe bool) {
	if d.ctl.idle.Load() {
		return false, false
	}
	now := time.Now()
	held, until, probe := d.ctl.hold(dest, now)
	if !held && !probe {
		if wait := d.ctl.PaceWait(dest, now); wait > 0 {
			held, until = true, now.Add(wait)
		}
	}
	if held {
		d.parkUntil(dest, until)
	}
	return held, probe
}

// parkUntil holds dest's lease until the time until (zero: until unpark).
func (d *Workers) parkUntil(dest string, until time.Time) {
	d.parkMu.Lock()
	if _, ok := d.parked[dest]; ok {
		d.parkMu.Unlock()
		return
	}
	var t *time.Timer
	if !until.IsZero() {
		t = time.AfterFunc(time.Until(until), func() { d.unpark(dest) })
	}
	d.parked[dest] = t
	d.parkMu.Unlock()
	if until.IsZero() && !d.ctl.Paused(dest) {
		// Resumed between the check and now: its wake-up found nothing parked.
		// Resume clears the pause before it wakes, so one of the two sees the other.
		d.unpark(dest)
	}
}

// unpark gives a parked lease back to the scheduler: the destination is handed
// out again (and probed, or delivered if it was resumed).
func (d *Workers) unpark(dest string) {
	d.parkMu.Lock()
	t, ok := d.parked[dest]
	delete(d.parked, dest)
	d.parkMu.Unlock()
	if !ok {
		return
	}
	if t != nil {
		t.Stop()
	}
	d.q.Release(dest)
}

// stopParking stops the probe timers at shutdown; the leases end with the queue.
func (d *Workers) stopParking() {
	d.parkMu.Lock()
	defer d.parkMu.Unlock()
	for dest, t := range d.parked {
		if t != nil {
			t.Stop()
		}
		delete(d.parked, dest)
	}
}

// notifier POSTs pause and resume events to delivery.breaker.operator_url, once
// each (a failure is logged, not retried: the metric and the log have it too).
func (d *Workers) notifier() {
	defer d.wg.Done()
	client := &http.Client{Timeout: 10 * time.Second}
	for {
		select {
		case <-d.take.Done():
			return
		case e := <-d.ctl.events:
			d.sendEvent(client, e)
		}
	}
}

// sendEvent POSTs one event, signed as webhooks are (Standard Webhooks headers,
// a fresh webhook-id per event) when delivery.signing_secret is set.
func (d *Workers) sendEvent(client *http.Client, e Event) {
	body := mustJSON(e)
	req, err := http.NewRequestWithContext(d.take, http.MethodPost, d.cfg.Breaker.OperatorURL, bytes.NewReader(body))
	if err != nil {
		d.log.Warn().Err(err).Msg("operator event")
		return
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "notifyrelay")
	id, now := NewID(), time.Now()
	req.Header.Set("webhook-id", id)
	if d.web.sign.on() {
		req.Header.Set("webhook-timestamp", strconv.FormatInt(now.Unix(), 10))
		req.Header.Set("webhook-signature", d.web.sign.signature(id, now, body))
	}
	resp, err := client.Do(req)
	if err != nil {
		d.log.Warn().Err(err).Str("dest", e.Destination).Msg("operator event not delivered")
		return
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		d.log.Warn().Int("status", resp.StatusCode).Str("dest", e.Destination).Msg("operator event refused")
	}
}
