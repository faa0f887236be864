package bridge

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"
	"go.opentelemetry.io/otel/trace"

	"notifyrelay/config"
	"notifyrelay/destkind"
	"notifyrelay/oma"
	"notifyrelay/queue"
	"notifyrelay/telemetry"
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

// storeQueue is what the channel store uses of the queue: its records, and the
// channel queues it drops.
type storeQueue interface {
	Append(ctx context.Context, w queue.Write) ([]uint64, error)
	Scan(ctx context.Context, prefix []byte, fn func(key, value []byte) error) error
	Read(ctx context.Context, dest string, after uint64, max int) ([]queue.Entry, error)
	Delete(ctx context.Context, dest string) error
	Dests(prefix string) []queue.DestStats
}

// store is the channel store: the live channels (hub), their durable records,
// lifetimes and expiry, callbackURLs, and the channel resources and callbackURL
// handlers (resources.go, callback.go). Deleting a channel ends its consumers and
// drops its queue.
type store struct {
	cfg          config.Channels
	maxPerUser   int    // limits.max_channels_per_user
	base         string // {public_url}{base_path}
	cbBase       string // normalised callbackURL prefix, for callbackDest
	q            storeQueue
	hub          *hub
	metrics      *metrics
	log          zerolog.Logger
	onSettled    func(tag string, delivered bool)
	onGone       func(ctx context.Context, dest string)
	writeTimeout time.Duration
	tracer       trace.Tracer // the accept span of callbackURL POSTs

	createMu sync.Mutex // makes "correlator unused → create" atomic

	life    context.Context // the bridge's: expiry deletes channels under it
	stopExp chan struct{}
	expiry  sync.WaitGroup // the expiry loop
	once    sync.Once
}

func newStore(o Options, life context.Context, m *metrics, log zerolog.Logger) *store {
	base := o.Config.Public() + o.Config.BasePath
	return &store{cfg: o.Config.Channels, maxPerUser: o.Config.Limits.MaxChannelsPerUser,
		base: base, cbBase: normalizeURL(base+"/notifications") + "/", q: o.Queue, hub: newHub(),
		metrics: m, log: log, onSettled: o.OnSettled, onGone: o.OnChannelGone,
		writeTimeout: o.Config.Channels.WriteTimeout.D(), life: life, tracer: telemetry.Or(o.Tracer),
		stopExp: make(chan struct{})}
}

// start loads the channels and launches lifetime expiry (until stop).
func (s *store) start(ctx context.Context) error {
	if err := s.load(ctx); err != nil {
		return err
	}
	s.expiry.Add(1)
	go func() {
		defer s.expiry.Done()
		s.expireLoop()
	}()
	return nil
}

// stop ends lifetime expiry; wait waits for it.
func (s *store) stop() { s.once.Do(func() { close(s.stopExp) }) }

func (s *store) wait() { s.expiry.Wait() }

// callbackDest maps one of our callbackURLs to its channel's queue destination.
func (s *store) callbackDest(notifyURL string) (string, bool) {
	n := normalizeURL(notifyURL)
	token, ok := strings.CutPrefix(n, s.cbBase)
	if !ok || token == "" || strings.Contains(token, "/") {
		return "", false
	}
	c := s.hub.byToken(token)
	if c == nil {
		return "", false
	}
	return c.dest(), true
}

// save makes st durable.
func (s *store) save(ctx context.Context, st state) error {
	v, err := json.Marshal(st)
	if err != nil {
		return fmt.Errorf("encode channel %s: %w", st.ID, err)
	}
	if _, err := s.q.Append(ctx, queue.Write{Records: []queue.Record{{Key: recordKey(st.ID), Value: v}}}); err != nil {
		return fmt.Errorf("save channel %s: %w", st.ID, err)
	}
	return nil
}

// load rebuilds the hub from the records, then drops queues of channels that no
// longer exist (what was appended to a callbackURL's destination after its channel
// went away).
func (s *store) load(ctx context.Context) error {
	err := s.q.Scan(ctx, []byte(recordPrefix), func(key, value []byte) error {
		var st state
		if err := json.Unmarshal(value, &st); err != nil {
			s.log.Warn().Err(err).Str("key", string(key)).Msg("skipping unreadable channel record")
			return nil
		}
		s.hub.add(&channel{st: st})
		s.metrics.channelAdded(st.Type)
		return nil
	})
	if err != nil {
		return fmt.Errorf("load channels: %w", err)
	}
	for _, d := range s.q.Dests(destkind.ChannelPrefix) {
		if s.hub.get(strings.TrimPrefix(d.Dest, destkind.ChannelPrefix)) == nil {
			s.dropQueue(ctx, d.Dest)
		}
	}
	return nil
}

// refresh restarts c's lifetime durably and returns the lifetime in force.
func (s *store) refresh(ctx context.Context, c *channel, lifetime int) (int, error) {
	st := s.hub.refresh(c, lifetime, time.Now())
	return st.Lifetime, s.save(ctx, st)
}

// expireLoop deletes channels when their lifetime ends. One timer follows the
// earliest expiry; the hub kicks it when that changes.
func (s *store) expireLoop() {
	t := time.NewTimer(time.Hour)
	defer t.Stop()
	for {
		c, at := s.hub.earliest()
		if c != nil && !at.After(time.Now()) {
			s.deleteChannel(s.life, c, "expired")
			continue
		}
		wait := time.Hour
		if c != nil {
			wait = time.Until(at)
		}
		t.Reset(wait)
		select {
		case <-t.C:
		case <-s.hub.kick:
			if !t.Stop() {
				<-t.C
			}
		case <-s.stopExp:
			return
		}
	}
}

// deleteChannel removes c with everything queued for it: its socket is closed, a
// pending poll is answered 404, OnChannelGone ends what feeds it (chat
// subscriptions), tagged notifications are settled as not delivered. The record
// goes after OnChannelGone: a crash in between keeps the channel, never a
// subscription to a channel that is gone.
func (s *store) deleteChannel(ctx context.Context, c *channel, why string) {
	c.life.Lock()
	defer c.life.Unlock()
	if c.gone.Load() || !s.hub.remove(c) {
		return
	}
	c.gone.Store(true)
	s.metrics.channelGone(c.st.Type)
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
	s.awaitAnswer(busy)
	s.awaitAnswer(socketDone) // OMA mode: frames waiting for their receipt
	if s.onGone != nil {
		s.onGone(ctx, c.dest())
	}
	if _, err := s.q.Append(ctx, queue.Write{Records: []queue.Record{{Key: recordKey(c.st.ID)}}}); err != nil {
		s.log.Error().Err(err).Str("channel", c.st.ID).Msg("removing channel record")
	}
	s.dropQueue(ctx, c.dest())
	s.log.Info().Str("channel", c.st.ID).Str("why", why).Msg("channel deleted")
}

// awaitAnswer waits, at most write_timeout, for a long-poll answer (or a socket's
// writer) to settle: what it carries counts as delivered if it reaches the client, so it
// must not be settled as dropped meanwhile.
func (s *store) awaitAnswer(busy <-chan struct{}) {
	if busy == nil {
		return
	}
	t := time.NewTimer(s.writeTimeout)
	defer t.Stop()
	select {
	case <-busy:
	case <-t.C:
	}
}

// dropQueue deletes dest, telling OnSettled about every tagged entry it held.
func (s *store) dropQueue(ctx context.Context, dest string) {
	if s.onSettled != nil {
		var after uint64
		for {
			es, err := s.q.Read(ctx, dest, after, 512)
			if err != nil || len(es) == 0 {
				break
			}
			for _, e := range es {
				s.settle(e.Data, false)
			}
			after = es[len(es)-1].Seq
		}
	}
	if err := s.q.Delete(ctx, dest); err != nil {
		s.log.Error().Err(err).Str("dest", dest).Msg("deleting channel queue")
	}
}

// settle tells OnSettled the outcome of a queued envelope that carries a tag.
func (s *store) settle(data []byte, delivered bool) {
	if s.onSettled == nil {
		return
	}
	if env, err := oma.UnmarshalEnvelope(data); err == nil && env.Tag != "" {
		s.onSettled(env.Tag, delivered)
	}
}
