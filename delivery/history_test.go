package delivery

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"notifyrelay/config"
	"notifyrelay/oma"
	"notifyrelay/queue"
)

// A delivery keeps its last historyMax failed attempts, oldest first.
func TestHistoryKeepsTheLastAttempts(t *testing.T) {
	ctx := context.Background()
	q := queue.NewMemory(zerolog.Nop())
	defer q.Close()
	b := NewBook(q)
	for n := 1; n <= historyMax+5; n++ {
		if err := q.Stage(ctx, attemptRecord("id1", Attempt{N: n, Status: 500 + n%10})); err != nil {
			t.Fatal(err)
		}
	}
	got, err := b.History(ctx, "id1")
	if err != nil || len(got) != historyMax {
		t.Fatalf("history: %d attempts, %v; want %d", len(got), err, historyMax)
	}
	for i, a := range got {
		if a.N != 6+i {
			t.Fatalf("attempt %d is number %d, want %d (the last ones, in order)", i, a.N, 6+i)
		}
	}
	if other, _ := b.History(ctx, "id"); len(other) != 0 {
		t.Fatalf("a prefix of the id sees %d attempts", len(other))
	}
}

// The sweeper removes the history with the records of the delivery, replays
// included.
func TestSweepRemovesHistory(t *testing.T) {
	ctx := context.Background()
	q := queue.NewMemory(zerolog.Nop())
	defer q.Close()
	t0 := time.Now()
	recs := []queue.Record{{Key: []byte(keyAccepted + "d1"), Value: mustJSON(acceptedRecord{Dest: "o:x", PriorAttempts: 2})}}
	recs = append(recs, settleRecords("d1", settledRecord{State: StateDelivered, Attempts: 4, At: t0}, time.Hour)...)
	for n := 1; n <= 5; n++ { // 2 before the replay, 3 after it; the sixth delivered
		recs = append(recs, attemptRecord("d1", Attempt{N: n}))
	}
	if _, err := q.Append(ctx, queue.Write{Records: recs}); err != nil {
		t.Fatal(err)
	}
	if n, err := sweepExpired(ctx, q, t0.Add(2*time.Hour), time.Hour, 1000); err != nil || n != 1 {
		t.Fatalf("sweep: %d %v", n, err)
	}
	if left := countKeys(t, q, keyAttempt); left != 0 {
		t.Fatalf("%d attempt records left after the sweep", left)
	}
}

// stubSubs is the chat side for one subscription destination.
type stubSubs struct{ url string }

func (s stubSubs) Target(context.Context, string) (string, bool) { return s.url, true }
func (stubSubs) Gone(context.Context, string)                    {}
func (stubSubs) Settled(string, bool)                            {}

// A chat subscription's notification has no settlement to sweep its history
// with: the history is written while it fails, and goes once it is delivered.
func TestSubscriptionHistoryGoesWhenDelivered(t *testing.T) {
	ctx := context.Background()
	q := queue.NewMemory(zerolog.Nop())
	defer q.Close()
	var mu sync.Mutex
	requests, keptBefore := 0, -1
	rc := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		requests++
		if requests <= 2 {
			http.Error(w, "busy", http.StatusServiceUnavailable)
			return
		}
		keptBefore = countKeys(t, q, keyAttempt)
		w.WriteHeader(http.StatusNoContent)
	}))
	defer rc.Close()
	d := startWorkers(t, q, stubSubs{url: rc.URL})
	data := oma.Envelope{ContentType: "application/json", Body: []byte(`{}`)}.Marshal()
	if _, err := q.Append(ctx, queue.Write{Entries: []queue.Entry{{ID: "n1", Dest: "s:sub1", Data: data}}}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for q.DestStats("s:sub1").Depth > 0 || countKeys(t, q, keyAttempt) > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("depth %d, %d attempt records", q.DestStats("s:sub1").Depth, countKeys(t, q, keyAttempt))
		}
		time.Sleep(5 * time.Millisecond)
	}
	_ = d.Stop(ctx)
	mu.Lock()
	defer mu.Unlock()
	if keptBefore != 2 {
		t.Fatalf("before the delivery %d attempts were kept, want 2", keptBefore)
	}
}

func startWorkers(t *testing.T, q *queue.Memory, subs Subscriptions) *Workers {
	t.Helper()
	cfg := config.Default().Delivery
	cfg.AllowPrivateTargets = true
	cfg.Backoff = config.Backoff{Initial: config.Duration(time.Millisecond), Max: config.Duration(5 * time.Millisecond)}
	reg := prometheus.NewRegistry()
	ctl, err := NewControls(context.Background(), q, cfg, zerolog.Nop(), reg)
	if err != nil {
		t.Fatal(err)
	}
	d, err := New(Options{Config: cfg, Log: zerolog.Nop(), Registerer: reg, Queue: q, Book: NewBook(q),
		Controls: ctl, Subscriptions: subs})
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d.Stop(context.Background()) })
	return d
}
