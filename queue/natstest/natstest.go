// Package natstest starts embedded NATS servers with JetStream for tests: on
// 127.0.0.1, random ports, temporary store directories, stopped with the test.
package natstest

import (
	"fmt"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// Cluster is n servers forming one JetStream cluster (n = 1: a single server).
type Cluster struct {
	Servers []*server.Server
	URLs    []string // client URLs, one per server
}

// MaxBatchMsgs is the servers' limits.batch.max_msgs: more than the default 1000,
// so that a test may raise queue.jetstream.max_batch_msgs up to it.
const MaxBatchMsgs = 4000

// Start starts n servers. syncAlways fsyncs before every acknowledgement
// (sync_interval: always); otherwise the server's default interval applies.
// max_payload is 16 MiB so that the largest notification fits in one message.
func Start(t testing.TB, n int, syncAlways bool) *Cluster {
	t.Helper()
	c := &Cluster{}
	ports := freePorts(t, n)
	var routes []string
	for _, p := range ports {
		routes = append(routes, fmt.Sprintf("nats-route://127.0.0.1:%d", p))
	}
	for i := range n {
		o := &server.Options{ServerName: fmt.Sprintf("n%d", i), Host: "127.0.0.1", Port: -1,
			JetStream: true, StoreDir: t.TempDir(), SyncAlways: syncAlways,
			MaxPayload: 16 << 20, NoLog: true, NoSigs: true}
		o.JetStreamLimits.MaxBatchSize = MaxBatchMsgs
		if n > 1 {
			o.Cluster = server.ClusterOpts{Name: "test", Host: "127.0.0.1", Port: ports[i]}
			o.Routes = server.RoutesFromStr(strings.Join(routes, ","))
		}
		s, err := server.NewServer(o)
		if err != nil {
			t.Fatalf("nats server: %v", err)
		}
		s.Start()
		t.Cleanup(s.Shutdown)
		if !s.ReadyForConnections(30 * time.Second) {
			t.Fatalf("nats server %d not ready", i)
		}
		c.Servers = append(c.Servers, s)
		c.URLs = append(c.URLs, s.ClientURL())
	}
	return c
}

// freePorts finds n free ports on 127.0.0.1 for the routes, which every server
// must know before any starts.
func freePorts(t testing.TB, n int) []int {
	t.Helper()
	ports := make([]int, n)
	for i := range ports {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatalf("listen: %v", err)
		}
		ports[i] = l.Addr().(*net.TCPAddr).Port
		defer l.Close()
	}
	return ports
}

var prefixes atomic.Int64

// Prefix returns a stream prefix no other caller in this process gets, so that
// tests sharing servers do not see each other's data.
func Prefix() string { return fmt.Sprintf("t%d_%d", time.Now().UnixNano()%1e6, prefixes.Add(1)) }
