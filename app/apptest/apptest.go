// Package apptest starts notifyrelay for tests: in process (Start) or as the real
// binary in a child process (StartProcess) that a crash test can SIGKILL. Both
// listen on 127.0.0.1:0 and are stopped by t.Cleanup.
package apptest

import (
	"context"
	"os"
	"sync"
	"testing"

	"github.com/rs/zerolog"

	"notifyrelay/app"
	"notifyrelay/config"
	"notifyrelay/queue/natstest"
)

// Config returns the defaults for a test server: 127.0.0.1:0, a fresh data dir,
// warn-level logs into the test log.
func Config(t testing.TB) config.Config {
	cfg := config.Default()
	cfg.Listen = "127.0.0.1:0"
	cfg.DataDir = t.TempDir()
	cfg.LogLevel = "warn"
	return cfg
}

// Start runs notifyrelay in process with Config(t) changed by mod (may be nil).
// It is stopped when the test ends (Stop may also be called earlier).
func Start(t testing.TB, mod func(*config.Config)) *app.App {
	t.Helper()
	cfg := Config(t)
	if mod != nil {
		mod(&cfg)
	}
	return StartConfig(t, cfg)
}

// StartConfig runs notifyrelay in process with exactly cfg (but see onJetStream).
func StartConfig(t testing.TB, cfg config.Config) *app.App {
	t.Helper()
	onJetStream(t, &cfg)
	a, err := app.New(cfg, Logger(t, cfg.LogLevel))
	if err != nil {
		t.Fatalf("app.New: %v", err)
	}
	checkContract(t, a.Observe)
	if err := a.Start(context.Background()); err != nil {
		t.Fatalf("app.Start: %v", err)
	}
	t.Cleanup(func() {
		if err := a.Stop(); err != nil {
			t.Errorf("app.Stop: %v", err)
		}
	})
	return a
}

// onJetStream moves cfg's queue to an embedded NATS server when the environment
// has TEST_NOTIFYRELAY_QUEUE_ENGINE=jetstream, so that the server's suite can run on
// the JetStream engine. The data directory names the queue: a test that restarts
// the app on the same data_dir finds its queue again on the same server.
func onJetStream(t testing.TB, cfg *config.Config) {
	if os.Getenv(testEngineEnv) != "jetstream" || cfg.Queue.Engine != "badger" {
		return
	}
	jsMu.Lock()
	defer jsMu.Unlock()
	loc, ok := jsByDir[cfg.DataDir]
	if !ok {
		loc = config.JetStream{URLs: natstest.Start(t, 1, false).URLs, Replicas: 1, Prefix: natstest.Prefix(),
			LockTTL: cfg.Queue.JetStream.LockTTL, MaxBatchMsgs: 3100} // a deliveries:batch of 1000
		jsByDir[cfg.DataDir] = loc
		t.Cleanup(func() { jsMu.Lock(); delete(jsByDir, cfg.DataDir); jsMu.Unlock() })
	}
	cfg.Queue.Engine, cfg.Queue.JetStream = "jetstream", loc
}

var (
	jsMu    sync.Mutex
	jsByDir = map[string]config.JetStream{}
)

// OnJetStream reports whether the test switch puts in-process servers on
// JetStream.
func OnJetStream() bool { return os.Getenv(testEngineEnv) == "jetstream" }

// testEngineEnv names the variable that puts the queue on JetStream. It does not
// start with NOTIFYRELAY_: servers started as child processes inherit the
// environment and refuse NOTIFYRELAY_ variables that name no key.
const testEngineEnv = "TEST_NOTIFYRELAY_QUEUE_ENGINE"

// URL is the server's base URL (public_url).
func URL(a *app.App) string { return a.Config().Public() }

// Logger writes zerolog lines into the test log at level (default warn).
func Logger(t testing.TB, level string) zerolog.Logger {
	lvl, err := zerolog.ParseLevel(level)
	if err != nil || level == "" {
		lvl = zerolog.WarnLevel
	}
	return zerolog.New(zerolog.NewTestWriter(t)).Level(lvl).With().Timestamp().Logger()
}
