package queue

import "testing"

func TestWatchFunc(t *testing.T) {
	for name, open := range map[string]func(*testing.T) Engine{
		"badger": badgerHarness(false).open,
		"memory": func(t *testing.T) Engine {
			m := NewMemory(testLogger(t))
			t.Cleanup(func() { _ = m.Close() })
			return m
		},
	} {
		t.Run(name, func(t *testing.T) { testWatchFunc(t, open(t)) })
	}
}

// testWatchFunc: the callback runs on append and delete of its destination only,
// never after stop, and once on Close.
func testWatchFunc(t *testing.T, e Engine) {
	fw, ok := e.(FuncWatcher)
	if !ok {
		t.Fatal("engine is not a FuncWatcher")
	}
	calls := make(chan string, 16)
	stop := fw.WatchFunc("wf", func() { calls <- "wf" })
	stopOther := fw.WatchFunc("wf2", func() { calls <- "wf2" })
	defer stopOther()
	mustAppend(t, e, entry("wf", "1", "x"))
	if got := <-calls; got != "wf" {
		t.Fatalf("append woke %s", got)
	}
	if err := e.Delete(ctxT(t), "wf"); err != nil {
		t.Fatal(err)
	}
	if got := <-calls; got != "wf" {
		t.Fatalf("delete woke %s", got)
	}
	stop()
	mustAppend(t, e, entry("wf", "2", "x"))
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	if got := <-calls; got != "wf2" {
		t.Fatalf("close woke %s, want the remaining watch", got)
	}
	select { // calls run before Append and Close return
	case got := <-calls:
		t.Fatalf("unexpected call for %s", got)
	default:
	}
}
