// Package await is how the tests wait for what another goroutine or process
// does: poll a condition until it holds, and fail the test at a deadline
// (never sleep and hope).
package await

import (
	"testing"
	"time"
)

// every is how often Until polls.
const every = 10 * time.Millisecond

// Until polls cond until it holds, failing t when within passes first.
func Until(t testing.TB, within time.Duration, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(within); !cond(); time.Sleep(every) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", within, what)
		}
	}
}
