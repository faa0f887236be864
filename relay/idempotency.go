package relay

import (
	"sync"
	"time"

	"notifyrelay/api"
	"notifyrelay/delivery"
	"notifyrelay/oma"
	"notifyrelay/queue"
)

// maxIdempotencyKey bounds an Idempotency-Key (the IETF draft's keys are short
// opaque strings, typically UUIDs).
const maxIdempotencyKey = 255

// idemGate serves the Idempotency-Key header of the requests that create
// something (operator deliveries, chat changes): the first answer to a key is
// written with what it created, and given again to a repeat within the window.
type idemGate struct {
	store  queue.Store // nil: off
	window time.Duration
	mu     sync.Mutex
	busy   map[string]chan struct{} // keys being served: a repeat waits for the first
}

func newIdemGate(store queue.Store, window time.Duration) *idemGate {
	return &idemGate{store: store, window: window, busy: map[string]chan struct{}{}}
}

// lock waits until no other request holds hash and takes it; unlock releases it.
func (g *idemGate) lock(hash string) (unlock func()) {
	for {
		g.mu.Lock()
		wait, held := g.busy[hash]
		if !held {
			done := make(chan struct{})
			g.busy[hash] = done
			g.mu.Unlock()
			return func() {
				g.mu.Lock()
				delete(g.busy, hash)
				g.mu.Unlock()
				close(done)
			}
		}
		g.mu.Unlock()
		<-wait
	}
}

// idemRequest is one request's Idempotency-Key, resolved and held.
type idemRequest struct {
	hash, fingerprint string
	window            time.Duration
	unlock            func()
}

// records keeps ans for the key, to be written with what the request creates.
func (k *idemRequest) records(ans api.Answer) []queue.Record {
	if k == nil {
		return nil
	}
	return delivery.IdemRecords(k.hash, delivery.IdemAnswer{Fingerprint: k.fingerprint, Status: ans.Status,
		Body: ans.Body, Location: ans.Location, At: time.Now()}, k.window)
}

func (k *idemRequest) done() {
	if k != nil {
		k.unlock()
	}
}

// check reads the request's Idempotency-Key within scope (the route, and for a
// chat change the user and session). With none (or the gate off) it returns
// nil, nil, nil. With one answered within the window it returns that answer;
// with one not seen, the held key whose records the handler writes with its
// write and whose done it calls. content is what the request asks: a repeat
// must ask the same (else 422).
func (g *idemGate) check(r *api.Request, scope string, content ...[]byte) (*delivery.IdemAnswer, *idemRequest, *oma.RequestError) {
	key := string(r.Request.Header.Peek("Idempotency-Key"))
	if key == "" || g.window <= 0 || g.store == nil {
		return nil, nil, nil
	}
	if len(key) > maxIdempotencyKey || !printableASCII(key) {
		return nil, nil, oma.InvalidInput("Idempotency-Key (1 to 255 printable ASCII characters)")
	}
	k := &idemRequest{hash: delivery.IdemHash(scope, key), fingerprint: delivery.Fingerprint(content...), window: g.window}
	k.unlock = g.lock(k.hash)
	prev, found, err := delivery.LookupIdem(r, g.store, k.hash, g.window, time.Now())
	switch {
	case err != nil:
		k.done()
		return nil, nil, queueFault(err)
	case found && prev.Fingerprint != k.fingerprint:
		k.done()
		return nil, nil, oma.IdempotencyKeyReused()
	case found:
		k.done()
		return &prev, nil, nil
	}
	return nil, k, nil
}

// idempotency is check for the operator API, whose answers are kept whole.
func (o *operatorAPI) idempotency(r *api.Request, scope string, content ...[]byte) (*api.Answer, *idemRequest, *oma.RequestError) {
	prev, k, e := o.idem.check(r, scope, content...)
	if prev == nil {
		return nil, k, e
	}
	return &api.Answer{Status: prev.Status, Body: prev.Body, Location: prev.Location}, nil, nil
}

func printableASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return false
		}
	}
	return true
}
