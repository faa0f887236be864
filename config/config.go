// Package config holds notifyrelay's configuration: one struct, its defaults in one
// place (Default), and loading from a YAML file, NOTIFYRELAY_* environment variables
// and flags, in that order of precedence.
package config

import (
	"fmt"
	"net"
	"net/url"
	"regexp"
	"strings"
	"time"
)

// Config is the whole configuration. The yaml tags are the keys of
// configs/notifyrelay.yaml and, upper-cased with "." → "_", of NOTIFYRELAY_* variables.
type Config struct {
	Listen          string   `yaml:"listen"`
	PublicURL       string   `yaml:"public_url"`
	BasePath        string   `yaml:"base_path"`
	DataDir         string   `yaml:"data_dir"`
	AdminListen     string   `yaml:"admin_listen"`
	Insecure        bool     `yaml:"insecure"`
	LogLevel        string   `yaml:"log_level"`
	ShutdownTimeout Duration `yaml:"shutdown_timeout"`
	Auth            Auth     `yaml:"auth"`
	Delivery        Delivery `yaml:"delivery"`
	Chat            Chat     `yaml:"chat"`
	Channels        Channels `yaml:"channels"`
	Limits          Limits   `yaml:"limits"`
	Queue           Queue    `yaml:"queue"`
}

// Queue tunes the durable queue.
type Queue struct {
	// CheckpointInterval is how often acknowledgements are written: after a crash,
	// what was acknowledged within the last interval is delivered again.
	CheckpointInterval Duration `yaml:"checkpoint_interval"`
	// ValueLogFileSize and MemTableSize size the storage's files; the queue keeps
	// free about 2 × (2 × value_log_file_size + 3 × memtable_size) on the data
	// directory's filesystem (docs/api.md §8 "Disk full").
	ValueLogFileSize Size `yaml:"value_log_file_size"`
	MemTableSize     Size `yaml:"memtable_size"`
	// Engine is where the queue is stored: badger (data_dir) or jetstream (a NATS
	// JetStream cluster, docs/scale-out.md).
	Engine    string    `yaml:"engine"`
	JetStream JetStream `yaml:"jetstream"`
}

// JetStream locates the queue's stream when queue.engine is jetstream.
type JetStream struct {
	URLs     []string `yaml:"urls"`     // NATS servers
	Replicas int      `yaml:"replicas"` // copies of the stream: 1 for one server, 3 for a cluster
	Prefix   string   `yaml:"prefix"`   // names this deployment's stream and subjects
	// LockTTL: how long the prefix's lock outlives its holder's last renewal, the
	// longest a standby waits to take over from a dead active node.
	LockTTL Duration `yaml:"lock_ttl"`
	// Advertise: host:port where other nodes reach this node's listener (a standby
	// forwards to the active node there). Empty: the bound address, or the host
	// name with the bound port when listening on all interfaces.
	Advertise string `yaml:"advertise"`
	// MaxBatchMsgs: keys one commit may write, at most the NATS servers' jetstream
	// limits.batch.max_msgs (default 1000 there too).
	MaxBatchMsgs int `yaml:"max_batch_msgs"`
}

// Auth lists the bearer tokens. No tokens: authentication is off.
type Auth struct {
	Tokens []Token `yaml:"tokens"`
}

// Token is one bearer token: it acts as User, or as any user when Operator is set.
type Token struct {
	Token    string `yaml:"token"`
	User     string `yaml:"user"`
	Operator bool   `yaml:"operator"`
}

// Delivery configures webhook delivery.
type Delivery struct {
	AllowPrivateTargets bool     `yaml:"allow_private_targets"`
	Timeout             Duration `yaml:"timeout"`
	Backoff             Backoff  `yaml:"backoff"`
	MaxAttempts         int      `yaml:"max_attempts"` // 0: no limit
	MaxAge              Duration `yaml:"max_age"`
	RetryAfterMax       Duration `yaml:"retry_after_max"` // longest receiver Retry-After honoured
	SigningSecret       string   `yaml:"signing_secret"`
	// PreviousSigningSecrets still sign, after signing_secret, while receivers
	// move to the new one (rotation without a window of failed verifications).
	PreviousSigningSecrets []string `yaml:"previous_signing_secrets"`
	Workers                int      `yaml:"workers"` // destinations delivered in parallel
	MaxConnsPerHost        int      `yaml:"max_conns_per_host"`
	RecordRetention        Duration `yaml:"record_retention"` // how long GET /deliveries/{id} answers after the end
	// IdempotencyWindow is how long an Idempotency-Key on POST /relay/v1/deliveries
	// keeps its first answer. 0: the header is ignored.
	IdempotencyWindow Duration  `yaml:"idempotency_window"`
	Breaker           Breaker   `yaml:"breaker"`
	RateLimit         RateLimit `yaml:"rate_limit"`
	// RetainDelivered keeps delivered notifications this long so that they can be
	// delivered again (replay by range). 0: off.
	RetainDelivered Duration `yaml:"retain_delivered"`
}

// Breaker pauses a destination that keeps failing (docs/delivery.md).
type Breaker struct {
	Failures      int      `yaml:"failures"`       // consecutive failed attempts that open it; 0: never by count
	For           Duration `yaml:"for"`            // failing this long opens it; 0: never by time
	ProbeInterval Duration `yaml:"probe_interval"` // while open, one attempt per interval
	OperatorURL   string   `yaml:"operator_url"`   // receives pause/resume events; "" none
}

// RateLimit paces a destination's deliveries: Rate per second with bursts of
// Burst. Rate 0: unlimited.
type RateLimit struct {
	Rate  float64 `yaml:"rate"`
	Burst int     `yaml:"burst"`
}

// Backoff is exponential backoff with full jitter between attempts.
type Backoff struct {
	Initial Duration `yaml:"initial"`
	Max     Duration `yaml:"max"`
}

// Chat configures the chat API.
type Chat struct {
	StatusNotification string `yaml:"status_notification"` // "delivered" or "applied"
	MaxDuration        int    `yaml:"max_duration"`        // subscription seconds, cap
}

// Channels configures notification channels.
type Channels struct {
	DefaultLifetime int      `yaml:"default_lifetime"` // seconds
	MaxLifetime     int      `yaml:"max_lifetime"`     // seconds
	PollTimeout     Duration `yaml:"poll_timeout"`
	AllowedOrigins  []string `yaml:"allowed_origins"`
	Window          int      `yaml:"window"`           // default unacknowledged notifications in acknowledged mode
	MaxWindow       int      `yaml:"max_window"`       // cap on ?window=
	SendBuffer      int      `yaml:"send_buffer"`      // frames queued per WebSocket before it counts as slow
	WriteTimeout    Duration `yaml:"write_timeout"`    // a WebSocket write that takes longer: the client is slow
	MaxAnswerBytes  Size     `yaml:"max_answer_bytes"` // notification bytes in one long-poll answer (at least one notification)
}

// Limits bounds what one client may make the server hold. Counts are per user;
// 0 turns a count limit off.
type Limits struct {
	MaxBody                 Size `yaml:"max_body"`
	MaxInflightBody         Size `yaml:"max_inflight_body"` // request bodies in memory at once, all requests together
	MaxConnsPerIP           int  `yaml:"max_conns_per_ip"`
	MaxGroupsPerUser        int  `yaml:"max_groups_per_user"`
	MaxParticipants         int  `yaml:"max_participants"` // per group
	MaxChannelsPerUser      int  `yaml:"max_channels_per_user"`
	MaxSubscriptionsPerUser int  `yaml:"max_subscriptions_per_user"`
}

// Default returns the configuration with every default filled in. It is the only
// place defaults live.
func Default() Config {
	return Config{
		Listen:          "127.0.0.1:8080",
		DataDir:         "./data",
		LogLevel:        "info",
		ShutdownTimeout: Duration(10 * time.Second),
		Delivery: Delivery{
			Timeout:           Duration(10 * time.Second),
			Backoff:           Backoff{Initial: Duration(time.Second), Max: Duration(10 * time.Minute)},
			MaxAge:            Duration(24 * time.Hour),
			RetryAfterMax:     Duration(time.Hour),
			Workers:           256,
			MaxConnsPerHost:   64,
			RecordRetention:   Duration(7 * 24 * time.Hour),
			IdempotencyWindow: Duration(24 * time.Hour),
			Breaker:           Breaker{Failures: 50, For: Duration(time.Hour), ProbeInterval: Duration(time.Minute)},
			RateLimit:         RateLimit{Rate: 0, Burst: 1},
		},
		Chat:     Chat{StatusNotification: "delivered", MaxDuration: 86400},
		Channels: Channels{DefaultLifetime: 7200, MaxLifetime: 86400, PollTimeout: Duration(30 * time.Second), Window: 256, MaxWindow: 4096, SendBuffer: 256, WriteTimeout: Duration(10 * time.Second), MaxAnswerBytes: Size(1 << 20)},
		Limits: Limits{MaxBody: Size(1 << 20), MaxInflightBody: Size(64 << 20), MaxConnsPerIP: 1000,
			MaxGroupsPerUser: 1000, MaxParticipants: 1000, MaxChannelsPerUser: 1000, MaxSubscriptionsPerUser: 1000},
		Queue: Queue{CheckpointInterval: Duration(100 * time.Millisecond),
			ValueLogFileSize: Size(16 << 20), MemTableSize: Size(8 << 20), Engine: "badger",
			JetStream: JetStream{URLs: []string{"nats://127.0.0.1:4222"}, Replicas: 1, Prefix: "notifyrelay",
				LockTTL: Duration(10 * time.Second), MaxBatchMsgs: 1000}},
	}
}

// Validate checks every value and names the key of the first bad one.
func (c *Config) Validate() error {
	checks := []func() error{
		func() error { return checkHostPort("listen", c.Listen, false) },
		func() error { return checkHostPort("admin_listen", c.AdminListen, true) },
		c.checkPublicURL,
		c.checkBasePath,
		func() error { return nonEmpty("data_dir", c.DataDir) },
		func() error { return oneOf("log_level", c.LogLevel, "debug", "info", "warn", "error") },
		func() error { return positive("shutdown_timeout", time.Duration(c.ShutdownTimeout)) },
		c.checkAuth,
		c.checkDelivery,
		func() error {
			return oneOf("chat.status_notification", c.Chat.StatusNotification, "delivered", "applied")
		},
		func() error { return atLeast("chat.max_duration", c.Chat.MaxDuration, 1) },
		c.checkChannels,
		c.checkLimits,
		func() error {
			return positive("queue.checkpoint_interval", c.Queue.CheckpointInterval.D())
		},
		func() error { return atLeast("queue.value_log_file_size", int(c.Queue.ValueLogFileSize), 1<<20) },
		func() error { return atLeast("queue.memtable_size", int(c.Queue.MemTableSize), 1<<20) },
		c.checkJetStream,
	}
	for _, check := range checks {
		if err := check(); err != nil {
			return err
		}
	}
	return nil
}

// AuthOff reports whether every request may act for any user.
func (c Config) AuthOff() bool { return len(c.Auth.Tokens) == 0 }

// ListenIsLoopback reports whether the public listener only accepts local peers.
func (c Config) ListenIsLoopback() bool {
	host, _, err := net.SplitHostPort(c.Listen)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Public returns the public base URL: public_url, or http://<listen> when unset.
func (c Config) Public() string {
	if c.PublicURL != "" {
		return strings.TrimRight(c.PublicURL, "/")
	}
	return "http://" + c.Listen
}

func httpURL(s string) bool {
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != ""
}

func (c *Config) checkPublicURL() error {
	if c.PublicURL == "" {
		return nil
	}
	u, err := url.Parse(c.PublicURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("public_url: %q is not an absolute http(s) URL", c.PublicURL)
	}
	return nil
}

func (c *Config) checkBasePath() error {
	if c.BasePath == "" {
		return nil
	}
	if !strings.HasPrefix(c.BasePath, "/") || strings.HasSuffix(c.BasePath, "/") {
		return fmt.Errorf("base_path: %q must start with / and not end with /", c.BasePath)
	}
	return nil
}

func (c *Config) checkAuth() error {
	seen := map[string]bool{}
	for i, t := range c.Auth.Tokens {
		key := fmt.Sprintf("auth.tokens[%d]", i)
		switch {
		case len(t.Token) < 8:
			return fmt.Errorf("%s.token: must be at least 8 characters", key)
		case seen[t.Token]:
			return fmt.Errorf("%s.token: duplicate token", key)
		case t.Operator == (t.User != ""):
			return fmt.Errorf("%s: give exactly one of user or operator: true", key)
		}
		seen[t.Token] = true
	}
	return nil
}

func (c *Config) checkDelivery() error {
	d := c.Delivery
	switch {
	case d.Timeout <= 0:
		return fmt.Errorf("delivery.timeout: must be positive")
	case d.Backoff.Initial <= 0:
		return fmt.Errorf("delivery.backoff.initial: must be positive")
	case d.Backoff.Max < d.Backoff.Initial:
		return fmt.Errorf("delivery.backoff.max: must be at least delivery.backoff.initial")
	case d.MaxAttempts < 0:
		return fmt.Errorf("delivery.max_attempts: must be 0 (no limit) or positive")
	case d.MaxAge < 0:
		return fmt.Errorf("delivery.max_age: must be 0 (no limit) or positive")
	case d.RetryAfterMax < 0:
		return fmt.Errorf("delivery.retry_after_max: must be 0 or positive")
	case d.Workers < 1:
		return fmt.Errorf("delivery.workers: must be positive")
	case d.MaxConnsPerHost < 1:
		return fmt.Errorf("delivery.max_conns_per_host: must be positive")
	case d.RecordRetention <= 0:
		return fmt.Errorf("delivery.record_retention: must be positive")
	case d.IdempotencyWindow < 0:
		return fmt.Errorf("delivery.idempotency_window: must be 0 (off) or positive")
	case d.RetainDelivered < 0:
		return fmt.Errorf("delivery.retain_delivered: must be 0 (off) or positive")
	}
	return d.checkPacing()
}

func (d Delivery) checkPacing() error {
	switch {
	case d.Breaker.Failures < 0:
		return fmt.Errorf("delivery.breaker.failures: must be 0 (off) or positive")
	case d.Breaker.For < 0:
		return fmt.Errorf("delivery.breaker.for: must be 0 (off) or positive")
	case d.Breaker.ProbeInterval <= 0:
		return fmt.Errorf("delivery.breaker.probe_interval: must be positive")
	case d.Breaker.OperatorURL != "" && !httpURL(d.Breaker.OperatorURL):
		return fmt.Errorf("delivery.breaker.operator_url: %q is not an absolute http(s) URL", d.Breaker.OperatorURL)
	case d.RateLimit.Rate < 0:
		return fmt.Errorf("delivery.rate_limit.rate: must be 0 (unlimited) or positive")
	case d.RateLimit.Burst < 1:
		return fmt.Errorf("delivery.rate_limit.burst: must be at least 1")
	}
	_, err := SigningKeys(d.SigningSecret, d.PreviousSigningSecrets)
	return err
}

func (c *Config) checkChannels() error {
	ch := c.Channels
	switch {
	case ch.DefaultLifetime < 1:
		return fmt.Errorf("channels.default_lifetime: must be positive")
	case ch.MaxLifetime < ch.DefaultLifetime:
		return fmt.Errorf("channels.max_lifetime: must be at least channels.default_lifetime")
	case ch.PollTimeout <= 0:
		return fmt.Errorf("channels.poll_timeout: must be positive")
	case ch.Window < 1 || ch.Window > ch.MaxWindow:
		return fmt.Errorf("channels.window: must be between 1 and channels.max_window")
	case ch.SendBuffer < 1:
		return fmt.Errorf("channels.send_buffer: must be positive")
	case ch.WriteTimeout <= 0:
		return fmt.Errorf("channels.write_timeout: must be positive")
	case ch.MaxAnswerBytes < 1:
		return fmt.Errorf("channels.max_answer_bytes: must be positive")
	}
	return nil
}

func (c *Config) checkLimits() error {
	l := c.Limits
	if err := atLeast("limits.max_body", int(l.MaxBody), 1024); err != nil {
		return err
	}
	if l.MaxInflightBody < l.MaxBody {
		return fmt.Errorf("limits.max_inflight_body: must be at least limits.max_body")
	}
	counts := []struct {
		key string
		v   int
	}{{"limits.max_conns_per_ip", l.MaxConnsPerIP}, {"limits.max_groups_per_user", l.MaxGroupsPerUser},
		{"limits.max_participants", l.MaxParticipants}, {"limits.max_channels_per_user", l.MaxChannelsPerUser},
		{"limits.max_subscriptions_per_user", l.MaxSubscriptionsPerUser}}
	for _, k := range counts {
		if err := atLeast(k.key, k.v, 0); err != nil {
			return err
		}
	}
	return nil
}

// jetStreamPrefix is what can name a NATS stream and a subject token.
var jetStreamPrefix = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

func (c *Config) checkJetStream() error {
	if err := oneOf("queue.engine", c.Queue.Engine, "badger", "jetstream"); err != nil {
		return err
	}
	j := c.Queue.JetStream
	if len(j.URLs) == 0 {
		return fmt.Errorf("queue.jetstream.urls: must list at least one NATS server")
	}
	for _, s := range j.URLs {
		if u, err := url.Parse(s); err != nil || u.Host == "" {
			return fmt.Errorf("queue.jetstream.urls: %q is not a URL like nats://host:4222", s)
		}
	}
	if j.Replicas < 1 || j.Replicas > 5 {
		return fmt.Errorf("queue.jetstream.replicas: %d is not between 1 and 5", j.Replicas)
	}
	if !jetStreamPrefix.MatchString(j.Prefix) {
		return fmt.Errorf("queue.jetstream.prefix: %q must be 1 to 64 letters, digits, - or _", j.Prefix)
	}
	if j.LockTTL.D() < time.Second {
		return fmt.Errorf("queue.jetstream.lock_ttl: %v is below 1s", j.LockTTL.D())
	}
	if j.MaxBatchMsgs < 100 || j.MaxBatchMsgs > 100000 {
		return fmt.Errorf("queue.jetstream.max_batch_msgs: %d is not between 100 and 100000", j.MaxBatchMsgs)
	}
	return checkHostPort("queue.jetstream.advertise", j.Advertise, true)
}
