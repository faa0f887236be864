package queue

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"
)

// ledger records what the queue acknowledged: to producers (seq → id per dest) and
// from consumers (highest acked seq per dest).
type ledger struct {
	mu       sync.Mutex
	produced map[string]map[uint64]string
	acked    map[string]uint64
}

func newLedger() *ledger {
	return &ledger{produced: map[string]map[uint64]string{}, acked: map[string]uint64{}}
}

func (l *ledger) produce(es []Entry, seqs []uint64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for i, e := range es {
		if l.produced[e.Dest] == nil {
			l.produced[e.Dest] = map[uint64]string{}
		}
		l.produced[e.Dest][seqs[i]] = e.ID
	}
}

func (l *ledger) ack(dest string, seq uint64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.acked[dest] = max(l.acked[dest], seq)
}

// TestTorture runs producers and consumers against Badger, closes it under them,
// reopens, and checks that nothing acknowledged to a producer is missing, nothing
// acknowledged by a consumer is back, and nothing was invented.
func TestTorture(t *testing.T) {
	dir := t.TempDir()
	l := newLedger()
	for round := 0; round < 3; round++ {
		e := openBadgerT(t, dir)
		checkLedger(t, e, l)
		wg := startTorture(context.Background(), t, e, l, round)
		time.Sleep(150 * time.Millisecond) // let them work, then pull the rug
		if err := e.Close(); err != nil {
			t.Fatal(err)
		}
		wg.Wait()
	}
	e := openBadgerT(t, dir)
	checkLedger(t, e, l)
	if len(l.produced) == 0 {
		t.Fatal("nothing produced")
	}
}

// TestMemoryTorture runs the same load against the memory engine and stops it by
// cancelling the context, then checks the ledger on the live engine.
func TestMemoryTorture(t *testing.T) {
	e := NewMemory(testLogger(t))
	defer e.Close()
	l := newLedger()
	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Millisecond)
	defer cancel()
	startTorture(ctx, t, e, l, 0).Wait()
	checkLedger(t, e, l)
	if len(l.produced) == 0 {
		t.Fatal("nothing produced")
	}
}

func startTorture(ctx context.Context, t *testing.T, e Engine, l *ledger, round int) *sync.WaitGroup {
	var wg sync.WaitGroup
	for p := 0; p < 4; p++ {
		wg.Add(1)
		go func() { defer wg.Done(); tortureProducer(ctx, e, l, round, p) }()
	}
	for c := 0; c < 3; c++ {
		wg.Add(1)
		go func() { defer wg.Done(); tortureConsumer(ctx, t, e, l) }()
	}
	return &wg
}

func tortureProducer(ctx context.Context, e Engine, l *ledger, round, p int) {
	for i := 0; ; i++ {
		var es []Entry
		for j := 0; j <= i%3; j++ {
			id := fmt.Sprintf("r%d-p%d-%d-%d", round, p, i, j)
			es = append(es, entry(fmt.Sprintf("t/%d", (i+j)%6), id, "data-"+id))
		}
		seqs, err := e.Append(ctx, Write{Entries: es})
		if err != nil {
			return // closed or cancelled: not applied
		}
		l.produce(es, seqs)
	}
}

func tortureConsumer(ctx context.Context, t *testing.T, e Engine, l *ledger) {
	for {
		dest, err := e.Next(ctx, "t/")
		if err != nil {
			return
		}
		es, err := e.Read(ctx, dest, 0, 8)
		if err == nil && len(es) > 0 {
			checkContiguous(t, es)
			err = e.Ack(ctx, dest, es[len(es)-1].Seq)
			if err == nil {
				l.ack(dest, es[len(es)-1].Seq)
			}
		}
		e.Release(dest)
		if errors.Is(err, ErrClosed) || ctx.Err() != nil {
			return
		}
	}
}

func checkContiguous(t *testing.T, es []Entry) {
	for i := 1; i < len(es); i++ {
		if es[i].Seq != es[i-1].Seq+1 {
			t.Errorf("gap in read: %s", seqsOf(es))
			return
		}
	}
}

// checkLedger reads every destination of l: each must hold exactly the produced
// entries after the last consumer ack, in order, with their data.
func checkLedger(t *testing.T, e Engine, l *ledger) {
	t.Helper()
	for dest, bySeq := range l.produced {
		es := mustRead(t, e, dest, 0, 1<<20)
		want := l.acked[dest] + 1
		for _, x := range es {
			if x.Seq != want || bySeq[x.Seq] != x.ID || string(x.Data) != "data-"+x.ID {
				t.Fatalf("%s: got %d:%s, want seq %d id %q", dest, x.Seq, x.ID, want, bySeq[x.Seq])
			}
			want++
		}
		for seq := range bySeq {
			if seq >= want {
				t.Fatalf("%s: acknowledged seq %d missing (read up to %d)", dest, seq, want-1)
			}
		}
	}
}
