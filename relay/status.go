package relay

import (
	"context"
	"encoding/json"
	"strconv"
	"strings"
	"sync"

	"notifyrelay/api"
	"notifyrelay/oma"
	"notifyrelay/queue"
)

// N1 outcomes as the tracker and its records hold them.
const (
	n1Pending   int8 = 0
	n1Delivered int8 = 1
	n1Dead      int8 = 2
)

// changeRecord is the durable part of a change whose N2 waits for its N1s
// ("delivered" mode), under keyChange+Msg. It is appended with the change, and staged
// again (queue.Stage) with the outcomes so far each time an N1 settles: the queue
// makes a staged record durable no later than the acknowledgements that follow it,
// so an N1 whose delivery survives a crash has its outcome survive too, and an N1
// whose acknowledgement is lost is delivered and settled again. N2 is appended
// together with the record's deletion, so a restart anywhere still ends in one N2.
type changeRecord struct {
	Session   string   `json:"s"`
	Changer   string   `json:"c"`
	Msg       string   `json:"m"`
	Receivers []string `json:"r"`           // participants that had a subscription
	Owner     []int    `json:"o"`           // N1 k → index in Receivers
	Outcome   []int8   `json:"x,omitempty"` // N1 k → n1Pending, n1Delivered or n1Dead
	// Traceparent is the change's accept span, for the N2 sent later.
	Traceparent string `json:"t,omitempty"`
}

// tracker follows one change's N1s in memory.
type tracker struct {
	mu      sync.Mutex
	rec     changeRecord
	head    []byte // rec as JSON without Outcome and its closing brace, made once
	outcome []int8
	left    int  // N1s not yet settled
	done    bool // N2 appended (or being appended)
}

// record is the change with its outcomes so far; t.mu is held (or t is not shared).
// It is staged once per settled N1, so only the outcomes are encoded each time.
func (t *tracker) record() queue.Record {
	if t.head == nil {
		v, _ := json.Marshal(t.rec)
		t.head = v[:len(v)-1]
	}
	v := append(make([]byte, 0, len(t.head)+8+2*len(t.outcome)), t.head...)
	if t.left < len(t.outcome) {
		v = append(v, `,"x":[`...)
		for k, o := range t.outcome {
			if k > 0 {
				v = append(v, ',')
			}
			v = strconv.AppendInt(v, int64(o), 10)
		}
		v = append(v, ']')
	}
	return queue.Record{Key: []byte(keyChange + t.rec.Msg), Value: append(v, '}')}
}

func (c *chat) track(t *tracker) {
	c.trackMu.Lock()
	c.trackers[t.rec.Msg] = t
	c.trackMu.Unlock()
}

func (c *chat) untrack(t *tracker) {
	if t == nil {
		return
	}
	c.trackMu.Lock()
	delete(c.trackers, t.rec.Msg)
	c.trackMu.Unlock()
}

// loadChange rebuilds a tracker from its record.
func (c *chat) loadChange(msg string, v []byte) error {
	t := &tracker{}
	if err := json.Unmarshal(v, &t.rec); err != nil {
		return err
	}
	t.outcome = make([]int8, len(t.rec.Owner))
	copy(t.outcome, t.rec.Outcome)
	t.rec.Outcome = nil
	for _, o := range t.outcome {
		if o == n1Pending {
			t.left++
		}
	}
	c.trackers[msg] = t
	return nil
}

// finishSettled sends N2 for changes whose N1s all settled before a restart.
func (c *chat) finishSettled(ctx context.Context) {
	for _, t := range c.trackers {
		if t.left == 0 {
			c.finish(ctx, t)
		}
	}
}

// Settled records the outcome of N1 tag (its entry id "<msg>.<k>") and sends N2
// once the change's last N1 has settled. Unknown or repeated tags are ignored:
// at-least-once delivery may report an N1 twice. The record is staged under t.mu,
// so it is staged before N2's append (which supersedes it) or not at all.
func (c *chat) Settled(tag string, ok bool) {
	msg, ks, found := strings.Cut(tag, ".")
	k, err := strconv.Atoi(ks)
	if !found || err != nil {
		return
	}
	c.trackMu.Lock()
	t := c.trackers[msg]
	c.trackMu.Unlock()
	if t == nil {
		return
	}
	out := n1Delivered
	if !ok {
		out = n1Dead
	}
	t.mu.Lock()
	if t.done || k < 0 || k >= len(t.outcome) || t.outcome[k] != n1Pending {
		t.mu.Unlock()
		return
	}
	t.outcome[k] = out
	t.left--
	last := t.left == 0
	// Staged even for the last one: if N2's append fails, the outcome still counts.
	if err := c.q.Stage(c.life, t.record()); err != nil {
		c.log.Warn().Err(err).Str("change", msg).Msg("record N1 outcome")
	}
	t.mu.Unlock()
	if last {
		c.finish(c.life, t)
	}
}

// finish appends N2 to the changer's subscriptions and deletes the change's records,
// in one write.
func (c *chat) finish(ctx context.Context, t *tracker) {
	t.mu.Lock()
	if t.done {
		t.mu.Unlock()
		return
	}
	t.done = true
	t.mu.Unlock()
	c.destMu.RLock()
	w := queue.Write{Entries: c.n2Entries(t.rec.Session, t.rec.Changer, t.rec.Msg, t.unreached(), t.rec.Traceparent)}
	w.Records = append(w.Records, queue.Record{Key: []byte(keyChange + t.rec.Msg)})
	wait := c.q.Enqueue(ctx, w)
	c.destMu.RUnlock()
	// The caller (a webhook worker or a WebSocket writer settling an N1) does not wait
	// for the fsync; Stop waits for these.
	c.finishing.Go(func() {
		if _, err := wait(); err != nil {
			c.log.Warn().Err(err).Str("change", t.rec.Msg).Msg("append status notification; sent after restart")
			return
		}
		c.untrack(t)
	})
}

// unreached lists the receivers none of whose N1s was delivered.
func (t *tracker) unreached() []string {
	reached := make([]bool, len(t.rec.Receivers))
	for k, o := range t.outcome {
		if o == n1Delivered {
			reached[t.rec.Owner[k]] = true
		}
	}
	var out []string
	for i, ok := range reached {
		if !ok {
			out = append(out, t.rec.Receivers[i])
		}
	}
	return out
}

// n2Entries renders N2 for every active subscription of the changer: Succeeded, or
// Failed with one Participant link per participant not reached.
func (c *chat) n2Entries(sessionID, changer, msgID string, unreached []string, tp string) []queue.Entry {
	esc := api.EscapeID(changer)
	g := c.groupURL(esc, sessionID)
	n := oma.ChatSessionDataStatusNotification{Status: oma.StatusSucceeded, Links: []oma.Link{
		{Rel: oma.RelGroupChatSession, Href: g}, {Rel: oma.RelChatSessionData, Href: g + "/messages/" + msgID}}}
	if len(unreached) > 0 {
		n.Status, n.ErrorCode = oma.StatusFailed, "NotDelivered"
		n.Description = "Not delivered to " + strings.Join(unreached, ", ")
		for _, p := range unreached {
			n.Links = append(n.Links, oma.Link{Rel: oma.RelParticipant, Href: g + "/participants/" + api.EscapeID(p)})
		}
	}
	var out []queue.Entry
	at := now()
	for i, sub := range c.userSubs(changer) {
		if !sub.active(at) {
			continue
		}
		n.CallbackData = sub.CallbackData
		f := sub.format()
		env := oma.Envelope{ContentType: f.ContentType(), Body: n.Marshal(f), Traceparent: tp}
		out = append(out, queue.Entry{ID: msgID + ".s" + strconv.Itoa(i), Dest: sub.Dest, Data: env.Marshal()})
	}
	return out
}
