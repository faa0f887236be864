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
}
