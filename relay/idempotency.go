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

// idemLocks serialises requests that carry the same Idempotency-Key, so the
// second waits for the first's answer instead of queueing again beside it.
type idemLocks struct {
	mu   sync.Mutex
	busy map[string]chan struct{}
}

// lock waits until no other request holds hash and takes it; unlock releases it.
func (l *idemLocks) lock(hash string) (unlock func()) {
	for {
		l.mu.Lock()
		wait, held := l.busy[hash]
		if !held {
			done := make(chan struct{})
			l.busy[hash] = done
			l.mu.Unlock()
			return func() {
				l.mu.Lock()
				delete(l.busy, hash)
				l.mu.Unlock()
				close(done)
			}
		}
		l.mu.Unlock()
		<-wait
	}
}

// idemRequest is one request's Idempotency-Key, resolved.
type idemRequest struct {
	hash, fingerprint string
	window            time.Duration
	unlock            func()
}

// records keeps ans for the key, to be written with what the request queues.
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

// idempotency reads the request's Idempotency-Key. With none (or the window off)
// it returns nil, nil, nil. With one answered within the window it returns that
// answer (replay); with one not seen, the idemRequest whose records the handler
// writes with its Append, and whose done it calls.
func (o *operatorAPI) idempotency(r *api.Request, scope string, content ...[]byte) (*api.Answer, *idemRequest, *oma.RequestError) {
	key := string(r.Request.Header.Peek("Idempotency-Key"))
	window := o.cfg.Delivery.IdempotencyWindow.D()
	if key == "" || window <= 0 {
		return nil, nil, nil
	}
	if len(key) > maxIdempotencyKey || !printableASCII(key) {
		return nil, nil, oma.InvalidInput("Idempotency-Key (1 to 255 printable ASCII characters)")
	}
	k := &idemRequest{hash: delivery.IdemHash(scope, key), fingerprint: delivery.Fingerprint(content...), window: window}
	k.unlock = o.idem.lock(k.hash)
	prev, found, err := o.book.Idempotent(r, k.hash, window, time.Now())
	switch {
	case err != nil:
		k.done()
		return nil, nil, queueFault(err)
	case found && prev.Fingerprint != k.fingerprint:
		k.done()
		return nil, nil, oma.IdempotencyKeyReused()
	case found:
		k.done()
		return &api.Answer{Status: prev.Status, Body: prev.Body, Location: prev.Location}, nil, nil
	}
	return nil, k, nil
}

func printableASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return false
		}
	}
	return true
}
