package client

import (
	"slices"
	"testing"
	"time"
)

// Gaps: prevSeq decides when the frame carries it; without it (a server before
// gap detection) a seq that skips does.
func TestCheckGap(t *testing.T) {
	p := func(v uint64) *uint64 { return &v }
	cases := []struct {
		last, seq uint64
		prev      *uint64
		want      []Gap
	}{
		{0, 1, p(0), nil},
		{3, 4, p(3), nil},
		{3, 9, p(3), nil}, // seqs skipped, but nothing was sent between
		{3, 9, p(7), []Gap{{4, 7}}},
		{3, 4, nil, nil},
		{3, 6, nil, []Gap{{4, 5}}},
		{0, 5, nil, []Gap{{1, 4}}},
	}
	for _, c := range cases {
		var got []Gap
		r := &receiver{last: c.last, o: ReceiveOptions{OnGap: func(g Gap) { got = append(got, g) }}}
		r.checkGap(c.seq, c.prev)
		if !slices.Equal(got, c.want) {
			t.Errorf("last %d seq %d prev %v: %v, want %v", c.last, c.seq, c.prev, got, c.want)
		}
	}
}

func TestBackoffDelay(t *testing.T) {
	b := Backoff{Min: 100 * time.Millisecond, Max: time.Second}
	for n, ceil := range []time.Duration{100, 200, 400, 800, 1000, 1000} {
		ceil *= time.Millisecond
		for range 50 {
			if d := b.delay(n); d < ceil/2 || d > ceil {
				t.Fatalf("attempt %d: %v outside [%v, %v]", n, d, ceil/2, ceil)
			}
		}
	}
}
