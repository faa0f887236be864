package queue

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

// harness opens an engine for a test and, for durable engines, reopens it.
type harness struct {
	open   func(t *testing.T) Engine
	reopen func(t *testing.T, e Engine) Engine // same engine when not durable
}

func testLogger(t testing.TB) zerolog.Logger {
	return zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel)
}

func openBadgerT(t testing.TB, dir string) *Badger {
	t.Helper()
	b, err := OpenBadger(dir, BadgerOptions{}, testLogger(t))
	if err != nil {
		t.Fatalf("open badger: %v", err)
	}
	t.Cleanup(func() { _ = b.Close() })
	return b
}

func badgerHarness(reopen bool) harness {
	return harness{
		open: func(t *testing.T) Engine { return openBadgerT(t, t.TempDir()) },
		reopen: func(t *testing.T, e Engine) Engine {
			if !reopen {
				return e
			}
			b := e.(*Badger)
			if err := b.Close(); err != nil {
				t.Fatalf("close: %v", err)
			}
			return openBadgerT(t, b.dir)
		},
	}
}

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// checkFor polls cond until it returns nil or the deadline passes.
func checkFor(t testing.TB, total time.Duration, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(total)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("condition not met after %v: %v", total, err)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func entry(dest, id, data string) Entry {
	return Entry{Dest: dest, ID: id, Data: []byte(data)}
}

func mustAppend(t testing.TB, q Queue, entries ...Entry) []uint64 {
	t.Helper()
	seqs, err := q.Append(ctxT(t), Write{Entries: entries})
	if err != nil {
		t.Fatalf("append: %v", err)
	}
	return seqs
}

func mustRead(t testing.TB, q Queue, dest string, after uint64, max int) []Entry {
	t.Helper()
	es, err := q.Read(ctxT(t), dest, after, max)
	if err != nil {
		t.Fatalf("read %s: %v", dest, err)
	}
	return es
}

// seqsOf lists entries as "seq:id" for compact comparisons.
func seqsOf(es []Entry) string {
	s := ""
	for _, e := range es {
		s += fmt.Sprintf("%d:%s ", e.Seq, e.ID)
	}
	return s
}

func wantErr(t testing.TB, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("error %v, want %v", err, target)
	}
}

func mustNext(t testing.TB, s Scheduler, prefix string, within time.Duration) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), within)
	defer cancel()
	d, err := s.Next(ctx, prefix)
	if err != nil {
		t.Fatalf("next %q: %v", prefix, err)
	}
	return d
}

func noNext(t testing.TB, s Scheduler, prefix string, wait time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	if d, err := s.Next(ctx, prefix); err == nil {
		t.Fatalf("next %q: got %q, want nothing", prefix, d)
	}
}

func gotSignal(t testing.TB, ch <-chan struct{}, within time.Duration) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(within):
		t.Fatalf("no signal within %v", within)
	}
}
