package relay

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/rs/zerolog"
	"github.com/valyala/fasthttp"
	"go.opentelemetry.io/otel/trace"

	"notifyrelay/api"
	"notifyrelay/config"
	"notifyrelay/oma"
	"notifyrelay/queue"
	"notifyrelay/telemetry"
)

// Record key prefixes of the chat state (the durable truth; chatState caches it).
const (
	keySession      = "chat/g/" // + sessionId → session JSON
	keyIcon         = "chat/i/" // + sessionId → attached icon bytes
	keySubscription = "chat/s/" // + subscriptionId → subscription JSON
	keyCorrelator   = "chat/k/" // + kind \x00 user \x00 clientCorrelator → correlation JSON
	keyChange       = "chat/n/" // + changeId → pending N2 and the N1 outcomes so far
)

// chatQueue is what the chat uses of the queue.
type chatQueue interface {
	Append(ctx context.Context, w queue.Write) ([]uint64, error)
	Enqueue(ctx context.Context, w queue.Write) (wait func() ([]uint64, error))
	Stage(ctx context.Context, records ...queue.Record) error
	Delete(ctx context.Context, dest string) error
	queue.Store
}

// chat is the Chat API: group sessions, subscriptions and the changes whose N2
// waits for their N1s. Its maps are the in-memory copy of the chat records, loaded
// at start and kept in step with every durable write.
type chat struct {
	q        chatQueue // nil: nothing durable (benchmarks of the CPU path)
	cfg      config.Config
	log      zerolog.Logger
	channels ChannelLookup // nil: no channels
	base     string        // {public_url}{base_path}/chat/v1/
	tracer   trace.Tracer  // the accept span of each change (telemetry)

	mu       sync.RWMutex
	sessions map[string]*sessionEntry
	created  map[string]int             // sessions by Creator (they are kept for ever)
	subs     map[string]*subscription   // by id
	byUser   map[string][]*subscription // copy-on-write slices

	createMu sync.Mutex // serialises creates, for clientCorrelator checks
	idem     *idemGate  // Idempotency-Key on changes
	// destGone is told of a webhook destination that ended with its subscription
	// (delivery.Controls.Forget); nil: nobody.
	destGone func(ctx context.Context, dest string)

	// destMu is read-held from choosing subscriptions' destinations until the write
	// to them is enqueued (its place in commit order fixed); ChannelGone write-holds
	// it, so that once it returns every write aimed at the destinations of the
	// subscriptions it ended commits before anything the bridge does next.
	// Lock order: destMu before a session's mu.
	destMu sync.RWMutex

	trackMu   sync.Mutex
	trackers  map[string]*tracker // pending N2 by changeId
	finishing sync.WaitGroup      // N2 appends waiting for their commit

	// life is the context of what the chat does outside requests (recording N1
	// outcomes, appending N2): it ends when the relay stops.
	life context.Context
	end  context.CancelFunc
}

func newChat(q chatQueue, cfg config.Config, log zerolog.Logger, channels ChannelLookup) *chat {
	life, end := context.WithCancel(context.Background())
	return &chat{life: life, end: end, q: q, cfg: cfg, log: log, channels: channels, base: cfg.Public() + cfg.BasePath + "/chat/v1/",
		tracer:   telemetry.Or(nil),
		sessions: map[string]*sessionEntry{}, created: map[string]int{}, subs: map[string]*subscription{},
		byUser: map[string][]*subscription{}, trackers: map[string]*tracker{},
		idem: newIdemGate(storeOf(q), cfg.Delivery.IdempotencyWindow.D())}
}

// storeOf is q's records, nil when nothing is durable.
func storeOf(q chatQueue) queue.Store {
	if q == nil {
		return nil
	}
	return q
}

// load reads every chat record into memory and finishes changes whose N1 all
// settled before a restart.
func (c *chat) load(ctx context.Context) error {
	if c.q == nil {
		return nil
	}
	err := c.q.Scan(ctx, []byte("chat/"), func(k, v []byte) error {
		return c.loadRecord(string(k), v)
	})
	if err != nil {
		return fmt.Errorf("load chat state: %w", err)
	}
	c.finishSettled(ctx)
	return nil
}

func (c *chat) loadRecord(key string, v []byte) error {
	switch {
	case len(key) > len(keySession) && key[:len(keySession)] == keySession:
		var s session
		if err := json.Unmarshal(v, &s); err != nil {
			return fmt.Errorf("session record %s: %w", key, err)
		}
		s.index()
		c.sessions[s.ID] = &sessionEntry{cur: &s}
		if s.Creator != "" {
			c.created[s.Creator]++
		}
	case len(key) > len(keySubscription) && key[:len(keySubscription)] == keySubscription:
		var s subscription
		if err := json.Unmarshal(v, &s); err != nil {
			return fmt.Errorf("subscription record %s: %w", key, err)
		}
		c.putSub(&s)
	case len(key) > len(keyChange) && key[:len(keyChange)] == keyChange:
		return c.loadChange(key[len(keyChange):], v)
	}
	return nil
}

// routes adds the chat resources (docs/api.md §3).
func (c *chat) routes(rt *api.Router, auth *api.Auth) {
	b, open := "/chat/v1/{userId}", api.ForUser(auth)
	rt.Handle(b+"/group", open, api.Methods{"POST": c.createGroup})
	rt.Handle(b+"/group/{sessionId}", open, api.Methods{"GET": c.getGroup})
	rt.Handle(b+"/group/{sessionId}/participants", open, api.Methods{"GET": c.listParticipants, "POST": c.addParticipants})
	rt.Handle(b+"/group/{sessionId}/participants/{participantId}", open, api.Methods{"DELETE": c.removeParticipant})
	rt.Handle(b+"/group/{sessionId}/messages", open, api.Methods{"POST": c.postSessionData})
	rt.Handle(b+"/group/{sessionId}/icon", open, api.Methods{"GET": c.getIcon})
	rt.Handle(b+"/subscriptions", open, api.Methods{"GET": c.listSubscriptions, "POST": c.createSubscription})
	rt.Handle(b+"/subscriptions/{subscriptionId}", open, api.Methods{"GET": c.getSubscription, "DELETE": c.deleteSubscription})
}

// requestBody checks the Content-Type (415 unless XML or JSON) and returns a copy.
func requestBody(ctx *fasthttp.RequestCtx) (oma.Format, []byte, *oma.RequestError) {
	f, e := api.RequestFormat(ctx)
	if e != nil {
		return f, nil, e
	}
	return f, api.Body(ctx), nil
}

// newID returns n random bytes in hex.
func newID(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// append writes w durably.
func (c *chat) append(ctx context.Context, w queue.Write) error {
	if c.q == nil {
		return errors.New("no queue")
	}
	_, err := c.q.Append(ctx, w)
	return err
}

// correlation is what a clientCorrelator was first used for.
type correlation struct {
	Hash string `json:"h"`
	ID   string `json:"id"`
}

func correlatorKey(kind, user, corr string) []byte {
	return []byte(keyCorrelator + kind + "\x00" + user + "\x00" + corr)
}

// correlated looks up a clientCorrelator: the id created with it, "" when unused,
// 409 SVC0005 when it was used with a different request, or 503 when it cannot be
// read. Callers hold createMu.
func (c *chat) correlated(ctx context.Context, kind, user, corr string, req any) (id, hash string, e *oma.RequestError) {
	sum := sha256.Sum256(fmt.Appendf(nil, "%#v", req))
	hash = hex.EncodeToString(sum[:])
	if corr == "" || c.q == nil {
		return "", hash, nil
	}
	v, err := c.q.Get(ctx, correlatorKey(kind, user, corr))
	if errors.Is(err, queue.ErrNotFound) {
		return "", hash, nil
	}
	if err != nil { // not "unused": creating now could duplicate
		return "", hash, oma.Unavailable().Because(fmt.Errorf("read clientCorrelator: %w", err))
	}
	var prior correlation
	if json.Unmarshal(v, &prior) != nil || prior.Hash != hash {
		return "", hash, oma.DuplicateCorrelator(corr)
	}
	return prior.ID, hash, nil
}

func correlationRecord(kind, user, corr, hash, id string) queue.Record {
	v, _ := json.Marshal(correlation{Hash: hash, ID: id})
	return queue.Record{Key: correlatorKey(kind, user, corr), Value: v}
}

func now() time.Time { return time.Now().UTC() }
