package delivery

import (
	"context"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"notifyrelay/queue"
)

func countKeys(t *testing.T, q queue.Store, prefix string) int {
	t.Helper()
	n := 0
	if err := q.Scan(context.Background(), []byte(prefix), func(_, _ []byte) error { n++; return nil }); err != nil {
		t.Fatal(err)
	}
	return n
}

// An idempotency key is forgotten once its window ended, unless it was answered
// again since (its newer record stays, only the stale index entry goes).
func TestSweepIdempotency(t *testing.T) {
	ctx := context.Background()
	q := queue.NewMemory(zerolog.Nop())
	defer q.Close()
	b := NewBook(q)
	t0 := time.Now()
	const window = time.Minute
	for _, hash := range []string{"old", "renewed"} {
		if _, err := q.Append(ctx, queue.Write{Records: IdemRecords(hash, IdemAnswer{Status: 202, At: t0}, window)}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := q.Append(ctx, queue.Write{Records: IdemRecords("renewed", IdemAnswer{Status: 202, At: t0.Add(2 * window)}, window)}); err != nil {
		t.Fatal(err)
	}
	n, err := sweepIdempotency(ctx, q, t0.Add(window+time.Second), window, 1000)
	if err != nil || n != 2 {
		t.Fatalf("sweep: %d %v, want the two stale index entries", n, err)
	}
	if _, found, _ := b.Idempotent(ctx, "old", window, t0); found {
		t.Error("the expired key is still there")
	}
	if _, found, _ := b.Idempotent(ctx, "renewed", window, t0.Add(2*window)); !found {
		t.Error("the renewed key was removed")
	}
	if got := countKeys(t, q, keyIdemExpiry); got != 1 {
		t.Errorf("%d index entries left, want the renewed key's", got)
	}
}

// Retained notifications are listed from a seq and since a time, and removed by
// the sweeper once their time is up.
func TestRetainedListAndSweep(t *testing.T) {
	ctx := context.Background()
	q := queue.NewMemory(zerolog.Nop())
	defer q.Close()
	b := NewBook(q)
	t0 := time.Now()
	var recs []queue.Record
	for seq := uint64(1); seq <= 3; seq++ {
		e := queue.Entry{ID: string(rune('a' + seq)), Dest: "o:x", Seq: seq, Data: []byte{byte(seq)}, Enqueued: t0.Add(time.Duration(seq) * time.Second)}
		recs = append(recs, retainRecords(e, t0.Add(time.Duration(seq)*time.Second), time.Hour)...)
	}
	if _, err := q.Append(ctx, queue.Write{Records: recs}); err != nil {
		t.Fatal(err)
	}
	got, err := b.RetainedOf(ctx, "o:x", 2, time.Time{}, 10)
	if err != nil || len(got) != 2 || got[0].Seq != 2 || got[1].Seq != 3 {
		t.Fatalf("from seq 2: %+v %v", got, err)
	}
	if got, _ := b.RetainedOf(ctx, "o:x", 0, t0.Add(3*time.Second), 10); len(got) != 1 || got[0].ID != "d" {
		t.Fatalf("since the third: %+v", got)
	}
	if n, err := sweepRetained(ctx, q, t0.Add(time.Hour+2500*time.Millisecond), 1000); err != nil || n != 2 {
		t.Fatalf("sweep: %d %v, want the first two", n, err)
	}
	if got, _ := b.RetainedOf(ctx, "o:x", 0, time.Time{}, 10); len(got) != 1 || got[0].Seq != 3 {
		t.Fatalf("after the sweep: %+v", got)
	}
}
