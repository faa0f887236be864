package apptest

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Proc is notifyrelay running as a child process.
type Proc struct {
	Addr string // host:port it listens on
	URL  string // http://Addr
	cmd  *exec.Cmd
	done chan struct{}
	err  error // Wait's result, after done
}

// ProcOptions configures StartProcess.
type ProcOptions struct {
	DataDir string   // required: reuse it across restarts
	Args    []string // extra `serve` flags, e.g. --config FILE
	Env     []string // extra NOTIFYRELAY_* variables, "KEY=value"
	Output  *Output  // if set, gets every line of the child's stdout and stderr
}

// Output collects a child's stdout and stderr lines; safe for concurrent use.
type Output struct {
	mu  sync.Mutex
	buf strings.Builder
}

func (o *Output) Write(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.buf.Write(p)
}

// String is everything written so far.
func (o *Output) String() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.buf.String()
}

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// Binary builds cmd/notifyrelay once per test process and returns its path. The
// binaries are kept by content in one directory (binDir), so that test runs do
// not leave a copy each behind; copies unused for a day are removed.
func Binary(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() { binPath, buildErr = build() })
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// binDir holds the test binaries, one per content.
var binDir = filepath.Join(os.TempDir(), "notifyrelay-test-bin")

func build() (string, error) {
	if err := os.MkdirAll(binDir, 0o755); err != nil {
		return "", err
	}
	pruneBinaries(24 * time.Hour)
	tmp, err := os.CreateTemp(binDir, "build-")
	if err != nil {
		return "", err
	}
	tmp.Close()
	defer os.Remove(tmp.Name()) // gone once renamed
	if out, err := exec.Command("go", "build", "-o", tmp.Name(), "notifyrelay/cmd/notifyrelay").CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build: %v\n%s", err, out)
	}
	sum, err := fileHash(tmp.Name())
	if err != nil {
		return "", err
	}
	path := filepath.Join(binDir, "notifyrelay-"+sum)
	// A rename over the same content is harmless, even while another test
	// process runs it (it keeps the file it opened).
	if err := os.Rename(tmp.Name(), path); err != nil {
		return "", err
	}
	now := time.Now()
	_ = os.Chtimes(path, now, now) // in use: not pruned
	return path, nil
}

func fileHash(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)[:8]), nil
}

// pruneBinaries removes test binaries (and failed builds) older than age.
func pruneBinaries(age time.Duration) {
	entries, _ := os.ReadDir(binDir)
	for _, e := range entries {
		if info, err := e.Info(); err == nil && time.Since(info.ModTime()) > age {
			_ = os.Remove(filepath.Join(binDir, e.Name()))
		}
	}
}

// StartProcess runs `notifyrelay serve` on 127.0.0.1:0 and waits until it logs that
// it started (or, on a JetStream prefix another node holds, that it is a standby). The process is killed when the test ends if still running.
func StartProcess(t testing.TB, o ProcOptions) *Proc {
	t.Helper()
	args := append([]string{"serve", "--listen", "127.0.0.1:0", "--data-dir", o.DataDir, "--log-level", "info"}, o.Args...)
	cmd := exec.Command(Binary(t), args...)
	cmd.Env = append(os.Environ(), o.Env...)
	if o.Output != nil {
		cmd.Stdout = o.Output
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start notifyrelay: %v", err)
	}
	p := &Proc{cmd: cmd, done: make(chan struct{})}
	addr := make(chan string, 1)
	go p.readLog(t, stderr, addr, o.Output)
	go func() { p.err = cmd.Wait(); close(p.done) }()
	t.Cleanup(p.Kill)
	select {
	case p.Addr = <-addr:
		p.URL = "http://" + p.Addr
		return p
	case <-p.done:
		t.Fatalf("notifyrelay exited before it started: %v", p.err)
	case <-time.After(60 * time.Second):
		p.Kill()
		t.Fatal("notifyrelay did not start within 60s")
	}
	return nil
}

// standbyMessage is what a node that starts as a standby logs instead of
// "notifyrelay started" (app/standby.go); it listens from then on.
const standbyMessage = "notifyrelay standby: forwarding to the active node"

// readLog forwards the child's log lines to the test log and reports the listen
// address from the "notifyrelay started" line.
func (p *Proc) readLog(t testing.TB, r io.Reader, addr chan<- string, out *Output) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if out != nil {
			_, _ = out.Write([]byte(line + "\n"))
		}
		var rec struct{ Message, Listen string }
		if json.Unmarshal([]byte(line), &rec) == nil && (rec.Message == "notifyrelay started" || rec.Message == standbyMessage) {
			addr <- rec.Listen
		}
		if strings.Contains(line, `"level":"error"`) || strings.Contains(line, `"level":"warn"`) {
			t.Logf("notifyrelay[%d]: %s", p.cmd.Process.Pid, line)
		}
	}
}

// Kill sends SIGKILL and waits for the process to end.
func (p *Proc) Kill() {
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
}

// Stop sends SIGTERM and waits up to timeout; it returns the exit error (nil: exit 0).
func (p *Proc) Stop(timeout time.Duration) error {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		return p.err
	case <-time.After(timeout):
		p.Kill()
		return fmt.Errorf("notifyrelay did not exit within %v of SIGTERM", timeout)
	}
}

// Pid is the child's process id.
func (p *Proc) Pid() int { return p.cmd.Process.Pid }
