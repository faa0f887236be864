package queue

import (
	"bufio"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

const ackCrashDirEnv = "QUEUE_ACK_CRASH_CHILD_DIR"

// TestAckCrashChild is the child of TestAckCrash: it appends and consumes in loops,
// printing "put dest seq" once an Append returned, "ack dest seq" once an Ack
// returned, and "cp" after every checkpoint, all through one lock so the lines are
// in the order things happened.
func TestAckCrashChild(t *testing.T) {
	dir := os.Getenv(ackCrashDirEnv)
	if dir == "" {
		t.Skip("child process of TestAckCrash")
	}
	var mu sync.Mutex
	say := func(s string) {
		mu.Lock()
		os.Stdout.WriteString(s)
		mu.Unlock()
	}
	q, err := OpenBadger(dir, BadgerOptions{CheckpointInterval: 20 * time.Millisecond,
		OnCheckpoint: func() { say("cp\n") }}, testLogger(t))
	if err != nil {
		fmt.Printf("open: %v\n", err)
		os.Exit(2)
	}
	var wg sync.WaitGroup
	for g := range 3 {
		wg.Go(func() { ackCrashProducer(q, g, say) })
	}
	for range 2 {
		wg.Go(func() { ackCrashConsumer(q, say) })
	}
	wg.Wait() // never: the parent kills us
}

func ackCrashProducer(q Queue, g int, say func(string)) {
	for i := 0; ; i++ {
		dest := fmt.Sprintf("k/%d", (g+i)%4)
		seqs, err := q.Append(context.Background(), Write{Entries: []Entry{entry(dest, fmt.Sprintf("g%d-%d-%d", g, i, rand.Uint32()), "x")}})
		if err != nil {
			os.Exit(3)
		}
		say(fmt.Sprintf("put %s %d\n", dest, seqs[0]))
	}
}

func ackCrashConsumer(q Engine, say func(string)) {
	for {
		dest, err := q.Next(context.Background(), "k/")
		if err != nil {
			os.Exit(4)
		}
		es, err := q.Read(context.Background(), dest, 0, 4)
		if err == nil && len(es) > 0 {
			last := es[len(es)-1].Seq
			if q.Ack(context.Background(), dest, last) == nil {
				say(fmt.Sprintf("ack %s %d\n", dest, last))
			}
		}
		q.Release(dest)
	}
}

// TestAckCrash SIGKILLs a child that appends and acknowledges, reopens its queue and
// checks the checkpoint's promise: every entry appended and not acknowledged is
// there, and what comes again was acknowledged after the second-to-last checkpoint
// before the kill (the last one may have been writing when the kill came): at most
// about one checkpoint interval of acknowledgements.
func TestAckCrash(t *testing.T) {
	dir := t.TempDir()
	total := 0
	for round := range 3 {
		lines := runAckCrashChild(t, dir)
		e := openBadgerT(t, dir)
		dups := checkAckCrash(t, e, lines)
		t.Logf("round %d: %d lines, %d acknowledged entries came again", round, len(lines), dups)
		total += dups
		// Drain what is left so the next round starts from a known state.
		for _, st := range e.Dests("k/") {
			if err := e.Ack(ctxT(t), st.Dest, 1<<62); err != nil {
				t.Fatal(err)
			}
		}
		if err := e.Close(); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("%d duplicates over 3 kills", total)
}

func runAckCrashChild(t *testing.T, dir string) []string {
	cmd, out := startChild(t, "TestAckCrashChild", ackCrashDirEnv+"="+dir)
	var lines []string
	sc := bufio.NewScanner(out)
	killAt := 0
	for sc.Scan() {
		lines = append(lines, sc.Text())
		if killAt == 0 && strings.HasPrefix(sc.Text(), "ack ") {
			killAt = len(lines) + 2000 + rand.IntN(3000)
		}
		if killAt > 0 && len(lines) == killAt {
			_ = cmd.Process.Signal(syscall.SIGKILL)
		}
	}
	_ = cmd.Wait()
	if killAt == 0 || len(lines) < killAt {
		t.Fatalf("child ended after %d lines before it was killed", len(lines))
	}
	return lines
}

// checkAckCrash returns how many acknowledged entries came again.
func checkAckCrash(t *testing.T, e Engine, lines []string) int {
	put := map[string]uint64{}   // highest seq appended, per dest
	acked := map[string]uint64{} // highest seq acknowledged, per dest
	ackedAt := map[string][]ackAt{}
	var cps []int
	for i, line := range lines {
		var dest string
		var seq uint64
		switch {
		case line == "cp":
			cps = append(cps, i)
		case strings.HasPrefix(line, "put "):
			fmt.Sscanf(line, "put %s %d", &dest, &seq)
			put[dest] = max(put[dest], seq)
		case strings.HasPrefix(line, "ack "):
			fmt.Sscanf(line, "ack %s %d", &dest, &seq)
			acked[dest] = max(acked[dest], seq)
			ackedAt[dest] = append(ackedAt[dest], ackAt{seq, i})
		}
	}
	if len(cps) < 2 {
		t.Fatalf("only %d checkpoints before the kill", len(cps))
	}
	safe := cps[len(cps)-2] // every ack printed before this line is durable
	dups := 0
	for dest, top := range put {
		es := mustRead(t, e, dest, 0, 1<<20)
		first := acked[dest] + 1
		if len(es) > 0 {
			first = es[0].Seq
		}
		if first > acked[dest]+1 {
			t.Fatalf("%s: starts at %d, but only up to %d was acknowledged: lost", dest, first, acked[dest])
		}
		if len(es) > 0 && es[len(es)-1].Seq < top {
			t.Fatalf("%s: ends at %d, but %d was appended: lost", dest, es[len(es)-1].Seq, top)
		}
		for _, a := range ackedAt[dest] {
			if a.seq >= first && a.line < safe {
				t.Fatalf("%s: seq %d came again though acknowledged before the checkpoint at line %d", dest, a.seq, safe)
			}
		}
		if first <= acked[dest] {
			dups += int(acked[dest] - first + 1)
		}
	}
	return dups
}

type ackAt struct {
	seq  uint64
	line int
}
