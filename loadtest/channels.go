package loadtest

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

// channelsScenario opens --connections idle WebSocket channels, holds them for
// --duration and reports the server's resident memory per connection.
type channelsScenario struct {
	e       *env
	run     int
	ls      *listeners
	mem     Memory
	mu      sync.Mutex
	cleanup []string
}

func newChannels(e *env) *channelsScenario {
	return &channelsScenario{e: e, run: rand.IntN(9000) + 1000}
}

func (s *channelsScenario) Setup(ctx context.Context) error {
	s.ls = newListeners(s.e, func(string, []byte, time.Time) {})
	src, read := s.memoryReader()
	before, memErr := read()
	began := time.Now()
	if err := forEach(ctx, s.e, "channels", s.e.o.Connections, s.open); err != nil {
		return err
	}
	s.mem = Memory{Connections: s.e.o.Connections, ClientOpenSecs: time.Since(began).Seconds()}
	if after, err := read(); memErr == nil && err == nil {
		s.mem.Source, s.mem.BeforeBytes, s.mem.AfterBytes = src, before, after
		s.mem.PerConnBytes = float64(after-before) / float64(s.e.o.Connections)
	} else {
		fmt.Fprintln(s.e.log, "loadtest: server memory unknown:", firstErr(memErr, err))
	}
	return nil
}

func (s *channelsScenario) open(i int) error {
	user := fmt.Sprintf("tel:+1%04d%07d", s.run, i/100)
	ch, err := s.e.client.createChannel(user, "WebSockets", fmt.Sprintf("lt-%d-c%d", s.run, i))
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.cleanup = append(s.cleanup, ch.ResourceURL)
	s.mu.Unlock()
	return s.ls.websocket("c"+strconv.Itoa(i), ch, s.e.o.WSMode == "ack", false)
}

func (s *channelsScenario) Streams() int { return 0 }

func (s *channelsScenario) Send(int) {}

func (s *channelsScenario) Finish(_ context.Context, r *Report) {
	m := s.mem
	m.Dropped = s.ls.dropped.Load()
	r.Memory = &m
}

func (s *channelsScenario) Close() {
	if s.ls != nil {
		s.ls.Close()
	}
	_ = forEach(context.Background(), s.e, "", len(s.cleanup), func(i int) error {
		_, _ = s.e.client.do("DELETE", s.cleanup[i], "", nil)
		return nil
	})
}

// memoryReader picks where the server's RSS comes from: /proc/PID/status with
// --server-pid, else the process_resident_memory_bytes gauge of /metrics.
func (s *channelsScenario) memoryReader() (string, func() (int64, error)) {
	if pid := s.e.o.ServerPID; pid > 0 {
		path := fmt.Sprintf("/proc/%d/status", pid)
		return path, func() (int64, error) { return procRSS(path) }
	}
	u := s.e.o.MetricsURL
	if u == "" {
		t, err := url.Parse(firstTarget(s.e.o.Target))
		if err != nil {
			return "", func() (int64, error) { return 0, err }
		}
		u = t.Scheme + "://" + t.Host + "/metrics"
	}
	return "/metrics", func() (int64, error) { return s.metricsRSS(u) }
}

func procRSS(path string) (int64, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, fmt.Errorf("server memory: %w", err)
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			if err != nil {
				return 0, fmt.Errorf("server memory: VmRSS %q: %w", rest, err)
			}
			return kb * 1024, nil
		}
	}
	return 0, fmt.Errorf("server memory: no VmRSS in %s", path)
}

func (s *channelsScenario) metricsRSS(u string) (int64, error) {
	r, err := s.e.client.expect(200, "GET", u, "", nil)
	if err != nil {
		return 0, fmt.Errorf("server memory: %w", err)
	}
	return parseGauge(r.Body, "process_resident_memory_bytes")
}

// parseGauge reads an unlabelled sample from the Prometheus text format.
func parseGauge(body []byte, name string) (int64, error) {
	sc := bufio.NewScanner(bytes.NewReader(body))
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), name+" "); ok {
			v, err := strconv.ParseFloat(strings.TrimSpace(rest), 64)
			if err != nil {
				return 0, fmt.Errorf("%s: %w", name, err)
			}
			return int64(v), nil
		}
	}
	return 0, fmt.Errorf("no %s in /metrics", name)
}

func firstErr(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}
