package relay_test

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"notifyrelay/app/apptest"
)

// A producer's W3C traceparent reaches the webhook receiver unchanged; a request
// without one, or with a malformed one, sends none.
func TestTraceparentPassedToReceiver(t *testing.T) {
	got := make(chan string, 3)
	rcv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got <- r.Header.Get("traceparent")
		w.WriteHeader(204)
	}))
	t.Cleanup(rcv.Close)
	a := whStart(t, nil)
	const tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	for _, c := range []struct{ sent, want string }{{tp, tp}, {"", ""}, {"00-nothex-00f067aa0ba902b7-01", ""}} {
		req, _ := http.NewRequest("POST", apptest.URL(a)+"/relay/v1/deliveries?notifyURL="+url.QueryEscape(rcv.URL+"/h"), strings.NewReader("{}"))
		req.Header.Set("Authorization", "Bearer "+whOperator)
		req.Header.Set("Content-Type", "application/json")
		if c.sent != "" {
			req.Header.Set("traceparent", c.sent)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil || resp.StatusCode != 202 {
			t.Fatalf("post: %v %v", err, resp)
		}
		resp.Body.Close()
		if h := <-got; h != c.want {
			t.Errorf("sent %q: receiver got traceparent %q, want %q", c.sent, h, c.want)
		}
	}
}
