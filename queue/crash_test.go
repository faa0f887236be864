package queue

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

const crashDirEnv = "QUEUE_CRASH_CHILD_DIR"

// TestCrashChild is the child of TestCrash: it appends in a loop from several
// goroutines and prints "ack dest seq id" for each entry once Append has returned.
func TestCrashChild(t *testing.T) {
	dir := os.Getenv(crashDirEnv)
	if dir == "" {
		t.Skip("child process of TestCrash")
	}
	q, err := OpenBadger(dir, BadgerOptions{}, testLogger(t))
	if err != nil {
		fmt.Printf("open: %v\n", err)
		os.Exit(2)
	}
	prefix := os.Getenv("QUEUE_CRASH_ROUND")
	var mu sync.Mutex
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			crashAppender(q, prefix, g, &mu)
		}()
	}
	wg.Wait() // never: the parent kills us
}

func crashAppender(q Queue, prefix string, g int, mu *sync.Mutex) {
	for i := 0; ; i++ {
		var es []Entry
		for j := 0; j <= i%3; j++ {
			id := fmt.Sprintf("%s-g%d-%d-%d", prefix, g, i, j)
			es = append(es, entry(fmt.Sprintf("c/%d", (g+i+j)%5), id, "data-"+id))
		}
		seqs, err := q.Append(context.Background(), Write{Entries: es})
		if err != nil {
			fmt.Printf("error %v\n", err)
			os.Exit(3)
		}
		var b strings.Builder
		for k, e := range es {
			fmt.Fprintf(&b, "ack %s %d %s\n", e.Dest, seqs[k], e.ID)
		}
		mu.Lock()
		os.Stdout.WriteString(b.String()) // one write per Append
		mu.Unlock()
	}
}

// TestCrash SIGKILLs an appending child at random moments and checks, after each
// kill, that every entry it acknowledged is on disk, in order, and nothing else is.
func TestCrash(t *testing.T) {
	dir := t.TempDir()
	var acks []crashAck
	for round := 0; round < 4; round++ {
		got := runCrashChild(t, dir, round)
		if len(got) == 0 {
			t.Fatalf("round %d: child acknowledged nothing", round)
		}
		acks = append(acks, got...)
		e := openBadgerT(t, dir)
		checkCrash(t, e, acks)
		if err := e.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

type crashAck struct {
	dest, id string
	seq      uint64
}

// startChild runs this test binary's test (a child of a crash test) with env added,
// and returns it and its standard output.
func startChild(t *testing.T, test string, env ...string) (*exec.Cmd, io.Reader) {
	cmd := exec.Command(os.Args[0], "-test.run=^"+test+"$")
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	return cmd, out
}

// runCrashChild starts the child, lets it run for a random time after its first
// acknowledgement, kills it, and returns what it acknowledged.
func runCrashChild(t *testing.T, dir string, round int) []crashAck {
	cmd, out := startChild(t, "TestCrashChild", crashDirEnv+"="+dir, fmt.Sprintf("QUEUE_CRASH_ROUND=r%d", round))
	lines := make(chan string, 1024)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	killAfter := time.Duration(20+rand.IntN(200)) * time.Millisecond
	var acks []crashAck
	var kill <-chan time.Time
	deadline := time.After(20 * time.Second)
	for {
		select {
		case line, ok := <-lines:
			if !ok {
				_ = cmd.Wait()
				return acks
			}
			acks = append(acks, parseAck(t, line))
			if kill == nil {
				kill = time.After(killAfter)
			}
		case <-kill:
			_ = cmd.Process.Signal(syscall.SIGKILL)
			kill = nil
		case <-deadline:
			_ = cmd.Process.Kill()
			t.Fatal("child did not start appending")
		}
	}
}

func parseAck(t *testing.T, line string) crashAck {
	var a crashAck
	if _, err := fmt.Sscanf(line, "ack %s %d %s", &a.dest, &a.seq, &a.id); err != nil {
		t.Fatalf("child said %q", line)
	}
	return a
}

// checkCrash checks that every acknowledged entry is stored at its seq, and that
// nothing was invented: each destination runs from seq 1 without gaps, every entry's
// data matches its id. Entries committed but not yet printed when the child died are
// legitimate.
func checkCrash(t *testing.T, e Engine, acks []crashAck) {
	stored := map[string][]Entry{}
	for _, st := range e.Dests("c/") {
		es := mustRead(t, e, st.Dest, 0, 1<<20)
		for i, x := range es {
			if x.Seq != uint64(i+1) || string(x.Data) != "data-"+x.ID {
				t.Fatalf("%s: invented entry %d:%s %q", st.Dest, x.Seq, x.ID, x.Data)
			}
		}
		stored[st.Dest] = es
	}
	for _, a := range acks {
		es := stored[a.dest]
		if a.seq > uint64(len(es)) || es[a.seq-1].ID != a.id {
			t.Fatalf("acknowledged %s %d %s lost (%d stored)", a.dest, a.seq, a.id, len(es))
		}
	}
	t.Logf("%d acknowledged entries all present", len(acks))
}
