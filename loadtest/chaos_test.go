package loadtest

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"testing"

	"notifyrelay/app/apptest"
)

// The chaos run against the real binary: the tool starts notifyrelay, SIGKILLs and
// restarts it 3 times on the same data dir while a chat load runs on every receiver
// kind, and reports each kill. No receiver kind may lose anything.
func TestChaosKillsLoseNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("starts and kills the real server (-short)")
	}
	bin := apptest.Binary(t)
	addr := freeAddr(t)
	dir := t.TempDir()
	cfg := filepath.Join(dir, "notifyrelay.yaml")
	yaml := fmt.Sprintf("listen: %s\ndata_dir: %s\nlog_level: info\ndelivery:\n  allow_private_targets: true\n  backoff:\n    initial: 5ms\n    max: 50ms\n",
		addr, filepath.Join(dir, "data"))
	if err := os.WriteFile(cfg, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	r := runTool(t, context.Background(), "http://"+addr, nil, "chat",
		"--server-cmd", bin+" serve --config "+cfg, "--server-log", filepath.Join(dir, "server.log"),
		"--kill-every", "1500ms", "--kills", "3", "--duration", "7s", "--rate", "40", "--drain", "20s",
		"--groups", "2", "--participants", "8", "--changers", "2",
		"--receivers", "webhook,websocket-ack,websocket-oma,longpoll")
	rep := r.report
	if len(rep.Kills) != 4 || rep.Kills[3].N != 0 {
		t.Fatalf("want 3 kills and the last life, got %+v", rep.Kills)
	}
	for _, k := range rep.Kills[:3] {
		if k.Failed != "" || k.RestartMs <= 0 || k.DownMs < k.RestartMs {
			t.Errorf("kill %d: %+v", k.N, k)
		}
	}
	for _, kind := range kindOrder {
		c := rep.ByKind[kind]
		if c.Expected == 0 {
			t.Errorf("%s: nothing expected (every receiver kind must take part): %+v", kind, rep.ByKind)
		}
		if c.Lost != 0 {
			t.Errorf("%s lost %d of %d across the kills (table above)", kind, c.Lost, c.Expected)
		}
	}
}

// freeAddr returns a 127.0.0.1 address nobody listens on now.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}
