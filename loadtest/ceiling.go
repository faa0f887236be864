package loadtest

import (
	"context"
	"fmt"
	"io"

	"notifyrelay/loadtest/ceiling"
)

// Ratio is the target's figures over the ceiling's, measured in the same run.
type Ratio struct {
	AcceptedPerSec  float64 `json:"acceptedPerSec"`  // chat: changes/s
	DeliveredPerSec float64 `json:"deliveredPerSec"` // chat: notifications (N1)/s
	LatencyP99      float64 `json:"latencyP99"`      // end to end; above 1: slower than the ceiling
}

// runCeiling runs the load against an in-process reference server (package
// ceiling) and returns its report; nil with an exit code when it could not run.
func runCeiling(ctx context.Context, o Options, stderr io.Writer) (*Report, int) {
	srv, err := ceiling.Start()
	if err != nil {
		fmt.Fprintln(stderr, "notifyrelay loadtest:", err)
		return nil, exitSetup
	}
	defer srv.Close()
	co := o
	co.Target, co.Token = srv.URL(), ""
	co.ServerCmd, co.KillEvery = "", 0 // the reference server runs in process: nothing to start or kill
	fmt.Fprintln(stderr, "loadtest: first the ceiling, an in-process in-memory reference server")
	return runOnce(ctx, co, stderr)
}

// setCeiling attaches the ceiling's report and the ratios to r.
func (r *Report) setCeiling(c *Report) {
	if c == nil {
		return
	}
	r.Ceiling = c
	r.VsCeiling = &Ratio{AcceptedPerSec: ratio(r.AcceptedPerSec, c.AcceptedPerSec),
		DeliveredPerSec: ratio(r.DeliveredPerSec, c.DeliveredPerSec), LatencyP99: ratio(r.Latency.P99, c.Latency.P99)}
}

func ratio(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}

func (v *Ratio) writeRows(tw io.Writer) {
	fmt.Fprintf(tw, "vs ceiling\taccepted/s %.2f×  delivered/s %.2f×  e2e p99 %.2f× (above 1: slower)\n",
		v.AcceptedPerSec, v.DeliveredPerSec, v.LatencyP99)
}
