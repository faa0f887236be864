package loadtest

import (
	"context"
	"fmt"
	"io"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/mattn/go-isatty"
)

// scenario is one kind of load. The engine calls Setup, then Send from many
// goroutines (never two at once for the same stream, so a stream's requests are
// ordered), then Finish and Close.
type scenario interface {
	// Setup creates the server-side resources and starts the receivers.
	Setup(ctx context.Context) error
	// Streams is the number of independent ordered streams; 0 means nothing is sent
	// and the run only holds its connections for --duration.
	Streams() int
	// Send makes one request on stream and records its outcome.
	Send(stream int)
	// Finish adds the scenario's own findings to the report.
	Finish(ctx context.Context, r *Report)
	// Close stops the receivers and removes what Setup created, best effort.
	Close()
}

// env is what every scenario shares: options, measurements and the HTTP client.
type env struct {
	o        Options
	log      io.Writer // progress and setup messages (stderr)
	stats    *Stats
	tracker  *Tracker
	client   *client
	inFlight atomic.Int64
	sv       *supervisor // --server-cmd; nil when the server runs on its own
}

func newEnv(o Options, log io.Writer) *env {
	log = &lockedWriter{w: log} // progress, setup and the kill loop write from their own goroutines
	return &env{o: o, log: log, stats: NewStats(time.Now()), tracker: NewTracker(),
		client: newClient(o.Target, o.Token, o.Concurrency+16, o.Timeout)}
}

// lockedWriter serialises writes from several goroutines.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// observe counts one received notification for receiver.
func (e *env) observe(receiver string, m Marker, now time.Time) {
	if e.o.drop != nil && e.o.drop() {
		return
	}
	switch e.tracker.ReceiveIn(receiver, m.Stream, m.Seq, e.sv.epochAt(now)) {
	case First, OutOfOrder:
		e.stats.Delivered(now.Sub(m.Sent))
	case Unexpected:
		e.stats.Error("unexpected notification")
	}
}

// record counts the outcome of one producer request.
func (e *env) record(stream string, seq int, began time.Time, err error) {
	if err != nil {
		e.stats.Error(errorKind(err))
		return
	}
	e.tracker.AcceptedIn(stream, seq, e.sv.epochAt(began)) // a 2xx comes from the life it was sent to
	e.stats.Accepted(time.Since(began))
}

func run(ctx context.Context, o Options, stdout, stderr io.Writer) int {
	raiseNoFile(stderr)
	var ceil *Report
	if o.Ceiling {
		var code int
		if ceil, code = runCeiling(ctx, o, stderr); ceil == nil {
			return code
		}
	}
	r := ceil // after Ctrl-C during the ceiling's run: its partial report
	if ceil == nil || ctx.Err() == nil {
		var code int
		if r, code = runOnce(ctx, o, stderr); r == nil {
			return code
		}
		r.setCeiling(ceil)
	}
	r.WriteTable(stdout)
	if err := writeFiles(r, o); err != nil {
		fmt.Fprintln(stderr, "notifyrelay loadtest:", err)
	}
	if r.Failed() {
		return exitLost
	}
	return exitOK
}

// runOnce sets up, drives and cleans up one run against o.Target. A nil report
// comes with the exit code of a failed setup.
func runOnce(ctx context.Context, o Options, stderr io.Writer) (*Report, int) {
	e := newEnv(o, stderr)
	if o.ServerCmd != "" {
		sv, err := startSupervised(ctx, o, stderr)
		if err != nil {
			fmt.Fprintln(stderr, "notifyrelay loadtest:", err)
			return nil, exitSetup
		}
		defer sv.stop()
		e.sv = sv
	}
	sc := newScenario(e)
	fmt.Fprintf(stderr, "loadtest %s: setting up against %s\n", o.Scenario, o.Target)
	if err := sc.Setup(ctx); err != nil {
		fmt.Fprintln(stderr, "notifyrelay loadtest: setup:", err)
		sc.Close()
		return nil, exitSetup
	}
	r := e.drive(ctx, sc)
	sc.Finish(context.WithoutCancel(ctx), r)
	sc.Close()
	return r, exitOK
}

func newScenario(e *env) scenario {
	switch e.o.Scenario {
	case "chat":
		return newChat(e)
	case "channels":
		return newChannels(e)
	}
	return newRelay(e)
}

func writeFiles(r *Report, o Options) error {
	if o.JSON != "" {
		if err := r.WriteJSON(o.JSON); err != nil {
			return err
		}
	}
	if o.HTML != "" {
		return r.WriteHTML(o.HTML)
	}
	return nil
}

// drive runs the sending phase and the drain phase and builds the report.
func (e *env) drive(ctx context.Context, sc scenario) *Report {
	start := time.Now()
	e.stats.begin(start)
	stop := e.progress()
	sendCtx, cancel := ctx, context.CancelFunc(func() {})
	if e.o.Duration > 0 {
		sendCtx, cancel = context.WithTimeout(ctx, e.o.Duration)
	}
	stopKills := e.startKills(sendCtx, start)
	stopSampling := e.sampleServer(start)
	e.send(sendCtx, sc)
	cancel()
	stopKills()
	sent := time.Since(start)
	drained := true
	if ctx.Err() == nil && sc.Streams() > 0 {
		drained = e.drain(ctx)
	}
	stop()
	r := &Report{Scenario: e.o.Scenario, Target: e.o.Target, Params: e.o.params(), Started: start,
		SendSeconds: sent.Seconds(), DrainSeconds: time.Since(start).Seconds() - sent.Seconds(),
		Interrupted: ctx.Err() != nil, DrainTimedOut: !drained, Server: stopSampling()}
	e.stats.fill(r)
	r.Counts = e.tracker.Count()
	r.ByKind = e.tracker.Epochs(0)[0]
	if e.sv != nil {
		r.Kills = e.sv.report(e.tracker)
	}
	r.rates()
	return r
}

// send runs one worker per group of streams until the pacer says stop.
func (e *env) send(ctx context.Context, sc scenario) {
	n := sc.Streams()
	if n == 0 {
		<-ctx.Done()
		return
	}
	workers := min(e.o.Concurrency, n)
	pacer := NewPacer(e.o.Rate, e.o.Count, time.Now())
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for s := w; pacer.Next(ctx); s += workers {
				if s >= n {
					s = w
				}
				e.inFlight.Add(1)
				sc.Send(s)
				e.inFlight.Add(-1)
			}
		})
	}
	wg.Wait()
}

// drain waits until every accepted notification has arrived, the drain timeout
// passes or ctx ends. It reports whether everything arrived.
func (e *env) drain(ctx context.Context) bool {
	deadline := time.NewTimer(e.o.Drain)
	defer deadline.Stop()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		if e.tracker.Count().Lost == 0 {
			return true
		}
		select {
		case <-ctx.Done():
			return false
		case <-deadline.C:
			return false
		case <-tick.C:
		}
	}
}

// progress prints a line a second on the log until the returned stop is called.
func (e *env) progress() (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	tty := false
	if f, ok := e.log.(*os.File); ok {
		tty = isatty.IsTerminal(f.Fd())
	}
	wg.Go(func() {
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-done:
				if tty {
					fmt.Fprintln(e.log)
				}
				return
			case now := <-t.C:
				e.printProgress(e.stats.Tick(now, e.inFlight.Load()), tty)
			}
		}
	})
	return func() { close(done); wg.Wait() }
}

func (e *env) printProgress(p Point, tty bool) {
	tot := e.stats.Snapshot()
	line := fmt.Sprintf("%5.0fs  accepted %d/s  delivered %d/s  in flight %d  total %d/%d  p99 %.1fms (run %.1fms)",
		p.T, p.Accepted, p.Delivered, p.InFlight, tot.Accepted, tot.Delivered, p.P99, tot.P99)
	if tty {
		fmt.Fprint(e.log, "\r\033[K"+line)
		return
	}
	fmt.Fprintln(e.log, line)
}

func (o Options) params() map[string]string {
	p := map[string]string{"concurrency": strconv.Itoa(o.Concurrency), "duration": o.Duration.String(),
		"count": strconv.FormatInt(o.Count, 10), "rate": "max"}
	if o.Rate > 0 {
		p["rate"] = strconv.FormatFloat(o.Rate, 'f', -1, 64)
	}
	switch o.Scenario {
	case "chat":
		p["groups"], p["participants"], p["changers"] = strconv.Itoa(o.Groups), strconv.Itoa(o.Participants), strconv.Itoa(o.Changers)
		p["receivers"], p["wsMode"], p["mix"], p["format"] = o.Receivers, o.WSMode, o.Mix, o.Format
	case "relay":
		p["destinations"], p["failRate"] = strconv.Itoa(o.Destinations), strconv.FormatFloat(o.FailRate, 'f', -1, 64)
	case "channels":
		p["connections"] = strconv.Itoa(o.Connections)
	}
	return p
}

// raiseNoFile lifts the open-files soft limit to the hard limit: the tool holds a
// socket per receiver.
func raiseNoFile(log io.Writer) {
	var l syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l); err != nil || l.Cur >= l.Max {
		return
	}
	l.Cur = l.Max
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &l); err != nil {
		fmt.Fprintln(log, "loadtest: cannot raise the open files limit:", err)
	}
}
