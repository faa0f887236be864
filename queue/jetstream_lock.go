package queue

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"
)

// The node keeps the queue's index and leases in memory, so one node at a time may
// use a prefix: the JetStream counterpart of Badger's directory lock. The lock is a
// key in the KV bucket <prefix>_lock that expires LockTTL after its last renewal;
// the holder renews it every LockTTL/4 and deletes it at Close. A node that died
// holding it leaves it to expire: the next Open waits for that (LockWait).
//
// A holder that could not renew for LockTTL/2 (cut off from NATS, or stalled)
// counts the lock as lost: from then on every commit of its engine fails with
// ErrLocked and Lost() is closed, so that it stops before the key expires and
// another node may take the prefix. The margin is half the TTL; this is not a
// fence against a process paused for longer than that (docs/scale-out.md).
const defaultLockTTL = 10 * time.Second

// HeldError is the ErrLocked that Open returns when another node holds the prefix.
type HeldError struct {
	Prefix string
	Who    string // host, pid and connection of the holder
	Addr   string // the holder's advertised address (JetStreamOptions.Advertise)
	Meta   string // the holder's JetStreamOptions.Meta
}

func (e *HeldError) Error() string {
	return fmt.Sprintf("%v: another notifyrelay node uses jetstream prefix %q (%s)", ErrLocked, e.Prefix, e.Who)
}

func (e *HeldError) Unwrap() error { return ErrLocked }

// lockValue is what the lock key holds.
type lockValue struct {
	Who  string `json:"who"`
	Addr string `json:"addr,omitempty"`
	Meta string `json:"meta,omitempty"`
}

type jsLock struct {
	kv      jetstream.KeyValue
	value   []byte
	ttl     time.Duration
	rev     uint64
	log     zerolog.Logger
	stop    chan struct{}
	lost    chan struct{}
	lostErr error
	lose1   sync.Once
	wg      sync.WaitGroup
}

// acquireLock takes the prefix's lock, waiting up to o.LockWait for another
// holder's lock to be released or to expire (a negative LockWait tries once); a
// *HeldError if it is still held then.
func acquireLock(js jetstream.JetStream, o JetStreamOptions, log zerolog.Logger) (*jsLock, error) {
	ctx, cancel := context.WithTimeout(context.Background(), o.Timeout)
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: o.Prefix + "_lock",
		TTL: o.LockTTL, Replicas: o.Replicas, Storage: jetstream.FileStorage})
	cancel()
	if err != nil {
		return nil, fmt.Errorf("queue: jetstream lock bucket: %w", err)
	}
	host, _ := os.Hostname()
	v, _ := json.Marshal(lockValue{Who: fmt.Sprintf("%s pid %d %s", host, os.Getpid(), nats.NewInbox()), Addr: o.Advertise, Meta: o.Meta})
	l := &jsLock{kv: kv, value: v, ttl: o.LockTTL, log: log, stop: make(chan struct{}), lost: make(chan struct{})}
	deadline := time.Now().Add(o.LockWait)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), o.Timeout)
		l.rev, err = kv.Create(ctx, "owner", l.value)
		cancel()
		if err == nil {
			l.wg.Add(1)
			go l.renew()
			return l, nil
		}
		if !errors.Is(err, jetstream.ErrKeyExists) {
			return nil, fmt.Errorf("queue: take the jetstream lock: %w", err)
		}
		if !time.Now().Before(deadline) {
			return nil, l.held(o.Prefix)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// held describes the current holder.
func (l *jsLock) held(prefix string) *HeldError {
	e := &HeldError{Prefix: prefix, Who: "holder unknown"}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if kve, err := l.kv.Get(ctx, "owner"); err == nil {
		var v lockValue
		if json.Unmarshal(kve.Value(), &v) == nil {
			e.Who, e.Addr, e.Meta = v.Who, v.Addr, v.Meta
		}
	}
	return e
}

// renew keeps the lock alive until release, and gives it up as lost when it could
// not be renewed for half its TTL.
func (l *jsLock) renew() {
	defer l.wg.Done()
	t := time.NewTicker(l.ttl / 4)
	defer t.Stop()
	lastOK := time.Now()
	for {
		select {
		case <-l.stop:
			return
		case <-t.C:
		}
		ctx, cancel := context.WithTimeout(context.Background(), l.ttl/4)
		rev, err := l.kv.Update(ctx, "owner", l.value, l.rev)
		cancel()
		if err == nil {
			l.rev, lastOK = rev, time.Now()
			continue
		}
		l.log.Error().Err(err).Msg("queue: could not renew the jetstream prefix lock")
		if time.Since(lastOK) >= l.ttl/2 || errors.Is(err, jetstream.ErrKeyExists) {
			l.lose(fmt.Errorf("%w: lost the jetstream prefix lock (not renewed for %v: %v)", ErrLocked, time.Since(lastOK).Round(time.Millisecond), err))
			return
		}
	}
}

// lose counts the lock as lost for err: every commit fails from then on.
func (l *jsLock) lose(err error) {
	l.lose1.Do(func() {
		l.lostErr = err
		close(l.lost)
		l.log.Error().Err(err).Msg("queue: stopping all writes; another node may take this prefix")
	})
}

// check returns the error that refuses every commit once the lock is lost.
func (l *jsLock) check() error {
	select {
	case <-l.lost:
		return l.lostErr
	default:
		return nil
	}
}

// release stops renewing and deletes the lock if it is still this node's.
func (l *jsLock) release() {
	close(l.stop)
	l.wg.Wait()
	if l.check() != nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_ = l.kv.Delete(ctx, "owner", jetstream.LastRevision(l.rev))
}
