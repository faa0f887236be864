// Package apptest starts notifyrelay for tests: in process (Start) or as the real
// binary in a child process (StartProcess) that a crash test can SIGKILL. Both
// listen on 127.0.0.1:0 and are stopped by t.Cleanup.
package apptest

import (
	"context"
	"os"
	"testing"

	"github.com/rs/zerolog"

	"notifyrelay/app"
	"notifyrelay/config"
	"notifyrelay/queue/natstest"
)

// Config returns the defaults for a test server: 127.0.0.1:0, a fresh data dir,
// warn-level logs into the test log. With NOTIFYRELAY_TEST_QUEUE_ENGINE=jetstream
// in the environment, the queue is on an embedded NATS server of the test's own.
func Config(t testing.TB) config.Config {
	cfg := config.Default()
	cfg.Listen = "127.0.0.1:0"
	cfg.DataDir = t.TempDir()
	cfg.LogLevel = "warn"
	if os.Getenv("NOTIFYRELAY_TEST_QUEUE_ENGINE") == "jetstream" {
		cfg.Queue.Engine = "jetstream"
		cfg.Queue.JetStream.URLs = natstest.Start(t, 1, false).URLs
		cfg.Queue.JetStream.Prefix = natstest.Prefix()
	}
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

// StartConfig runs notifyrelay in process with exactly cfg.
func StartConfig(t testing.TB, cfg config.Config) *app.App {
	t.Helper()
	a, err := app.New(cfg, Logger(t, cfg.LogLevel))
	if err != nil {
		t.Fatalf("app.New: %v", err)
	}
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
