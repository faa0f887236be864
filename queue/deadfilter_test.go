package queue

import (
	"fmt"
	"testing"
)

// TestDeadFilter checks that added ids are always found and that, at 100k ids, few
// others are reported as maybe present.
func TestDeadFilter(t *testing.T) {
	f := newDeadFilter()
	if f.mayContain("x") {
		t.Fatal("empty filter reports an id")
	}
	const n = 100_000
	for i := range n {
		f.add(fmt.Sprint("dead-", i))
	}
	fp := 0
	for i := range n {
		if !f.mayContain(fmt.Sprint("dead-", i)) {
			t.Fatalf("added id %d not found", i)
		}
		if f.mayContain(fmt.Sprint("live-", i)) {
			fp++
		}
	}
	if rate := float64(fp) / n; rate > 0.01 {
		t.Fatalf("false positive rate %.4f at %d ids", rate, n)
	} else {
		t.Logf("false positive rate %.4f at %d ids", rate, n)
	}
}
