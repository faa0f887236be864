package relay_test

import (
	"context"
	"errors"
	"testing"

	"github.com/rs/zerolog"

	"notifyrelay/app/apptest"
	"notifyrelay/queue"
)

// An N1 outcome record written after its change's N2 (a late settle from another
// worker) has nothing waiting for it; the next start deletes it.
func TestStrayOutcomeRecordDeletedAtStart(t *testing.T) {
	dir := t.TempDir()
	key := []byte("chat/n/0123456789abcdef/3")
	withQueue(t, dir, func(q *queue.Badger) {
		if _, err := q.Append(context.Background(), queue.Write{Records: []queue.Record{{Key: key, Value: []byte{1}}}}); err != nil {
			t.Fatal(err)
		}
	})
	cfg := apptest.Config(t)
	cfg.DataDir = dir
	a := apptest.StartConfig(t, cfg)
	if err := a.Stop(); err != nil {
		t.Fatal(err)
	}
	withQueue(t, dir, func(q *queue.Badger) {
		if _, err := q.Get(context.Background(), key); !errors.Is(err, queue.ErrNotFound) {
			t.Errorf("stray outcome record still there after a start: %v", err)
		}
	})
}

func withQueue(t *testing.T, dir string, fn func(*queue.Badger)) {
	q, err := queue.OpenBadger(dir, queue.BadgerOptions{}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	fn(q)
}
