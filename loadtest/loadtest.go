// Package loadtest is notifyrelay's load generator: a pure client over HTTP and
// WebSocket that drives a running OMA server and reports throughput, latency, loss,
// duplicates and order violations.
package loadtest

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
)

// Options is one run's configuration, from the command line.
type Options struct {
	Scenario    string
	Target      string
	Token       string
	Rate        float64 // operations per second; 0 with Max
	Max         bool
	Duration    time.Duration
	Count       int64
	Concurrency int // requests in flight at most
	Timeout     time.Duration
	Drain       time.Duration
	Receivers   string // webhook, websocket, longpoll, mixed, or a comma list of kinds
	WSMode      string // ack or oma
	Format      string // notificationFormat: json or xml
	Listen      string // the tool's own webhook receivers
	JSON, HTML  string

	Groups, Participants, Changers int
	Mix                            string // chat changes: subject,icon,role
	Destinations                   int
	FailRate                       float64
	Connections                    int
	ServerPID                      int
	MetricsURL                     string
	Ceiling                        bool // run the load against the in-process reference server first

	// Chaos: the tool runs the server itself and kills it (chaos.go).
	ServerCmd string        // command line of the server, split at spaces
	ServerLog string        // file for the server's output
	ReadyURL  string        // default: the target's origin + /readyz
	KillEvery time.Duration // SIGKILL and restart after this much uptime; 0: never
	Kills     int           // at most this many kills; 0: no limit

	// drop, when set, is asked for each received notification; true throws it away
	// before it is counted. Tests use it to prove that loss is detected.
	drop func() bool
}

// Exit codes.
const (
	exitOK    = 0
	exitLost  = 1 // something accepted was never delivered
	exitUsage = 2
	exitSetup = 3 // the run could not start (setup failed)
)

// Main runs `notifyrelay loadtest args…` and returns the exit code.
func Main(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	o, err := parse(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return exitOK
	}
	if err != nil {
		fmt.Fprintln(stderr, "notifyrelay loadtest:", err)
		return exitUsage
	}
	return run(ctx, o, stdout, stderr)
}

const usage = `usage: notifyrelay loadtest SCENARIO [flags]

Scenarios:
  relay      operator deliveries (POST /relay/v1/deliveries) to --destinations webhook
             receivers run by the tool, failing --fail-rate of the attempts with 503
  chat       --groups × --participants created through the OMA Chat API; changers POST
             chatSessionData; every other participant must get each change (N1) on its
             receiver (--receivers webhook|websocket|longpoll|mixed, or a comma list
             of webhook, websocket-ack, websocket-oma, longpoll used in turn)
  channels   --connections idle WebSocket channels held for --duration; server memory per
             connection from --server-pid or /metrics

With --ceiling (chat, relay) the same load runs first against an in-process in-memory
reference server; the report shows both runs and the target's ratios to it.

Chaos (relay, chat): --server-cmd "notifyrelay serve --config X" --kill-every 5s runs
the server, SIGKILLs and restarts it on that schedule while sending, and reports per
kill the time back to /readyz and what was lost and duplicated, per receiver kind.

Exit status: 0 all delivered, 1 something was lost, 2 bad usage, 3 setup failed.

Flags:`

func parse(args []string, stderr io.Writer) (Options, error) {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprintln(stderr, usage)
		newFlags(&Options{}, stderr).PrintDefaults()
		if len(args) == 0 {
			return Options{}, errors.New("missing SCENARIO")
		}
		return Options{}, flag.ErrHelp
	}
	o := Options{Scenario: args[0]}
	fs := newFlags(&o, stderr)
	fs.Usage = func() { fmt.Fprintln(stderr, usage); fs.PrintDefaults() }
	if err := fs.Parse(args[1:]); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	return o, o.check(fs)
}

func newFlags(o *Options, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("loadtest", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.Target, "target", "http://127.0.0.1:8080", "server base URL (with its base_path, if any); several nodes of one deployment: comma-separated, requests go to each in turn")
	fs.StringVar(&o.Token, "token", "", "bearer token (an operator token acts for every user)")
	fs.Float64Var(&o.Rate, "rate", 100, "operations per second (chat changes, relay deliveries)")
	fs.BoolVar(&o.Max, "max", false, "send as fast as --concurrency allows (instead of --rate)")
	fs.DurationVar(&o.Duration, "duration", 10*time.Second, "how long to send (or hold, for channels)")
	fs.Int64Var(&o.Count, "count", 0, "stop after this many operations (instead of --duration)")
	fs.IntVar(&o.Concurrency, "concurrency", 64, "requests in flight at most")
	fs.DurationVar(&o.Timeout, "timeout", 30*time.Second, "one HTTP request")
	fs.DurationVar(&o.Drain, "drain", 30*time.Second, "after sending stops, how long to wait for the last deliveries")
	fs.StringVar(&o.Receivers, "receivers", "webhook", "chat receivers: webhook, websocket, longpoll, mixed, or a comma list of webhook, websocket-ack, websocket-oma, longpoll (in turn)")
	fs.StringVar(&o.WSMode, "ws-mode", "ack", "WebSocket subprotocol: ack (notifyrelay.ack.v1) or oma")
	fs.StringVar(&o.Format, "format", "json", "notificationFormat of chat subscriptions: json or xml")
	fs.StringVar(&o.Listen, "listen", "127.0.0.1:0", "address of the tool's own webhook receivers")
	fs.StringVar(&o.JSON, "json", "", "write the report as JSON to this file")
	fs.StringVar(&o.HTML, "html", "", "write the report as a self-contained HTML page to this file")
	fs.IntVar(&o.Groups, "groups", 10, "chat: group chats")
	fs.IntVar(&o.Participants, "participants", 5, "chat: participants per group (the creator included)")
	fs.IntVar(&o.Changers, "changers", 1, "chat: participants per group that post changes")
	fs.StringVar(&o.Mix, "mix", "subject,icon,role", "chat: kinds of change, in turn")
	fs.IntVar(&o.Destinations, "destinations", 100, "relay: webhook destinations")
	fs.Float64Var(&o.FailRate, "fail-rate", 0, "relay, chat webhooks: fraction of attempts answered 503")
	fs.IntVar(&o.Connections, "connections", 1000, "channels: idle WebSocket channels")
	fs.IntVar(&o.ServerPID, "server-pid", 0, "the server's process: channels reads its memory from /proc/PID/status; other scenarios plot its RSS, open files and threads every 5 s")
	fs.StringVar(&o.MetricsURL, "metrics-url", "", "channels: /metrics URL (default: target's /metrics)")
	fs.BoolVar(&o.Ceiling, "ceiling", false, "chat, relay: first run the same load against an in-process in-memory reference server, then report the target's figures as ratios of it")
	fs.StringVar(&o.ServerCmd, "server-cmd", "", `run the server with this command (split at spaces, no shell), e.g. "notifyrelay serve --config X"; stopped at the end`)
	fs.StringVar(&o.ServerLog, "server-log", "", "--server-cmd: append the server's output to this file (default: discarded)")
	fs.StringVar(&o.ReadyURL, "ready-url", "", "--server-cmd: readiness URL (default: the target's /readyz)")
	fs.DurationVar(&o.KillEvery, "kill-every", 0, "--server-cmd: SIGKILL the server after this much uptime and restart it, while sending")
	fs.IntVar(&o.Kills, "kills", 0, "--kill-every: at most this many kills (0: as many as the sending phase allows)")
	return fs
}

func (o *Options) check(fs *flag.FlagSet) error {
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if set["rate"] && o.Max {
		return errors.New("--rate and --max exclude each other")
	}
	if set["duration"] && set["count"] {
		return errors.New("--duration and --count exclude each other")
	}
	if o.Max {
		o.Rate = 0
	}
	if set["count"] {
		o.Duration = 0
	}
	checks := []struct {
		ok   bool
		what string
	}{
		{o.Scenario == "relay" || o.Scenario == "chat" || o.Scenario == "channels", "SCENARIO must be relay, chat or channels, not " + strconv.Quote(o.Scenario)},
		{o.Max || o.Rate > 0, "--rate must be positive"},
		{o.Concurrency > 0, "--concurrency must be positive"},
		{validReceivers(o.Receivers), "--receivers must be webhook, websocket, longpoll, mixed or a comma list of webhook, websocket, websocket-ack, websocket-oma, longpoll"},
		{oneOf(o.WSMode, "ack", "oma"), "--ws-mode must be ack or oma"},
		{oneOf(o.Format, "json", "xml"), "--format must be json or xml"},
		{o.Groups > 0 && o.Participants >= 2, "--groups must be positive and --participants at least 2"},
		{o.Changers >= 1 && o.Changers <= o.Participants, "--changers must be between 1 and --participants"},
		{o.Destinations > 0, "--destinations must be positive"},
		{o.FailRate >= 0 && o.FailRate < 1, "--fail-rate must be in [0, 1)"},
		{o.Connections > 0, "--connections must be positive"},
		{!o.Ceiling || o.Scenario != "channels", "--ceiling applies to chat and relay"},
		{o.KillEvery >= 0 && o.Kills >= 0, "--kill-every and --kills must not be negative"},
		{o.KillEvery == 0 || o.ServerCmd != "", "--kill-every needs --server-cmd (the tool kills only a server it started)"},
		{o.KillEvery == 0 || o.Scenario != "channels", "--kill-every needs the relay or chat scenario"},
	}
	for _, c := range checks {
		if !c.ok {
			return errors.New(c.what)
		}
	}
	return nil
}

// validReceivers checks --receivers: one word, or a comma list of kinds.
func validReceivers(v string) bool {
	if v == "websocket" || v == "mixed" {
		return true
	}
	for _, k := range strings.Split(v, ",") {
		if !oneOf(k, "webhook", "websocket", "websocket-ack", "websocket-oma", "longpoll") {
			return false
		}
	}
	return true
}

func oneOf(v string, allowed ...string) bool {
	for _, a := range allowed {
		if v == a {
			return true
		}
	}
	return false
}
