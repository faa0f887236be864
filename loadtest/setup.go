package loadtest

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// forEach runs fn(0…n-1) on --concurrency goroutines and returns the first error;
// after an error or the end of ctx no new call starts. With a non-empty what it
// prints how far it got once a second and when done.
func forEach(ctx context.Context, e *env, what string, n int, fn func(i int) error) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var next, done atomic.Int64
	var wg sync.WaitGroup
	for range min(e.o.Concurrency, n) {
		wg.Go(func() {
			for i := next.Add(1) - 1; i < int64(n) && ctx.Err() == nil; i = next.Add(1) - 1 {
				if err := fn(int(i)); err != nil {
					cancel(err)
					return
				}
				done.Add(1)
			}
		})
	}
	stop := reportEvery(e, what, n, &done)
	wg.Wait()
	stop()
	if err := context.Cause(ctx); err != nil {
		return err
	}
	return nil
}

func reportEvery(e *env, what string, n int, done *atomic.Int64) (stop func()) {
	if what == "" {
		return func() {}
	}
	quit := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-quit:
				fmt.Fprintf(e.log, "setup: %s %d/%d\n", what, done.Load(), n)
				return
			case <-t.C:
				fmt.Fprintf(e.log, "setup: %s %d/%d\n", what, done.Load(), n)
			}
		}
	})
	return func() { close(quit); wg.Wait() }
}
