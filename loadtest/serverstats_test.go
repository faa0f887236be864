//go:build linux

package loadtest

import (
	"bytes"
	"os"
	"strings"
	"testing"
)

// --server-pid samples a real process (this one) and the report prints and
// plots the samples.
func TestServerSamples(t *testing.T) {
	s, err := readServer(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if s.RSSBytes <= 0 || s.OpenFiles <= 0 || s.Threads <= 0 {
		t.Fatalf("sample of this process: %+v", s)
	}
	r := &Report{Server: []ServerSample{{T: 0, RSSBytes: 10 << 20, OpenFiles: 5, Threads: 3}, s}}
	var out bytes.Buffer
	r.WriteTable(&out)
	if !strings.Contains(out.String(), "server RSS") || !strings.Contains(out.String(), "start 10.0 MiB") {
		t.Errorf("table without the server rows:\n%s", out.String())
	}
	if len(r.serverCharts()) != 2 {
		t.Error("no server charts")
	}
	if _, err := readServer(1 << 30); err == nil {
		t.Error("a process that does not exist gave a sample")
	}
}
