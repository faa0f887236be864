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
// ("delivered" mode), under keyChange+Msg. Each settled N1 k adds a record
// keyChange+Msg+"/"+k holding its outcome; N2 is appended together with the
// deletion of all of them, so a restart anywhere in between still ends in exactly
// one N2.
type changeRecord struct {
	Session   string   `json:"s"`
	Changer   string   `json:"c"`
	Msg       string   `json:"m"`
	Receivers []string `json:"r"` // participants that had a subscription
	Owner     []int    `json:"o"` // N1 k → index in Receivers
}

// tracker follows one change's N1s in memory.
type tracker struct {
	mu      sync.Mutex
	rec     changeRecord
	outcome []int8
	left    int  // N1s not yet settled
	done    bool // N2 appended (or being appended)
}

func (t *tracker) record() queue.Record {
	v, _ := json.Marshal(t.rec)
	return queue.Record{Key: []byte(keyChange + t.rec.Msg), Value: v}
}

func (r *Relay) track(t *tracker) {
	r.chat.trackMu.Lock()
	r.chat.trackers[t.rec.Msg] = t
	r.chat.trackMu.Unlock()
}

func (r *Relay) untrack(t *tracker) {
	if t == nil {
		return
	}
	r.chat.trackMu.Lock()
	delete(r.chat.trackers, t.rec.Msg)
	r.chat.trackMu.Unlock()
}

// loadChange rebuilds a tracker from its records (rest is "<msg>" or "<msg>/<k>").
// Records come in key order, so a change's record precedes its outcomes.
func (c *chatState) loadChange(rest string, v []byte) error {
	msg, k, isOutcome := strings.Cut(rest, "/")
	if !isOutcome {
		t := &tracker{}
		if err := json.Unmarshal(v, &t.rec); err != nil {
			return err
		}
		t.outcome = make([]int8, len(t.rec.Owner))
		t.left = len(t.outcome)
		c.trackers[msg] = t
		return nil
	}
	t := c.trackers[msg]
	i, err := strconv.Atoi(k)
	if t == nil || err != nil || i < 0 || i >= len(t.outcome) || len(v) != 1 || t.outcome[i] != n1Pending {
		// A stray outcome: written just after its change's N2 (by another worker's
		// late settle), so nothing waits for it. Deleted once loading is done.
		c.strays = append(c.strays, queue.Record{Key: []byte(keyChange + rest)})
		return nil
	}
	t.outcome[i] = int8(v[0])
	t.left--
	return nil
}

// finishSettled sends N2 for changes whose N1s all settled before a restart, and
// deletes stray outcome records.
func (r *Relay) finishSettled(ctx context.Context) {
	for _, t := range r.chat.trackers {
		if t.left == 0 {
			r.finish(ctx, t)
		}
	}
	if len(r.chat.strays) == 0 {
		return
	}
	if err := r.append(ctx, queue.Write{Records: r.chat.strays}); err != nil {
		r.log.Warn().Err(err).Int("records", len(r.chat.strays)).Msg("delete stray N1 outcome records")
	}
	r.chat.strays = nil
}

// settled records the outcome of N1 tag (its entry id "<msg>.<k>") and sends N2
// once the change's last N1 has settled. Unknown or repeated tags are ignored:
// at-least-once delivery may report an N1 twice.
func (r *Relay) settled(tag string, ok bool) {
	msg, ks, found := strings.Cut(tag, ".")
	k, err := strconv.Atoi(ks)
	if !found || err != nil {
		return
	}
	r.chat.trackMu.Lock()
	t := r.chat.trackers[msg]
	r.chat.trackMu.Unlock()
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
	t.mu.Unlock()
	ctx := context.Background()
	if last {
		r.finish(ctx, t)
		return
	}
	key := []byte(keyChange + msg + "/" + ks)
	if err := r.append(ctx, queue.Write{Records: []queue.Record{{Key: key, Value: []byte{byte(out)}}}}); err != nil {
		r.log.Warn().Err(err).Str("change", msg).Msg("record N1 outcome")
	}
}

// finish appends N2 to the changer's subscriptions and deletes the change's records,
// in one write.
func (r *Relay) finish(ctx context.Context, t *tracker) {
	t.mu.Lock()
	if t.done {
		t.mu.Unlock()
		return
	}
	t.done = true
	t.mu.Unlock()
	r.chat.destMu.RLock()
	w := queue.Write{Entries: r.n2Entries(t.rec.Session, t.rec.Changer, t.rec.Msg, t.unreached())}
	w.Records = append(w.Records, queue.Record{Key: []byte(keyChange + t.rec.Msg)})
	for k := range t.outcome {
		w.Records = append(w.Records, queue.Record{Key: []byte(keyChange + t.rec.Msg + "/" + strconv.Itoa(k))})
	}
	err := r.append(ctx, w)
	r.chat.destMu.RUnlock()
	if err != nil {
		r.log.Warn().Err(err).Str("change", t.rec.Msg).Msg("append status notification; sent after restart")
		return
	}
	r.untrack(t)
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
func (r *Relay) n2Entries(sessionID, changer, msgID string, unreached []string) []queue.Entry {
	esc := api.EscapeID(changer)
	g := r.groupURL(esc, sessionID)
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
	for i, sub := range r.chat.userSubs(changer) {
		if !sub.active(at) {
			continue
		}
		n.CallbackData = sub.CallbackData
		f := sub.format()
		env := oma.Envelope{ContentType: f.ContentType(), Body: n.Marshal(f)}
		out = append(out, queue.Entry{ID: msgID + ".s" + strconv.Itoa(i), Dest: sub.Dest, Data: env.Marshal()})
	}
	return out
}
