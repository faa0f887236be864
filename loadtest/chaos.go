package loadtest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"
)

// readyTimeout bounds one start of the server (process start → /readyz 200).
const readyTimeout = 2 * time.Minute

// supervisor runs the server itself (--server-cmd): it starts it, waits for
// /readyz, SIGKILLs it every --kill-every of uptime during the sending phase and
// starts it again with the same command (so on the same data dir). The tool stays a
// client: the server is a process it knows only by its command line.
type supervisor struct {
	args     []string
	readyURL string
	log      io.Writer // the server's stdout and stderr
	logFile  *os.File  // --server-log, closed by stop
	hc       *http.Client

	cmd    *exec.Cmd
	exited chan struct{} // closed when cmd has been waited for

	mu    sync.RWMutex
	kills []Kill // in order; kills[k-1].at ends server life k-1
}

// Kill is one SIGKILL and restart, as the report shows it.
type Kill struct {
	N         int                   `json:"n"`
	AtSeconds float64               `json:"atSeconds"` // since the run started
	RestartMs float64               `json:"restartMs"` // new process started → /readyz 200
	DownMs    float64               `json:"downMs"`    // SIGKILL → /readyz 200
	Failed    string                `json:"failed,omitempty"`
	ByKind    map[string]KindCounts `json:"byKind"`
	at        time.Time
}

func newSupervisor(o Options, stderr io.Writer) (*supervisor, error) {
	sv := &supervisor{args: strings.Fields(o.ServerCmd), readyURL: o.ReadyURL, log: io.Discard,
		hc: &http.Client{Timeout: 2 * time.Second}}
	if sv.readyURL == "" {
		u, err := url.Parse(firstTarget(o.Target))
		if err != nil {
			return nil, fmt.Errorf("--target: %w", err)
		}
		sv.readyURL = u.Scheme + "://" + u.Host + "/readyz"
	}
	if o.ServerLog != "" {
		f, err := os.OpenFile(o.ServerLog, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			return nil, fmt.Errorf("--server-log: %w", err)
		}
		sv.logFile, sv.log = f, f
	}
	return sv, nil
}

// start runs the server and waits until /readyz answers 200. Something already
// answering there is an error: it would not be the server the tool kills.
func (sv *supervisor) start(ctx context.Context) error {
	if sv.ready() {
		return fmt.Errorf("%s already answers before the server was started: --server-cmd must start the server of --target", sv.readyURL)
	}
	if _, err := sv.spawn(ctx); err != nil {
		return err
	}
	return nil
}

// spawn starts the process and waits for readiness; it returns how long that took.
func (sv *supervisor) spawn(ctx context.Context) (time.Duration, error) {
	cmd := exec.Command(sv.args[0], sv.args[1:]...)
	cmd.Stdout, cmd.Stderr = sv.log, sv.log
	began := time.Now()
	if err := cmd.Start(); err != nil {
		return 0, fmt.Errorf("--server-cmd: %w", err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	sv.cmd, sv.exited = cmd, exited
	deadline := time.NewTimer(readyTimeout)
	defer deadline.Stop()
	for !sv.ready() {
		select {
		case <-exited:
			return 0, fmt.Errorf("server exited before it was ready: %s (see --server-log)", cmd.ProcessState)
		case <-deadline.C:
			return 0, fmt.Errorf("server not ready at %s after %s", sv.readyURL, readyTimeout)
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
	return time.Since(began), nil
}

func (sv *supervisor) ready() bool {
	resp, err := sv.hc.Get(sv.readyURL)
	if err != nil {
		return false
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// killLoop kills and restarts the server every `every` of uptime until ctx ends or
// max kills (0: no limit) are done. A restart that fails ends the loop.
func (sv *supervisor) killLoop(ctx context.Context, every time.Duration, max int, runStart time.Time, log io.Writer) {
	for n := 1; max == 0 || n <= max; n++ {
		if !sleepCtx(ctx, every) {
			return
		}
		k := sv.killAndRestart(context.WithoutCancel(ctx), n, runStart)
		if k.Failed != "" {
			fmt.Fprintf(log, "kill %d at %.1fs: %s; no more kills\n", n, k.AtSeconds, k.Failed)
			return
		}
		fmt.Fprintf(log, "kill %d at %.1fs: ready again after %.0f ms\n", n, k.AtSeconds, k.DownMs)
	}
}

// killAndRestart SIGKILLs the server, waits for its exit and starts it again. The
// kill time is recorded first: what is sent from then on belongs to the next life.
func (sv *supervisor) killAndRestart(ctx context.Context, n int, runStart time.Time) Kill {
	at := time.Now()
	k := Kill{N: n, at: at, AtSeconds: at.Sub(runStart).Seconds()}
	sv.mu.Lock()
	sv.kills = append(sv.kills, k)
	sv.mu.Unlock()
	if err := sv.cmd.Process.Signal(syscall.SIGKILL); err != nil && !errors.Is(err, os.ErrProcessDone) {
		k.Failed = "kill: " + err.Error()
	}
	<-sv.exited
	if k.Failed == "" {
		took, err := sv.spawn(ctx)
		k.RestartMs, k.DownMs = millis(took), millis(time.Since(at))
		if err != nil {
			k.Failed = "restart: " + err.Error()
		}
	}
	sv.mu.Lock()
	sv.kills[n-1] = k
	sv.mu.Unlock()
	return k
}

func millis(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// epochAt is the server life at t: the number of kills made by then.
func (sv *supervisor) epochAt(t time.Time) int {
	if sv == nil {
		return 0
	}
	sv.mu.RLock()
	defer sv.mu.RUnlock()
	return sort.Search(len(sv.kills), func(i int) bool { return sv.kills[i].at.After(t) })
}

// report returns the kills with their findings: kill k is charged with what the
// life it ended accepted and never delivered, and with the duplicates that arrived
// after it (before the next kill). The last row (N 0) is the final life: its losses
// are not a kill's, and duplicates before the first kill are counted there too.
func (sv *supervisor) report(t *Tracker) []Kill {
	sv.mu.RLock()
	kills := append([]Kill(nil), sv.kills...)
	sv.mu.RUnlock()
	rows := t.Epochs(len(kills))
	out := make([]Kill, 0, len(kills)+1)
	for i, k := range kills {
		k.ByKind = map[string]KindCounts{}
		for kind, c := range rows[i] {
			k.ByKind[kind] = KindCounts{Expected: c.Expected, Lost: c.Lost}
		}
		for kind, c := range rows[i+1] {
			kc := k.ByKind[kind]
			kc.Duplicates = c.Duplicates
			k.ByKind[kind] = kc
		}
		out = append(out, k)
	}
	last := Kill{ByKind: map[string]KindCounts{}}
	for kind, c := range rows[len(kills)] {
		last.ByKind[kind] = KindCounts{Expected: c.Expected, Lost: c.Lost, Duplicates: rows[0][kind].Duplicates}
	}
	return append(out, last)
}

// stop ends the server: SIGTERM, and SIGKILL if it has not exited after 15 s.
func (sv *supervisor) stop() {
	if sv.cmd != nil && sv.cmd.Process != nil {
		_ = sv.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-sv.exited:
		case <-time.After(15 * time.Second):
			_ = sv.cmd.Process.Kill()
			<-sv.exited
		}
	}
	if sv.logFile != nil {
		_ = sv.logFile.Close()
	}
}

// startSupervised starts the server of --server-cmd and waits until it is ready.
func startSupervised(ctx context.Context, o Options, log io.Writer) (*supervisor, error) {
	sv, err := newSupervisor(o, log)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(log, "loadtest: starting the server: %s\n", o.ServerCmd)
	if err := sv.start(ctx); err != nil {
		sv.stop()
		return nil, err
	}
	return sv, nil
}

// startKills runs the kill loop during the sending phase (--kill-every); the
// returned stop waits for it, so a restart under way finishes before the drain.
func (e *env) startKills(ctx context.Context, runStart time.Time) (stop func()) {
	if e.sv == nil || e.o.KillEvery <= 0 {
		return func() {}
	}
	var wg sync.WaitGroup
	wg.Go(func() { e.sv.killLoop(ctx, e.o.KillEvery, e.o.Kills, runStart, e.log) })
	return wg.Wait
}
