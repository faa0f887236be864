package app_test

import (
	"encoding/hex"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"

	coltrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/protobuf/proto"

	"notifyrelay/app/apptest"
)

// span is what the test keeps of an exported span.
type span struct{ name, trace, id, parent string }

// collector is an OTLP/HTTP trace endpoint on 127.0.0.1 that keeps the spans.
type collector struct {
	mu    sync.Mutex
	spans []span
}

func (c *collector) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	var req coltrace.ExportTraceServiceRequest
	if err := proto.Unmarshal(b, &req); err != nil {
		http.Error(w, err.Error(), 400)
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, rs := range req.ResourceSpans {
		for _, ss := range rs.ScopeSpans {
			for _, s := range ss.Spans {
				c.spans = append(c.spans, span{s.Name, hex.EncodeToString(s.TraceId), hex.EncodeToString(s.SpanId), hex.EncodeToString(s.ParentSpanId)})
			}
		}
	}
	w.Header().Set("Content-Type", "application/x-protobuf")
}

func (c *collector) named(name string) (span, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, s := range c.spans {
		if s.name == name {
			return s, true
		}
	}
	return span{}, false
}

// With an OTLP endpoint in the standard OTEL_* variables, one notification's trace
// goes from the producer's span through the server's accept span to the delivery
// attempt's span, and the receiver's traceparent names that attempt.
func TestTraceFromProducerToReceiver(t *testing.T) {
	col := &collector{}
	cs := httptest.NewServer(col)
	defer cs.Close()
	got := make(chan string, 1)
	rcv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got <- r.Header.Get("traceparent")
		w.WriteHeader(204)
	}))
	defer rcv.Close()
	p := apptest.StartProcess(t, apptest.ProcOptions{DataDir: t.TempDir(), Env: []string{
		"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT=" + cs.URL + "/v1/traces", "OTEL_BSP_SCHEDULE_DELAY=100",
		"NOTIFYRELAY_DELIVERY_ALLOW_PRIVATE_TARGETS=true"}})
	const trace, producer = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
	req, _ := http.NewRequest("POST", p.URL+"/relay/v1/deliveries?notifyURL="+url.QueryEscape(rcv.URL+"/h"), strings.NewReader("{}"))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("traceparent", "00-"+trace+"-"+producer+"-01")
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 202 {
		t.Fatalf("post: %v %v", err, resp)
	}
	resp.Body.Close()
	tp := strings.Split(<-got, "-")
	if len(tp) != 4 || tp[1] != trace || tp[2] == producer {
		t.Fatalf("the receiver's traceparent %v does not continue trace %s under a span of ours", tp, trace)
	}
	var accept, deliver span
	waitFor(t, "the accept and deliver spans at the collector", func() bool {
		var ok1, ok2 bool
		accept, ok1 = col.named("notifyrelay.accept")
		deliver, ok2 = col.named("notifyrelay.deliver")
		return ok1 && ok2
	})
	if accept.trace != trace || accept.parent != producer {
		t.Errorf("accept span %+v: want trace %s, parent the producer's span %s", accept, trace, producer)
	}
	if deliver.trace != trace || deliver.parent != accept.id || deliver.id != tp[2] {
		t.Errorf("deliver span %+v: want parent %s (accept) and id %s (the receiver's parent)", deliver, accept.id, tp[2])
	}
	waitFor(t, "the commit span", func() bool { return len(col.inTrace(trace, "notifyrelay.commit")) == 1 })
	if commit := col.inTrace(trace, "notifyrelay.commit")[0]; commit.parent != accept.id {
		t.Errorf("commit span %+v: want parent %s (accept)", commit, accept.id)
	}
}

// inTrace returns the spans of trace named name.
func (c *collector) inTrace(trace, name string) []span {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []span
	for _, s := range c.spans {
		if s.trace == trace && s.name == name {
			out = append(out, s)
		}
	}
	return out
}

// A chat change and a POST to a callbackURL each begin an accept span under the
// producer's traceparent, and the notification they queue for a channel ends its
// trace with a deliver span once the long poll that carried it was received.
func TestTraceThroughChatAndChannel(t *testing.T) {
	col := &collector{}
	cs := httptest.NewServer(col)
	defer cs.Close()
	p := apptest.StartProcess(t, apptest.ProcOptions{DataDir: t.TempDir(), Env: []string{
		"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT=" + cs.URL + "/v1/traces", "OTEL_BSP_SCHEDULE_DELAY=100"}})
	alice, bob := "tel%3A%2B1", "tel%3A%2B2"
	poll, callback := pollChannel(t, p.URL)
	postExpect(t, p.URL+"/chat/v1/"+bob+"/subscriptions", 201,
		`{"chatNotificationSubscription":{"callbackReference":{"notifyURL":"`+callback+`"}}}`)
	loc := postExpect(t, p.URL+"/chat/v1/"+alice+"/group", 201,
		`{"groupChatSessionInformation":{"subject":"s0","participant":[{"address":"tel:+2"}]}}`)
	const chatTrace, callbackTrace, producer = "4bf92f3577b34da6a3ce929d0e0e4736", "5bf92f3577b34da6a3ce929d0e0e4737", "00f067aa0ba902b7"
	postTraced(t, callback, callbackTrace, producer, `{"chatEventNotification":{"n":1}}`)
	postTraced(t, loc+"/messages", chatTrace, producer, `{"chatSessionData":{"subject":"traced"}}`)
	if got := pollOnce(t, poll); !strings.Contains(got, `"n":1`) || !strings.Contains(got, "traced") {
		t.Fatalf("the poll answered %s, want both notifications", got)
	}
	for _, trace := range []string{chatTrace, callbackTrace} {
		var accept, commit, deliver []span
		waitFor(t, "the accept, commit and deliver spans of trace "+trace, func() bool {
			accept, deliver = col.inTrace(trace, "notifyrelay.accept"), col.inTrace(trace, "notifyrelay.deliver")
			commit = col.inTrace(trace, "notifyrelay.commit")
			return len(accept) == 1 && len(deliver) == 1 && len(commit) == 1
		})
		if accept[0].parent != producer || deliver[0].parent != accept[0].id || commit[0].parent != accept[0].id {
			t.Errorf("trace %s: accept %+v (want parent %s), commit %+v and deliver %+v (want parent the accept span)",
				trace, accept[0], producer, commit[0], deliver[0])
		}
	}
}

func postTraced(t *testing.T, u, trace, parent, body string) {
	t.Helper()
	req, _ := http.NewRequest("POST", u, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("traceparent", "00-"+trace+"-"+parent+"-01")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("POST %s: %d %s", u, resp.StatusCode, b)
	}
}

func pollOnce(t *testing.T, u string) string {
	t.Helper()
	req, _ := http.NewRequest("POST", u, nil)
	req.Header.Set("Accept", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}
