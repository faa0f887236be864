package loadtest

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"text/tabwriter"
	"time"
)

// Report is the outcome of a run: what --json writes and what the table shows.
type Report struct {
	Scenario        string                `json:"scenario"`
	Target          string                `json:"target"`
	Params          map[string]string     `json:"params"`
	Started         time.Time             `json:"started"`
	SendSeconds     float64               `json:"sendSeconds"`  // the sending phase
	DrainSeconds    float64               `json:"drainSeconds"` // waiting for the last deliveries
	Interrupted     bool                  `json:"interrupted"`  // Ctrl-C: a partial report
	DrainTimedOut   bool                  `json:"drainTimedOut"`
	Sent            int64                 `json:"sent"`
	Accepted        int64                 `json:"accepted"`
	Delivered       int64                 `json:"delivered"` // first receipts
	AcceptedPerSec  float64               `json:"acceptedPerSec"`
	DeliveredPerSec float64               `json:"deliveredPerSec"`
	Latency         Latency               `json:"latencyMs"`       // end to end: sent → received
	AcceptLatency   Latency               `json:"acceptLatencyMs"` // request → 2xx
	Counts          Counts                `json:"delivery"`
	ByKind          map[string]KindCounts `json:"byKind"`          // by receiver kind
	Kills           []Kill                `json:"kills,omitempty"` // --kill-every: one row per kill, then the last life
	Errors          map[string]int64      `json:"errors"`
	Memory          *Memory               `json:"memory,omitempty"`
	Server          []ServerSample        `json:"server,omitempty"` // --server-pid: the process over the run
	Timeline        []Point               `json:"timeline"`
	Ceiling         *Report               `json:"ceiling,omitempty"`   // --ceiling: the same load on the reference server
	VsCeiling       *Ratio                `json:"vsCeiling,omitempty"` // this run's figures over the ceiling's
}

// Memory is the server's resident memory around opening the idle connections.
type Memory struct {
	Source         string  `json:"source"` // "/proc/<pid>/status" or "/metrics"
	Connections    int     `json:"connections"`
	BeforeBytes    int64   `json:"beforeBytes"`
	AfterBytes     int64   `json:"afterBytes"`
	PerConnBytes   float64 `json:"perConnectionBytes"`
	Dropped        int64   `json:"dropped"` // connections that closed while held
	ClientOpenSecs float64 `json:"openSeconds"`
}

// Failed reports whether anything accepted was not delivered (by the target or
// the ceiling), or an idle connection was dropped.
func (r *Report) Failed() bool {
	return r.Counts.Lost > 0 || (r.Memory != nil && r.Memory.Dropped > 0) || (r.Ceiling != nil && r.Ceiling.Failed())
}

// rates fills the per-second figures. Deliveries count over send and drain time.
func (r *Report) rates() {
	if r.SendSeconds > 0 {
		r.AcceptedPerSec = float64(r.Accepted) / r.SendSeconds
	}
	if d := r.SendSeconds + r.DrainSeconds; d > 0 {
		r.DeliveredPerSec = float64(r.Delivered) / d
	}
}

// WriteTable prints the human report: with --ceiling, the ceiling's run, then the
// target's, then the ratios.
func (r *Report) WriteTable(w io.Writer) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	if r.Ceiling != nil {
		fmt.Fprintln(tw, "ceiling (in-process in-memory reference server)")
		r.Ceiling.writeRows(tw)
		fmt.Fprintln(tw, "\ntarget")
	}
	r.writeRows(tw)
	if r.VsCeiling != nil {
		r.VsCeiling.writeRows(tw)
	}
	_ = tw.Flush()
	r.writeKinds(w)
}

func (r *Report) writeRows(tw io.Writer) {
	state := "complete"
	if r.Interrupted {
		state = "INTERRUPTED (partial)"
	} else if r.DrainTimedOut {
		state = "drain timed out"
	}
	fmt.Fprintf(tw, "scenario\t%s (%s)\n", r.Scenario, state)
	fmt.Fprintf(tw, "target\t%s\n", r.Target)
	fmt.Fprintf(tw, "duration\t%.1fs sending + %.1fs draining\n", r.SendSeconds, r.DrainSeconds)
	if r.Memory != nil {
		r.Memory.writeRows(tw)
	} else {
		r.writeDelivery(tw)
	}
	r.writeServerRows(tw)
	for _, k := range errorKinds(r.Errors) {
		fmt.Fprintf(tw, "error: %s\t%d\n", k, r.Errors[k])
	}
}

func (r *Report) writeDelivery(tw io.Writer) {
	c := r.Counts
	fmt.Fprintf(tw, "sent / accepted\t%d / %d\n", r.Sent, r.Accepted)
	fmt.Fprintf(tw, "accepted/s\t%.1f\n", r.AcceptedPerSec)
	fmt.Fprintf(tw, "delivered/s\t%.1f  (%d notifications to %d flows)\n", r.DeliveredPerSec, r.Delivered, c.Flows)
	l := r.Latency
	fmt.Fprintf(tw, "latency ms\tp50 %.2f  p90 %.2f  p99 %.2f  p99.9 %.2f  max %.2f\n", l.P50, l.P90, l.P99, l.P999, l.Max)
	a := r.AcceptLatency
	fmt.Fprintf(tw, "accept ms\tp50 %.2f  p99 %.2f  max %.2f\n", a.P50, a.P99, a.Max)
	fmt.Fprintf(tw, "expected / received\t%d / %d\n", c.Expected, c.Received)
	fmt.Fprintf(tw, "lost\t%d\n", c.Lost)
	fmt.Fprintf(tw, "duplicated\t%d\n", c.Duplicates)
	fmt.Fprintf(tw, "out of order\t%d\n", c.OutOfOrder)
}

func (m *Memory) writeRows(tw io.Writer) {
	fmt.Fprintf(tw, "connections\t%d open (%.1fs to open), %d dropped while held\n", m.Connections, m.ClientOpenSecs, m.Dropped)
	if m.Source == "" {
		fmt.Fprintf(tw, "server memory\tunknown (pass --server-pid or expose /metrics)\n")
		return
	}
	fmt.Fprintf(tw, "server RSS (%s)\t%.1f MiB → %.1f MiB\n", m.Source, mib(m.BeforeBytes), mib(m.AfterBytes))
	fmt.Fprintf(tw, "memory per connection\t%.1f KiB\n", m.PerConnBytes/1024)
}

func mib(b int64) float64 { return float64(b) / (1 << 20) }

// WriteJSON writes the report to path.
func (r *Report) WriteJSON(path string) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return fmt.Errorf("report JSON: %w", err)
	}
	if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
