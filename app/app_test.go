package app_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/rs/zerolog"

	"notifyrelay/app"
	"notifyrelay/app/apptest"
	"notifyrelay/config"
)

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestHealthReadyMetricsAndFaults(t *testing.T) {
	a := apptest.Start(t, nil)
	base := apptest.URL(a)
	if code, _ := get(t, base+"/healthz"); code != 200 {
		t.Errorf("/healthz %d", code)
	}
	if code, _ := get(t, base+"/readyz"); code != 200 {
		t.Errorf("/readyz %d", code)
	}
	if code, body := get(t, base+"/metrics"); code != 200 || !strings.Contains(body, "go_goroutines") || !strings.Contains(body, `notifyrelay_queue_depth{kind="channel"} 0`) ||
		!strings.Contains(body, `notifyrelay_notifications_accepted_total{kind="operator"} 0`) ||
		!strings.Contains(body, "notifyrelay_queue_commit_seconds_count") {
		t.Errorf("/metrics %d", code)
	}
	code, body := get(t, base+"/no/such/thing")
	if code != 404 || !strings.Contains(body, `"SVC0004"`) {
		t.Errorf("unknown path: %d %s", code, body)
	}
}

func TestOversizeBodyIs413RequestError(t *testing.T) {
	a := apptest.Start(t, func(c *config.Config) { c.Limits.MaxBody = 2048 })
	resp, err := http.Post(apptest.URL(a)+"/chat/v1/u/group", "application/json", bytes.NewReader(make([]byte, 4096)))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 413 || !strings.Contains(string(b), "requestError") {
		t.Errorf("oversize: %d %s", resp.StatusCode, b)
	}
}

func TestAdminListenServesMetricsAndPprofOnly(t *testing.T) {
	a := apptest.Start(t, func(c *config.Config) { c.AdminListen = "127.0.0.1:0" })
	if code, _ := get(t, apptest.URL(a)+"/metrics"); code != 404 {
		t.Errorf("/metrics on the public listener with admin_listen set: %d", code)
	}
	admin := "http://" + a.AdminAddr()
	if code, _ := get(t, admin+"/metrics"); code != 200 {
		t.Errorf("admin /metrics %d", code)
	}
	if code, _ := get(t, admin+"/debug/pprof/"); code != 200 {
		t.Errorf("admin pprof %d", code)
	}
}

func TestBasePathKeepsProbesAtRoot(t *testing.T) {
	a := apptest.Start(t, func(c *config.Config) { c.BasePath = "/exampleAPI" })
	base := apptest.URL(a)
	if code, _ := get(t, base+"/healthz"); code != 200 {
		t.Errorf("/healthz with base_path: %d", code)
	}
	if code, _ := get(t, base+"/exampleAPI/nothing"); code != 404 {
		t.Errorf("unknown under base_path: %d", code)
	}
}

func TestRefusesAuthOffOnNonLoopback(t *testing.T) {
	cfg := apptest.Config(t)
	cfg.Listen = "0.0.0.0:0"
	if _, err := app.New(cfg, zerolog.Nop()); err == nil || !strings.Contains(err.Error(), "--insecure") {
		t.Errorf("auth off on 0.0.0.0: %v", err)
	}
	cfg.Insecure = true
	if _, err := app.New(cfg, zerolog.Nop()); err != nil {
		t.Errorf("with insecure: %v", err)
	}
	cfg.Insecure = false
	cfg.Auth.Tokens = []config.Token{{Token: "operator-token", Operator: true}}
	if _, err := app.New(cfg, zerolog.Nop()); err != nil {
		t.Errorf("with tokens: %v", err)
	}
}

func TestSIGTERMStopsCleanlyAndReleasesTheDataDir(t *testing.T) {
	dir := t.TempDir()
	p := apptest.StartProcess(t, apptest.ProcOptions{DataDir: dir})
	if code, _ := get(t, p.URL+"/readyz"); code != 200 {
		t.Fatalf("/readyz %d", code)
	}
	if err := p.Stop(20 * time.Second); err != nil {
		t.Fatalf("SIGTERM: %v (want exit 0)", err)
	}
	p = apptest.StartProcess(t, apptest.ProcOptions{DataDir: dir})
	if code, _ := get(t, p.URL+"/readyz"); code != 200 {
		t.Fatalf("restart /readyz %d", code)
	}
}

func TestSecondServerOnTheSameDataDirFailsClearly(t *testing.T) {
	if apptest.OnJetStream() {
		t.Skip("on JetStream a second node on a held prefix is a standby (TestStandbyForwardsThenTakesOver)")
	}
	a := apptest.Start(t, nil)
	cfg := apptest.Config(t)
	cfg.DataDir = a.Config().DataDir
	b, err := app.New(cfg, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Start(t.Context()); err == nil {
		b.Stop()
		t.Fatal("a second server opened a locked data dir")
	}
}

func TestWebSocketUpgradeCountedAs101(t *testing.T) {
	a := apptest.Start(t, nil)
	base := apptest.URL(a)
	resp, err := http.Post(base+"/notificationchannel/v1/u1/channels", "application/json",
		strings.NewReader(`{"notificationChannel":{"channelType":"WebSockets"}}`))
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		NotificationChannel struct {
			ChannelData struct{ ChannelURL string } `json:"channelData"`
		} `json:"notificationChannel"`
	}
	err = json.NewDecoder(resp.Body).Decode(&doc)
	resp.Body.Close()
	if err != nil || resp.StatusCode != 201 {
		t.Fatalf("create channel: %d %v", resp.StatusCode, err)
	}
	d := websocket.Dialer{Subprotocols: []string{"notifyrelay.ack.v1"}}
	c, _, err := d.Dial(doc.NotificationChannel.ChannelData.ChannelURL, nil)
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	_, body := get(t, base+"/metrics")
	if !strings.Contains(body, `status="101"`) {
		t.Errorf("no request counted with status 101 after a WebSocket upgrade")
	}
}
