package loadtest

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

// ServerSample is the server process's resources T seconds into the run, read
// from /proc/PID with --server-pid: a soak must keep them flat.
type ServerSample struct {
	T         float64 `json:"t"`
	RSSBytes  int64   `json:"rssBytes"`
	OpenFiles int     `json:"openFiles"`
	Threads   int     `json:"threads"`
}

// serverSampleEvery: a soak runs for minutes, so a sample every few seconds
// draws its curves at no cost to the server.
const serverSampleEvery = 5 * time.Second

// sampleServer samples the --server-pid process from now until stop is called
// (after the drain). The channels scenario measures memory its own way.
func (e *env) sampleServer(start time.Time) (stop func() []ServerSample) {
	if e.o.ServerPID <= 0 || e.o.Scenario == "channels" {
		return func() []ServerSample { return nil }
	}
	done := make(chan struct{})
	var out []ServerSample
	take := func(now time.Time) {
		if s, err := readServer(e.o.ServerPID); err == nil {
			s.T = now.Sub(start).Seconds()
			out = append(out, s)
		}
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(serverSampleEvery)
		defer t.Stop()
		take(time.Now())
		for {
			select {
			case <-done:
				take(time.Now())
				return
			case now := <-t.C:
				take(now)
			}
		}
	})
	return func() []ServerSample { close(done); wg.Wait(); return out }
}

func readServer(pid int) (ServerSample, error) {
	dir := fmt.Sprintf("/proc/%d", pid)
	rss, err := procRSS(dir + "/status")
	if err != nil {
		return ServerSample{}, err
	}
	fds, err := os.ReadDir(dir + "/fd")
	if err != nil {
		return ServerSample{}, fmt.Errorf("server open files: %w", err)
	}
	return ServerSample{RSSBytes: rss, OpenFiles: len(fds), Threads: procThreads(dir + "/status")}, nil
}

// procThreads is the Threads: line of /proc/PID/status (0 if unreadable).
func procThreads(path string) int {
	b, _ := os.ReadFile(path)
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "Threads:"); ok {
			n, _ := strconv.Atoi(strings.TrimSpace(rest))
			return n
		}
	}
	return 0
}

// writeServerRows prints the first, middle and last samples.
func (r *Report) writeServerRows(tw io.Writer) {
	if len(r.Server) == 0 {
		return
	}
	row := func(name string, f func(ServerSample) string) {
		s := r.Server
		first, mid, last := s[0], s[len(s)/2], s[len(s)-1]
		fmt.Fprintf(tw, "server %s\tstart %s (%.0fs)  mid %s (%.0fs)  end %s (%.0fs)\n",
			name, f(first), first.T, f(mid), mid.T, f(last), last.T)
	}
	row("RSS", func(s ServerSample) string { return fmt.Sprintf("%.1f MiB", mib(s.RSSBytes)) })
	row("open files", func(s ServerSample) string { return strconv.Itoa(s.OpenFiles) })
	row("threads", func(s ServerSample) string { return strconv.Itoa(s.Threads) })
}

// serverCharts plots the samples.
func (r *Report) serverCharts() []chart {
	if len(r.Server) == 0 {
		return nil
	}
	n := len(r.Server)
	x, rss, fds, thr := make([]float64, n), make([]float64, n), make([]float64, n), make([]float64, n)
	for i, s := range r.Server {
		x[i], rss[i] = s.T, mib(s.RSSBytes)
		fds[i], thr[i] = float64(s.OpenFiles), float64(s.Threads)
	}
	return []chart{
		{Title: "Server resident memory", Unit: "MiB", X: x, Lines: []series{{"RSS", "#9467bd", rss}}},
		{Title: "Server open files and threads", Unit: "count", X: x, Lines: []series{
			{"open files", "#8c564b", fds}, {"threads", "#17becf", thr}}},
	}
}
