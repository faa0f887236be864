// Package loadtest is notifyrelay's load generator: a pure client over HTTP and
// WebSocket that drives a running OMA server and reports throughput, latency, loss,
// duplicates and order violations.
package loadtest

import (
	"context"
	"fmt"
	"io"
)

// Main runs `notifyrelay loadtest args…` and returns the exit code.
func Main(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fmt.Fprintln(stderr, "notifyrelay loadtest: not built yet")
	return 2
}
