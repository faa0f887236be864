package app_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"go.yaml.in/yaml/v3"

	"notifyrelay/app/apptest"
	"notifyrelay/config"
)

// TestDashboardsQueryRealMetrics checks that every notifyrelay_* metric the
// Grafana dashboard and the Prometheus alerts query exists in a real server's
// /metrics, with every label they select or group by. The server first sees
// traffic of every kind (delivered, retried, dead-lettered webhooks, a channel),
// so that labelled series exist.
func TestDashboardsQueryRealMetrics(t *testing.T) {
	// Receivers first, so that the server stops before they do.
	var receivers []string
	for _, status := range []int{204, 400, 503} {
		rcv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(status) }))
		t.Cleanup(rcv.Close)
		receivers = append(receivers, rcv.URL+"/hook")
	}
	a := apptest.Start(t, func(c *config.Config) {
		c.Delivery.AllowPrivateTargets = true
		c.Delivery.Backoff.Initial = config.Duration(5 * time.Millisecond)
		c.Delivery.Backoff.Max = config.Duration(20 * time.Millisecond)
	})
	base := apptest.URL(a)
	families := func() map[string]*dto.MetricFamily { return scrape(t, base+"/metrics") }
	makeTraffic(t, base, receivers)
	waitFor(t, "webhook and channel series", func() bool {
		f := families()
		return f["notifyrelay_webhook_dead_lettered_total"] != nil && f["notifyrelay_webhook_retried_total"] != nil &&
			f["notifyrelay_webhook_delivered_total"] != nil && hasLabelValue(f["notifyrelay_notifications_delivered_total"], "kind", "channel")
	})
	fams := families()
	// The check itself finds what is wrong (so its silence below means something).
	for _, bad := range []string{`notifyrelay_no_such_metric`, `notifyrelay_queue_depth{reason="x"}`,
		`sum by (route) (notifyrelay_queue_depth)`, `rate(notifyrelay_queue_depth_bucket[1m])`} {
		if len(checkQuery(bad, fams)) == 0 {
			t.Errorf("%s: not reported", bad)
		}
	}
	for _, q := range deployQueries(t) {
		for _, problem := range checkQuery(q, fams) {
			t.Errorf("%s: %s", q, problem)
		}
	}
}

// makeTraffic delivers to a receiver that accepts, one that refuses (400: dead
// letter) and one that is down (503: retried), and through a long-poll channel.
func makeTraffic(t *testing.T, base string, receivers []string) {
	for _, r := range receivers {
		u := base + "/relay/v1/deliveries?notifyURL=" + url.QueryEscape(r)
		if st := send(t, "POST", u, `{"n":1}`); st != 202 {
			t.Fatalf("delivery: %d", st)
		}
	}
	cb, chURL := newChannel(t, base, "LongPolling")
	if st := send(t, "POST", cb, `{"x":{"y":1}}`); st != 204 {
		t.Fatalf("callback: %d", st)
	}
	if st := send(t, "POST", chURL, ""); st != 200 {
		t.Fatalf("poll: %d", st)
	}
	cb, chURL = newChannel(t, base, "WebSockets")
	d := websocket.Dialer{Subprotocols: []string{"notificationchannel-netapi-rest.openmobilealliance.org"}}
	conn, _, err := d.Dial(chURL, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if st := send(t, "POST", cb, `{"x":{"y":2}}`); st != 204 {
		t.Fatalf("callback: %d", st)
	}
	if _, _, err := conn.ReadMessage(); err != nil {
		t.Fatal(err)
	}
}

// newChannel creates a channel of alice and returns its callbackURL and channelURL.
func newChannel(t *testing.T, base, typ string) (string, string) {
	resp := request(t, "POST", base+"/notificationchannel/v1/alice/channels", `{"notificationChannel":{"channelType":"`+typ+`"}}`)
	var ch struct {
		C struct {
			CallbackURL string `json:"callbackURL"`
			Data        struct {
				ChannelURL string `json:"channelURL"`
			} `json:"channelData"`
		} `json:"notificationChannel"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&ch); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return ch.C.CallbackURL, ch.C.Data.ChannelURL
}

func request(t *testing.T, method, u, body string) *http.Response {
	req, _ := http.NewRequest(method, u, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

func send(t *testing.T, method, u, body string) int {
	resp := request(t, method, u, body)
	resp.Body.Close()
	return resp.StatusCode
}

func scrape(t *testing.T, u string) map[string]*dto.MetricFamily {
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return fams
}

func hasLabelValue(f *dto.MetricFamily, name, value string) bool {
	for _, m := range f.GetMetric() {
		for _, l := range m.GetLabel() {
			if l.GetName() == name && l.GetValue() == value {
				return true
			}
		}
	}
	return false
}

// deployQueries reads every PromQL expression of the dashboard and the alerts.
func deployQueries(t *testing.T) []string {
	var queries []string
	b, err := os.ReadFile("../deploy/grafana/notifyrelay.json")
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Panels []struct {
			Targets []struct{ Expr string } `json:"targets"`
		} `json:"panels"`
		Templating struct {
			List []struct{ Definition string } `json:"list"`
		} `json:"templating"`
	}
	if err := json.Unmarshal(b, &dash); err != nil {
		t.Fatal(err)
	}
	for _, p := range dash.Panels {
		for _, tg := range p.Targets {
			queries = append(queries, tg.Expr)
		}
	}
	for _, v := range dash.Templating.List {
		if v.Definition != "" {
			queries = append(queries, v.Definition)
		}
	}
	b, err = os.ReadFile("../deploy/prometheus/alerts.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var rules struct {
		Groups []struct {
			Rules []struct{ Expr string } `yaml:"rules"`
		} `yaml:"groups"`
	}
	if err := yaml.Unmarshal(b, &rules); err != nil {
		t.Fatal(err)
	}
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			queries = append(queries, r.Expr)
		}
	}
	if len(queries) < 20 {
		t.Fatalf("only %d queries found", len(queries))
	}
	return queries
}

var (
	metricRe   = regexp.MustCompile(`\b(notifyrelay_[a-z0-9_]+)(\{[^}]*\})?`)
	matcherRe  = regexp.MustCompile(`([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)`)
	groupingRe = regexp.MustCompile(`\b(?:by|without)\s*\(([^)]*)\)`)
	labelFnRe  = regexp.MustCompile(`label_values\([^,]+,\s*([a-zA-Z_]+)\)`)
)

// targetLabels are added by Prometheus when it scrapes, never in /metrics.
var targetLabels = map[string]bool{"instance": true, "job": true}

// checkQuery returns what q uses that /metrics does not have.
func checkQuery(q string, fams map[string]*dto.MetricFamily) []string {
	var problems []string
	labels := map[string]bool{} // labels of the metrics q uses
	for _, m := range metricRe.FindAllStringSubmatch(q, -1) {
		f, histogram := family(m[1], fams)
		if f == nil {
			problems = append(problems, "no metric "+m[1]+" in /metrics")
			continue
		}
		for _, l := range labelNames(f) {
			labels[l] = true
		}
		if histogram {
			labels["le"] = true
		}
		for _, sel := range matcherRe.FindAllStringSubmatch(m[2], -1) {
			if !labels[sel[1]] && !targetLabels[sel[1]] {
				problems = append(problems, m[1]+" has no label "+sel[1])
			}
		}
	}
	var used []string
	for _, g := range groupingRe.FindAllStringSubmatch(q, -1) {
		used = append(used, strings.Split(g[1], ",")...)
	}
	for _, g := range labelFnRe.FindAllStringSubmatch(q, -1) {
		used = append(used, g[1])
	}
	for _, l := range used {
		if l = strings.TrimSpace(l); l != "" && !labels[l] && !targetLabels[l] {
			problems = append(problems, "groups by "+l+", which none of its metrics has")
		}
	}
	return problems
}

// family finds the metric family of a series name (a histogram's _bucket, _sum,
// _count included).
func family(name string, fams map[string]*dto.MetricFamily) (*dto.MetricFamily, bool) {
	if f := fams[name]; f != nil {
		return f, false
	}
	for _, suffix := range []string{"_bucket", "_sum", "_count"} {
		if base, ok := strings.CutSuffix(name, suffix); ok && fams[base] != nil && fams[base].GetType() == dto.MetricType_HISTOGRAM {
			return fams[base], suffix == "_bucket"
		}
	}
	return nil, false
}

func labelNames(f *dto.MetricFamily) []string {
	seen := map[string]bool{}
	var out []string
	for _, m := range f.GetMetric() {
		for _, l := range m.GetLabel() {
			if !seen[l.GetName()] {
				seen[l.GetName()] = true
				out = append(out, l.GetName())
			}
		}
	}
	return out
}
