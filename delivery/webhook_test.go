package delivery

import (
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"notifyrelay/config"
	"notifyrelay/oma"
	"notifyrelay/queue"
)

// The guard also runs when connecting: a URL that got past acceptance (or a name
// that now resolves elsewhere) is refused on the address actually dialled, and
// classified dead at once.
func TestWebhookDialGuard(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) }))
	defer srv.Close()
	_, port, _ := net.SplitHostPort(strings.TrimPrefix(srv.URL, "http://"))
	cfg := config.Default().Delivery
	cfg.Timeout = config.Duration(5 * time.Second)
	env := oma.Envelope{ContentType: "application/json", Body: []byte(`{}`)}
	guarded := newWebhookClient(cfg, nil)
	for _, host := range []string{"127.0.0.1", "localhost", "[::ffff:127.0.0.1]", "0.0.0.0"} {
		res := guarded.post("http://"+host+":"+port+"/x", queue.Entry{ID: "id-1", Seq: 1}, env, nil)
		if v := classifyError(res.err); res.status != 0 || v != (verdict{dead, "blocked_target"}) {
			t.Errorf("%s: status %d err %v verdict %+v", host, res.status, res.err, v)
		}
	}
	cfg.AllowPrivateTargets = true
	open := newWebhookClient(cfg, nil)
	if res := open.post("http://localhost:"+port+"/x", queue.Entry{ID: "id-1", Seq: 1}, env, nil); res.status != http.StatusNoContent {
		t.Fatalf("allowed: %d %v", res.status, res.err)
	}
}
