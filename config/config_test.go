package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestExampleConfigDocumentsEveryKeyWithDefaults(t *testing.T) {
	path := filepath.Join("..", "configs", "notifyrelay.yaml")
	cfg, err := Load(path, nil, nil)
	if err != nil {
		t.Fatalf("example config does not load: %v", err)
	}
	def := Default()
	if cfg.Listen != def.Listen || cfg.Delivery.Timeout != def.Delivery.Timeout || cfg.Limits.MaxBody != def.Limits.MaxBody ||
		cfg.Channels.PollTimeout != def.Channels.PollTimeout || cfg.Chat.StatusNotification != def.Chat.StatusNotification {
		t.Errorf("example config values differ from Default(): %+v", cfg)
	}
	text, _ := os.ReadFile(path)
	for _, key := range Keys() {
		leaf := key[strings.LastIndex(key, ".")+1:]
		if !strings.Contains(string(text), "\n"+strings.Repeat(" ", 2*strings.Count(key, "."))+leaf+":") {
			t.Errorf("configs/notifyrelay.yaml does not document key %s", key)
		}
	}
}

func TestPrecedenceFileEnvFlag(t *testing.T) {
	path := writeFile(t, "listen: 127.0.0.1:9000\ndelivery:\n  timeout: 3s\n  max_attempts: 4\n")
	env := []string{"NOTIFYRELAY_DELIVERY_TIMEOUT=5s", "NOTIFYRELAY_LISTEN=127.0.0.1:9001", "OTHER=x",
		"NOTIFYRELAY_CHANNELS_ALLOWED_ORIGINS=[https://a.example, https://b.example]",
		"NOTIFYRELAY_AUTH_TOKENS=[{token: operator-token-1, operator: true}]",
		"NOTIFYRELAY_QUEUE_ENGINE=jetstream", "NOTIFYRELAY_QUEUE_JETSTREAM_URLS=nats://a:4222, nats://b:4222"}
	cfg, err := Load(path, env, map[string]string{"listen": "127.0.0.1:9002"})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Listen != "127.0.0.1:9002" || cfg.Delivery.Timeout.D() != 5*time.Second || cfg.Delivery.MaxAttempts != 4 {
		t.Errorf("precedence wrong: listen=%s timeout=%v attempts=%d", cfg.Listen, cfg.Delivery.Timeout.D(), cfg.Delivery.MaxAttempts)
	}
	if q := cfg.Queue; q.Engine != "jetstream" || len(q.JetStream.URLs) != 2 || q.JetStream.URLs[1] != "nats://b:4222" {
		t.Errorf("queue from env: %+v", q)
	}
	if len(cfg.Channels.AllowedOrigins) != 2 || len(cfg.Auth.Tokens) != 1 || !cfg.Auth.Tokens[0].Operator {
		t.Errorf("lists from env: origins=%v tokens=%+v", cfg.Channels.AllowedOrigins, cfg.Auth.Tokens)
	}
}

func TestBadInputNamesTheKey(t *testing.T) {
	cases := []struct {
		file, env, want string
	}{
		{file: "listne: x\n", want: "listne"},
		{file: "delivery:\n  timeout: soon\n", want: "delivery.timeout"},
		{file: "delivery:\n  timeoutt: 1s\n", want: "delivery.timeoutt: no such key"},
		{file: "delivery:\n  backoff:\n    initail: 1s\n", want: "delivery.backoff.initail"},
		{file: "listen: [a, b]\n", want: "listen: must be a single value"},
		{file: "delivery: 5\n", want: "delivery must be a mapping"},
		{file: "auth:\n  tokens: [{token: longenough, usr: a}]\n", want: "usr"},
		{file: "delivery:\n  timeout: -1s\n", want: "delivery.timeout"},
		{file: "chat:\n  status_notification: later\n", want: "chat.status_notification"},
		{file: "limits:\n  max_body: lots\n", want: "limits.max_body"},
		{file: "delivery:\n  signing_secret: \"not base64!\"\n", want: "delivery.signing_secret"},
		{file: "delivery:\n  previous_signing_secrets: [c2VjcmV0]\n", want: "delivery.previous_signing_secrets: needs delivery.signing_secret"},
		{file: "delivery:\n  signing_secret: c2VjcmV0\n  previous_signing_secrets: [c2VjcmV0, \"not base64!\"]\n", want: "delivery.previous_signing_secrets[1]"},
		{file: "auth:\n  tokens: [{token: short, user: a}]\n", want: "auth.tokens[0].token"},
		{file: "auth:\n  tokens: [{token: longenough, user: a, operator: true}]\n", want: "auth.tokens[0]"},
		{file: "base_path: exampleAPI\n", want: "base_path"},
		{file: "public_url: ftp://x\n", want: "public_url"},
		{env: "NOTIFYRELAY_NO_SUCH=1", want: "NOTIFYRELAY_NO_SUCH"},
		{file: "queue:\n  engine: postgres\n", want: "queue.engine"},
		{file: "queue:\n  jetstream:\n    urls: []\n", want: "queue.jetstream.urls"},
		{env: "NOTIFYRELAY_QUEUE_JETSTREAM_URLS=://nohost", want: "queue.jetstream.urls"},
		{file: "queue:\n  jetstream:\n    replicas: 0\n", want: "queue.jetstream.replicas"},
		{env: "NOTIFYRELAY_QUEUE_JETSTREAM_PREFIX=a.b", want: "queue.jetstream.prefix"},
		{env: "NOTIFYRELAY_DELIVERY_MAX_ATTEMPTS=many", want: "NOTIFYRELAY_DELIVERY_MAX_ATTEMPTS"},
	}
	for _, c := range cases {
		path := ""
		if c.file != "" {
			path = writeFile(t, c.file)
		}
		var env []string
		if c.env != "" {
			env = []string{c.env}
		}
		_, err := Load(path, env, nil)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("file %q env %q: error %v, want it to name %q", c.file, c.env, err, c.want)
		}
	}
}

func TestSigningKeyForms(t *testing.T) {
	for _, s := range []string{"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"} {
		key, err := SigningKey(s)
		if err != nil || len(key) != 24 {
			t.Errorf("SigningKey(%q) = %d bytes, %v", s, len(key), err)
		}
	}
}

func TestLoopbackAndPublic(t *testing.T) {
	c := Default()
	if !c.ListenIsLoopback() || c.Public() != "http://127.0.0.1:8080" {
		t.Errorf("defaults: loopback=%v public=%s", c.ListenIsLoopback(), c.Public())
	}
	c.Listen = "0.0.0.0:8080"
	c.PublicURL = "https://relay.example/"
	if c.ListenIsLoopback() || c.Public() != "https://relay.example" {
		t.Errorf("0.0.0.0: loopback=%v public=%s", c.ListenIsLoopback(), c.Public())
	}
}

func writeFile(t *testing.T, text string) string {
	path := filepath.Join(t.TempDir(), "c.yaml")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}
