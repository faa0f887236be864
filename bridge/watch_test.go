package bridge

import (
	"context"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"notifyrelay/queue"
)

// An engine without queue.FuncWatcher still wakes writers, through a goroutine
// that stop waits for.
func TestWatchWithoutFuncWatcher(t *testing.T) {
	q := queue.NewMemory(zerolog.Nop())
	defer q.Close()
	woken := make(chan struct{}, 1)
	stop := watch(struct{ queue.Engine }{q}, "c:x", func() { // hides WatchFunc
		select {
		case woken <- struct{}{}:
		default:
		}
	})
	defer stop()
	e := queue.Entry{ID: "1", Dest: "c:x", Data: []byte("{}")}
	if _, err := q.Append(context.Background(), queue.Write{Entries: []queue.Entry{e}}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-woken:
	case <-time.After(5 * time.Second):
		t.Fatal("not woken")
	}
}

// The WebSocket tests again, on an engine without queue.FuncWatcher: every socket
// is then woken through the Watch fallback.
func TestWebSocketsWithoutFuncWatcher(t *testing.T) {
	withoutFuncWatcher = true
	defer func() { withoutFuncWatcher = false }()
	for name, f := range map[string]func(*testing.T){
		"AckModeResumesAtFirstUnacked":       TestAckModeResumesAtFirstUnacked,
		"AckModeWindow":                      TestAckModeWindow,
		"OrderedUnderConcurrentPosters":      TestOrderedUnderConcurrentPosters,
		"OMAModeDeliversAndAnswersConnCheck": TestOMAModeDeliversAndAnswersConnCheck,
		"NewSocketSupersedes":                TestNewSocketSupersedes,
		"SlowClientDisconnectedThenResumes":  TestSlowClientDisconnectedThenResumes,
		"DrainClosesWith1001":                TestDrainClosesWith1001,
		"LifetimeAndExpiry":                  TestLifetimeAndExpiry,
	} {
		t.Run(name, f)
	}
}
