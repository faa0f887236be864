package app

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"notifyrelay/queue"
)

// The counting wrapper offers queue.FuncWatcher exactly when the engine does, so
// the bridge falls back to Watch for an engine without it (instead of panicking).
func TestCountingQueueKeepsOptionalWatchFunc(t *testing.T) {
	mem := queue.NewMemory(zerolog.Nop())
	defer mem.Close()
	plain := newCountingQueue(struct{ queue.Engine }{mem}, prometheus.NewRegistry())
	if _, ok := any(plain).(queue.FuncWatcher); ok {
		t.Fatal("wrapper of an engine without WatchFunc claims queue.FuncWatcher")
	}
	withFW := newCountingQueue(mem, prometheus.NewRegistry())
	fw, ok := any(withFW).(queue.FuncWatcher)
	if !ok {
		t.Fatal("wrapper hides the engine's WatchFunc")
	}
	woken := make(chan struct{}, 1)
	stop := fw.WatchFunc("c:x", func() {
		select {
		case woken <- struct{}{}:
		default:
		}
	})
	defer stop()
	if _, err := withFW.Append(context.Background(), queue.Write{Entries: []queue.Entry{{ID: "1", Dest: "c:x", Data: []byte("{}")}}}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-woken:
	case <-time.After(10 * time.Second):
		t.Fatal("WatchFunc callback not called on append")
	}
}
