package queue

import (
	"context"
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
// key in the KV bucket <prefix>_lock that expires lockTTL after its last renewal;
// the holder renews it every lockTTL/3 and deletes it at Close. A node that died
// holding it leaves it to expire: the next Open waits for that (LockWait).
//
// This keeps a second node from opening the prefix; it does not fence a node that
// lost its lock while running (a NATS partition longer than lockTTL): that node
// logs an error and goes on. Leases per partition, in the next step, replace it.
const lockTTL = 10 * time.Second

type jsLock struct {
	kv   jetstream.KeyValue
	who  []byte
	rev  uint64
	log  zerolog.Logger
	stop chan struct{}
	wg   sync.WaitGroup
}

// acquireLock takes the prefix's lock, waiting up to wait for another holder's
// lock to be released or to expire; ErrLocked if it is still held then.
func acquireLock(js jetstream.JetStream, o JetStreamOptions, log zerolog.Logger) (*jsLock, error) {
	ctx, cancel := context.WithTimeout(context.Background(), o.Timeout)
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: o.Prefix + "_lock",
		TTL: lockTTL, Replicas: o.Replicas, Storage: jetstream.FileStorage})
	cancel()
	if err != nil {
		return nil, fmt.Errorf("queue: jetstream lock bucket: %w", err)
	}
	host, _ := os.Hostname()
	l := &jsLock{kv: kv, who: fmt.Appendf(nil, "%s pid %d %s", host, os.Getpid(), nats.NewInbox()), log: log,
		stop: make(chan struct{})}
	deadline := time.Now().Add(o.LockWait)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), o.Timeout)
		l.rev, err = kv.Create(ctx, "owner", l.who)
		cancel()
		if err == nil {
			l.wg.Add(1)
			go l.renew()
			return l, nil
		}
		if !errors.Is(err, jetstream.ErrKeyExists) {
			return nil, fmt.Errorf("queue: take the jetstream lock: %w", err)
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("%w: another notifyrelay node uses jetstream prefix %q (%s)", ErrLocked, o.Prefix, l.holder())
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func (l *jsLock) holder() string {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if e, err := l.kv.Get(ctx, "owner"); err == nil {
		return string(e.Value())
	}
	return "holder unknown"
}

// renew keeps the lock alive until release.
func (l *jsLock) renew() {
	defer l.wg.Done()
	t := time.NewTicker(lockTTL / 3)
	defer t.Stop()
	for {
		select {
		case <-l.stop:
			return
		case <-t.C:
		}
		ctx, cancel := context.WithTimeout(context.Background(), lockTTL/3)
		rev, err := l.kv.Update(ctx, "owner", l.who, l.rev)
		cancel()
		if err != nil {
			l.log.Error().Err(err).Msg("queue: could not renew the jetstream prefix lock; another node may take this prefix")
			continue
		}
		l.rev = rev
	}
}

// release stops renewing and deletes the lock if it is still this node's.
func (l *jsLock) release() {
	close(l.stop)
	l.wg.Wait()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_ = l.kv.Delete(ctx, "owner", jetstream.LastRevision(l.rev))
}
