package relay_test

import (
	"bytes"
	"image"
	"image/png"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"notifyrelay/app"
	"notifyrelay/app/apptest"
	"notifyrelay/config"
)

// Addresses of the seed's examples.
const (
	alice = "tel:+19585550100" // the changer
	bob   = "tel:+19585550101"
	carol = "tel:+19585550103"
)

func esc(user string) string {
	return strings.NewReplacer(":", "%3A", "+", "%2B").Replace(user)
}

// chatServer is an in-process notifyrelay with base_path /exampleAPI (as in the
// seed), webhooks to 127.0.0.1 allowed, fast retries, and a webhook receiver.
type chatServer struct {
	t    *testing.T
	cfg  config.Config
	app  *app.App
	base string // {public_url}/exampleAPI/chat/v1/
	hook *receiver
}

func startChat(t *testing.T, mod func(*config.Config)) *chatServer {
	cfg := apptest.Config(t)
	cfg.BasePath = "/exampleAPI"
	cfg.Delivery.AllowPrivateTargets = true
	cfg.Delivery.Backoff.Initial = config.Duration(20 * time.Millisecond)
	cfg.Delivery.Backoff.Max = config.Duration(50 * time.Millisecond)
	if mod != nil {
		mod(&cfg)
	}
	s := &chatServer{t: t, cfg: cfg, hook: newReceiver(t)}
	s.start()
	return s
}

func (s *chatServer) start() {
	s.app = apptest.StartConfig(s.t, s.cfg)
	s.base = apptest.URL(s.app) + "/exampleAPI/chat/v1/"
}

// restart stops the app and starts it again on the same data directory.
func (s *chatServer) restart() {
	if err := s.app.Stop(); err != nil {
		s.t.Fatal(err)
	}
	s.start()
}

// metrics returns the text of /metrics.
func (s *chatServer) metrics() string {
	resp, err := http.Get(apptest.URL(s.app) + "/metrics")
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// do sends a request as user (path below …/chat/v1/) and returns status, headers
// and body.
func (s *chatServer) do(method, path, ct string, body []byte, hdr ...string) (int, http.Header, []byte) {
	s.t.Helper()
	req, err := http.NewRequest(method, s.base+path, bytes.NewReader(body))
	if err != nil {
		s.t.Fatal(err)
	}
	if ct != "" {
		req.Header.Set("Content-Type", ct)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, b
}

// must is do that expects status want.
func (s *chatServer) must(want int, method, path, ct, body string, hdr ...string) (http.Header, string) {
	s.t.Helper()
	st, h, b := s.do(method, path, ct, []byte(body), hdr...)
	if st != want {
		s.t.Fatalf("%s %s: status %d, want %d: %s", method, path, st, want, b)
	}
	return h, string(b)
}

var sessionIDRe = regexp.MustCompile(`/group/([0-9a-f]+)"`)

// group creates a session of alice with bob and carol and returns its id.
func (s *chatServer) group() string {
	_, b := s.must(201, "POST", esc(alice)+"/group", "application/json",
		`{"groupChatSessionInformation":{"subject":"Trip","participant":[{"address":"`+bob+`","name":"Bob"},{"address":"`+carol+`"}]}}`)
	m := sessionIDRe.FindStringSubmatch(b)
	if m == nil {
		s.t.Fatalf("no session id in %s", b)
	}
	return m[1]
}

// subscribe subscribes user with a webhook at the receiver's path /user-tag.
func (s *chatServer) subscribe(user, tag, format string) string {
	url := s.hook.url + "/" + tag
	_, b := s.must(201, "POST", esc(user)+"/subscriptions", "application/json",
		`{"chatNotificationSubscription":{"callbackReference":{"notifyURL":"`+url+`","callbackData":"`+tag+`","notificationFormat":"`+format+`"}}}`)
	return b
}

// notification is one POST the receiver got.
type notification struct {
	ContentType string
	Body        string
}

// receiver is a webhook endpoint on 127.0.0.1 that records notifications by path
// and answers with the status set for the path (204 by default).
type receiver struct {
	t      testing.TB
	url    string
	mu     sync.Mutex
	got    map[string][]notification
	status map[string]int
}

func newReceiver(t testing.TB) *receiver {
	r := &receiver{t: t, got: map[string][]notification{}, status: map[string]int{}}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		b, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		st := r.status[req.URL.Path]
		if st == 0 {
			st = 204
			r.got[req.URL.Path] = append(r.got[req.URL.Path], notification{req.Header.Get("Content-Type"), string(b)})
		}
		r.mu.Unlock()
		w.WriteHeader(st)
	}))
	t.Cleanup(srv.Close)
	r.url = srv.URL
	return r
}

func (r *receiver) setStatus(path string, status int) {
	r.mu.Lock()
	r.status[path] = status
	r.mu.Unlock()
}

// wait polls until path has received n notifications (deadline 10s) and returns them.
func (r *receiver) wait(path string, n int) []notification {
	r.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		r.mu.Lock()
		got := append([]notification(nil), r.got[path]...)
		r.mu.Unlock()
		if len(got) >= n {
			return got
		}
		if time.Now().After(deadline) {
			r.t.Fatalf("%s: %d notifications after 10s, want %d: %v", path, len(got), n, got)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func (r *receiver) count(path string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.got[path])
}

// seedRequest reads a seed request example: method, path, headers and body, byte
// for byte as the seed prints them.
func seedRequest(t *testing.T, name string) (method, path string, hdr []string, body []byte) {
	data, err := os.ReadFile(filepath.Join("..", "oma", "testdata", "seed", name))
	if err != nil {
		t.Fatal(err)
	}
	head, body, _ := bytes.Cut(data, []byte("\n\n"))
	lines := strings.Split(string(head), "\n")
	f := strings.Fields(lines[0])
	for _, l := range lines[1:] {
		k, v, _ := strings.Cut(l, ":")
		if k = strings.TrimSpace(k); k != "Host" && k != "Content-Length" {
			hdr = append(hdr, k, strings.TrimSpace(v))
		}
	}
	return f[0], f[1], hdr, body
}

// pngBytes is a real 1×1 PNG.
func pngBytes(t *testing.T) []byte {
	var b bytes.Buffer
	if err := png.Encode(&b, image.NewGray(image.Rect(0, 0, 1, 1))); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}
