package queue

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestBadInput(t *testing.T) {
	e := openBadgerT(t, t.TempDir())
	ctx := ctxT(t)
	long := strings.Repeat("d", MaxDestLen+1)
	cases := []struct {
		name string
		w    Write
		want error
	}{
		{"oversize entry", Write{Entries: []Entry{{Dest: "a", ID: "1", Data: make([]byte, MaxEntrySize+1)}}}, ErrEntryTooBig},
		{"empty dest", Write{Entries: []Entry{entry("", "1", "x")}}, ErrEmptyDest},
		{"dest too long", Write{Entries: []Entry{entry(long, "1", "x")}}, ErrDestTooLong},
		{"empty id", Write{Entries: []Entry{entry("a", "", "x")}}, ErrBadID},
		{"id too long", Write{Entries: []Entry{entry("a", strings.Repeat("i", MaxIDLen+1), "x")}}, ErrBadID},
		{"id twice", Write{Entries: []Entry{entry("a", "1", "x"), entry("b", "1", "y")}}, ErrDuplicateID},
		{"empty record key", Write{Records: []Record{{Value: []byte("v")}}}, ErrEmptyRecord},
		{"huge record key", Write{Records: []Record{{Key: make([]byte, maxRecordKey+1)}}}, ErrBadArguments},
	}
	for _, c := range cases {
		// A good entry and a record ride along: the whole Write must be refused.
		c.w.Entries = append([]Entry{entry("good", "g-"+c.name, "x")}, c.w.Entries...)
		c.w.Records = append(c.w.Records, Record{Key: []byte("rec"), Value: []byte("v")})
		_, err := e.Append(ctx, c.w)
		wantErr(t, err, c.want)
		t.Logf("%s: %v", c.name, err)
	}
	checkNothingWritten(t, e)
	wantErr(t, e.Ack(ctx, "", 1), ErrEmptyDest)
	wantErr(t, e.Retry(ctx, long, 1, time.Time{}, ""), ErrDestTooLong)
	wantErr(t, e.DeadLetter(ctx, "", 1, ""), ErrEmptyDest)
	wantErr(t, e.Delete(ctx, ""), ErrEmptyDest)
	_, err := e.Replay(ctx, "")
	wantErr(t, err, ErrBadID)
	_, err = e.GetDeadLetter(ctx, strings.Repeat("i", MaxIDLen+1))
	wantErr(t, err, ErrBadID)
	_, err = e.Read(ctx, "", 0, 1)
	wantErr(t, err, ErrEmptyDest)
}

func checkNothingWritten(t *testing.T, e Engine) {
	t.Helper()
	if d := e.Dests(""); len(d) != 0 {
		t.Fatalf("refused writes left destinations: %+v", d)
	}
	_, err := e.Get(ctxT(t), []byte("rec"))
	wantErr(t, err, ErrNotFound)
}

func TestLimitsAccepted(t *testing.T) {
	e := openBadgerT(t, t.TempDir())
	big := entry(strings.Repeat("d", MaxDestLen), strings.Repeat("i", MaxIDLen), "")
	big.Data = make([]byte, MaxEntrySize)
	big.Data[MaxEntrySize-1] = 7
	mustAppend(t, e, big)
	es := mustRead(t, e, big.Dest, 0, 1)
	if len(es) != 1 || len(es[0].Data) != MaxEntrySize || es[0].Data[MaxEntrySize-1] != 7 {
		t.Fatalf("largest entry not read back")
	}
}

// TestWriteTooBigAlone checks that a Write too big for one commit fails alone while
// the writes sharing its batch succeed.
func TestWriteTooBigAlone(t *testing.T) {
	e := openBadgerT(t, t.TempDir())
	huge := hugeWrite()
	var wg sync.WaitGroup
	errs := make([]error, 9)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w := Write{Entries: []Entry{entry(fmt.Sprint("small", i), "s", "x")}}
			if i == 0 {
				w = huge
			}
			_, errs[i] = e.Append(ctxT(t), w)
		}()
	}
	wg.Wait()
	wantErr(t, errs[0], ErrEntryTooBig)
	t.Logf("huge write: %v", errs[0])
	for i, err := range errs[1:] {
		if err != nil {
			t.Fatalf("small write %d failed with the huge one: %v", i+1, err)
		}
	}
	if st := e.DestStats("huge"); st.Depth != 0 {
		t.Fatalf("huge write partly applied: %+v", st)
	}
}

func TestDeadLetteredIDRefused(t *testing.T) {
	e := openBadgerT(t, t.TempDir())
	ctx := ctxT(t)
	mustAppend(t, e, entry("a", "dup", "x"))
	if err := e.DeadLetter(ctx, "a", 1, "no"); err != nil {
		t.Fatal(err)
	}
	_, err := e.Append(ctx, Write{Entries: []Entry{entry("b", "ok", "x"), entry("b", "dup", "y")}})
	wantErr(t, err, ErrDuplicateID)
	if st := e.DestStats("b"); st.Depth != 0 {
		t.Fatalf("refused write applied: %+v", st)
	}
}

func TestLockedSameProcess(t *testing.T) {
	dir := t.TempDir()
	openBadgerT(t, dir)
	_, err := OpenBadger(dir, BadgerOptions{}, testLogger(t))
	wantErr(t, err, ErrLocked)
	t.Logf("second open: %v", err)
}

const lockDirEnv = "QUEUE_LOCK_CHILD_DIR"

// TestLockChild is the child of TestLockedOtherProcess: it holds dir open until its
// standard input closes.
func TestLockChild(t *testing.T) {
	dir := os.Getenv(lockDirEnv)
	if dir == "" {
		t.Skip("child process of TestLockedOtherProcess")
	}
	q, err := OpenBadger(dir, BadgerOptions{}, testLogger(t))
	if err != nil {
		fmt.Printf("open: %v\n", err)
		os.Exit(2)
	}
	fmt.Println("locked")
	_, _ = io.Copy(io.Discard, os.Stdin)
	_ = q.Close()
}

func TestLockedOtherProcess(t *testing.T) {
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestLockChild$")
	cmd.Env = append(os.Environ(), lockDirEnv+"="+dir)
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil || line != "locked\n" {
		t.Fatalf("child: %q %v", line, err)
	}
	_, err = OpenBadger(dir, BadgerOptions{}, testLogger(t))
	wantErr(t, err, ErrLocked)
	stdin.Close()
	if err := cmd.Wait(); err != nil {
		t.Fatalf("child: %v", err)
	}
	openBadgerT(t, dir) // free again once the other process is gone
}

func TestUnwritableDir(t *testing.T) {
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := OpenBadger(filepath.Join(file, "data"), BadgerOptions{}, testLogger(t))
	if err == nil || !strings.Contains(err.Error(), "create data directory") {
		t.Fatalf("dir under a file: %v", err)
	}
	if os.Geteuid() == 0 {
		t.Log("running as root: permission bits do not stop root; skipping the read-only dir case")
		return
	}
	ro := filepath.Join(t.TempDir(), "ro")
	if err := os.Mkdir(ro, 0o500); err != nil {
		t.Fatal(err)
	}
	_, err = OpenBadger(ro, BadgerOptions{}, testLogger(t))
	if err == nil || !strings.Contains(err.Error(), "not writable") {
		t.Fatalf("read-only dir: %v", err)
	}
}

func TestCancelledContext(t *testing.T) {
	e := openBadgerT(t, t.TempDir())
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := e.Append(ctx, Write{Entries: []Entry{entry("a", "1", "x")}})
	wantErr(t, err, context.Canceled)
	if st := e.DestStats("a"); st.Depth != 0 {
		t.Fatalf("cancelled append applied")
	}
}

// TestBatchIsolation puts good and bad requests in one batch and checks each gets
// its own result. The test itself plays the writer: the writer goroutine is not
// started, so the batch is exactly what the test builds.
func TestBatchIsolation(t *testing.T) {
	kv, err := openBadgerKV(t.TempDir(), BadgerOptions{}.withDefaults(), testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	e := newEngine(kv, testLogger(t), engineOptions{maxBatch: 1024, cacheBytes: 1 << 20})
	t.Cleanup(func() { _ = kv.close() })
	run := func(reqs ...*request) []error {
		for _, r := range reqs {
			r.done = make(chan result, 1)
		}
		e.commitBatch(reqs)
		errs := make([]error, len(reqs))
		for i, r := range reqs {
			errs[i] = (<-r.done).err
		}
		return errs
	}
	run(appendRequest(Write{Entries: []Entry{entry("x", "dead", "x")}}))
	if err := run(&request{op: opDeadLetter, dest: "x", seq: 1})[0]; err != nil {
		t.Fatal(err)
	}
	huge := hugeWrite()
	errs := run(
		appendRequest(Write{Entries: []Entry{entry("ok", "1", "a")}}),
		appendRequest(huge),
		&request{op: opRetry, dest: "ok", seq: 2},
		appendRequest(Write{Entries: []Entry{entry("ok", "2", "b")}}),
		appendRequest(Write{Entries: []Entry{entry("ok", "dead", "c")}}),
	)
	want := []error{nil, ErrEntryTooBig, ErrNotHead, nil, ErrDuplicateID}
	for i, err := range errs {
		if want[i] == nil && err != nil || want[i] != nil && !errors.Is(err, want[i]) {
			t.Fatalf("request %d: %v, want %v", i, err, want[i])
		}
	}
	st := e.sched.destStats("ok")
	if st.Depth != 2 || e.sched.destStats("huge").Depth != 0 {
		t.Fatalf("after batch: ok %+v, huge %+v", st, e.sched.destStats("huge"))
	}
}

// hugeWrite is too big for one commit: 40,000 records (each its own key) and an entry.
func hugeWrite() Write {
	w := Write{Entries: []Entry{entry("huge", "h", "x")}}
	for i := 0; i < 40000; i++ {
		w.Records = append(w.Records, Record{Key: fmt.Appendf(nil, "huge/%d", i), Value: []byte("0123456789")})
	}
	return w
}

// TestBigRemoval acks and deletes more entries than one commit removes.
func TestBigRemoval(t *testing.T) {
	b := openBadgerT(t, t.TempDir())
	ctx := ctxT(t)
	for _, dest := range []string{"ack", "del"} {
		var w Write
		for i := 0; i < 1050; i++ {
			w.Entries = append(w.Entries, entry(dest, fmt.Sprint(dest, i), "x"))
		}
		mustAppend(t, b, w.Entries...)
	}
	if err := b.Ack(ctx, "ack", 1000); err != nil {
		t.Fatal(err)
	}
	if es := mustRead(t, b, "ack", 0, 100); len(es) != 50 || es[0].Seq != 1001 {
		t.Fatalf("after big ack: %d entries from %d", len(es), es[0].Seq)
	}
	if err := b.Delete(ctx, "del"); err != nil {
		t.Fatal(err)
	}
	if st := b.DestStats("del"); st.Depth != 0 {
		t.Fatalf("after big delete: %+v", st)
	}
	if seqs := mustAppend(t, b, entry("del", "new", "x")); seqs[0] != 1 {
		t.Fatalf("seq after delete %d", seqs[0])
	}
}

// TestCloseStopsGoroutines checks that Close leaves no goroutine of the engine (or of
// Badger) behind.
func TestCloseStopsGoroutines(t *testing.T) {
	before := runtime.NumGoroutine()
	for _, e := range []Engine{openBadgerT(t, t.TempDir()), NewMemory(testLogger(t))} {
		mustAppend(t, e, entry("g", "1", "x"))
		if err := e.Retry(ctxT(t), "g", 1, time.Now().Add(time.Hour), "later"); err != nil {
			t.Fatal(err) // arms the scheduler's timer
		}
		wake, stop := e.Watch("g")
		defer stop()
		if err := e.Close(); err != nil {
			t.Fatal(err)
		}
		gotSignal(t, wake, time.Second)
	}
	checkFor(t, 5*time.Second, func() error {
		if n := runtime.NumGoroutine(); n > before {
			return fmt.Errorf("%d goroutines, %d before", n, before)
		}
		return nil
	})
}

// TestBigCheckpoint stages and acknowledges more than one transaction holds: the
// checkpoint is written in parts, and everything in it survives a reopen.
func TestBigCheckpoint(t *testing.T) {
	dir := t.TempDir()
	q := openBadgerT(t, dir)
	var w Write
	for i := 0; i < 5000; i++ {
		w.Entries = append(w.Entries, entry(fmt.Sprintf("big/%d", i), fmt.Sprint("e", i), "x"))
	}
	mustAppend(t, q, w.Entries...)
	for i := 0; i < 60000; i++ {
		if err := q.Stage(ctxT(t), Record{Key: fmt.Appendf(nil, "staged/%06d", i), Value: []byte("0123456789abcdef")}); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < 5000; i++ {
		if err := q.Ack(ctxT(t), fmt.Sprintf("big/%d", i), 1); err != nil {
			t.Fatal(err)
		}
	}
	if err := q.Close(); err != nil {
		t.Fatalf("close (last checkpoint): %v", err)
	}
	q = openBadgerT(t, dir)
	if d := q.Dests("big/"); len(d) != 0 {
		t.Fatalf("%d destinations still queued after reopen", len(d))
	}
	if v, err := q.Get(ctxT(t), []byte("staged/059999")); err != nil || string(v) != "0123456789abcdef" {
		t.Fatalf("last staged record: %q %v", v, err)
	}
}
