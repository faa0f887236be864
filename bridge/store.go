package bridge

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"notifyrelay/destkind"
	"notifyrelay/oma"
	"notifyrelay/queue"
)

// recordPrefix starts every record the bridge keeps in the queue.
const recordPrefix = "nc/ch/"

func recordKey(id string) []byte { return []byte(recordPrefix + id) }

// randomHex returns n random bytes hex-encoded (n=16: the 128 bits of a callbackURL).
func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // never fails (crypto/rand panics instead)
	return hex.EncodeToString(b)
}

// save makes st durable.
func (b *Bridge) save(ctx context.Context, st state) error {
	v, err := json.Marshal(st)
	if err != nil {
		return fmt.Errorf("encode channel %s: %w", st.ID, err)
	}
	if _, err := b.q.Append(ctx, queue.Write{Records: []queue.Record{{Key: recordKey(st.ID), Value: v}}}); err != nil {
		return fmt.Errorf("save channel %s: %w", st.ID, err)
	}
	return nil
}

// load rebuilds the hub from the records, then drops queues of channels that no
// longer exist (what was appended to a callbackURL's destination after its channel
// went away).
func (b *Bridge) load(ctx context.Context) error {
	err := b.q.Scan(ctx, []byte(recordPrefix), func(key, value []byte) error {
		var st state
		if err := json.Unmarshal(value, &st); err != nil {
			b.log.Warn().Err(err).Str("key", string(key)).Msg("skipping unreadable channel record")
			return nil
		}
		b.hub.add(&channel{st: st})
		b.metrics.channelAdded(st.Type)
		return nil
	})
	if err != nil {
		return fmt.Errorf("load channels: %w", err)
	}
	for _, d := range b.q.Dests(destkind.ChannelPrefix) {
		if b.hub.get(strings.TrimPrefix(d.Dest, destkind.ChannelPrefix)) == nil {
			b.dropQueue(ctx, d.Dest)
		}
	}
	return nil
}

// refresh restarts c's lifetime durably and returns the lifetime in force.
func (b *Bridge) refresh(ctx context.Context, c *channel, lifetime int) (int, error) {
	st := b.hub.refresh(c, lifetime, time.Now())
	return st.Lifetime, b.save(ctx, st)
}

// expireLoop deletes channels when their lifetime ends. One timer follows the
// earliest expiry; the hub kicks it when that changes.
func (b *Bridge) expireLoop() {
	t := time.NewTimer(time.Hour)
	defer t.Stop()
	for {
		c, at := b.hub.earliest()
		if c != nil && !at.After(time.Now()) {
			b.deleteChannel(context.Background(), c, "expired")
			continue
		}
		wait := time.Hour
		if c != nil {
			wait = time.Until(at)
		}
		t.Reset(wait)
		select {
		case <-t.C:
		case <-b.hub.kick:
			if !t.Stop() {
				<-t.C
			}
		case <-b.stopExp:
			return
		}
	}
}

// deleteChannel removes c with everything queued for it: its socket is closed, a
// pending poll is answered 404, OnChannelGone ends what feeds it (chat
// subscriptions), tagged notifications are settled as not delivered. The record
// goes after OnChannelGone: a crash in between keeps the channel, never a
// subscription to a channel that is gone.
func (b *Bridge) deleteChannel(ctx context.Context, c *channel, why string) {
	c.life.Lock()
	defer c.life.Unlock()
	if c.gone.Load() || !b.hub.remove(c) {
		return
	}
	c.gone.Store(true)
	b.metrics.channelGone(c.st.Type)
	c.mu.Lock()
	var socketDone chan struct{}
	if c.conn != nil {
		c.conn.stop(closeNormal, "channel "+why)
		socketDone = c.conn.writerDone
	}
	if c.poll != nil {
		c.poll.end(endDeleted)
	}
	busy := c.sending
	c.mu.Unlock()
	b.awaitAnswer(busy)
	b.awaitAnswer(socketDone) // OMA mode: frames waiting for their receipt
	if b.opts.OnChannelGone != nil {
		b.opts.OnChannelGone(ctx, c.dest())
	}
	if _, err := b.q.Append(ctx, queue.Write{Records: []queue.Record{{Key: recordKey(c.st.ID)}}}); err != nil {
		b.log.Error().Err(err).Str("channel", c.st.ID).Msg("removing channel record")
	}
	b.dropQueue(ctx, c.dest())
	b.log.Info().Str("channel", c.st.ID).Str("why", why).Msg("channel deleted")
}

// awaitAnswer waits, at most write_timeout, for a long-poll answer (or a socket's
// writer) to settle: what it carries counts as delivered if it reaches the client, so it
// must not be settled as dropped meanwhile.
func (b *Bridge) awaitAnswer(busy <-chan struct{}) {
	if busy == nil {
		return
	}
	t := time.NewTimer(b.cfg.WriteTimeout.D())
	defer t.Stop()
	select {
	case <-busy:
	case <-t.C:
	}
}

// dropQueue deletes dest, telling OnSettled about every tagged entry it held.
func (b *Bridge) dropQueue(ctx context.Context, dest string) {
	if b.opts.OnSettled != nil {
		var after uint64
		for {
			es, err := b.q.Read(ctx, dest, after, 512)
			if err != nil || len(es) == 0 {
				break
			}
			for _, e := range es {
				b.settle(e.Data, false)
			}
			after = es[len(es)-1].Seq
		}
	}
	if err := b.q.Delete(ctx, dest); err != nil {
		b.log.Error().Err(err).Str("dest", dest).Msg("deleting channel queue")
	}
}

// settle tells OnSettled the outcome of a queued envelope that carries a tag.
func (b *Bridge) settle(data []byte, delivered bool) {
	if b.opts.OnSettled == nil {
		return
	}
	if env, err := oma.UnmarshalEnvelope(data); err == nil && env.Tag != "" {
		b.opts.OnSettled(env.Tag, delivered)
	}
}
