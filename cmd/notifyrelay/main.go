// Command notifyrelay runs the server (serve), the load generator (loadtest) or
// prints its version. main only turns signals into a context and flags into a
// config; app.Run does the rest.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/rs/zerolog"

	"notifyrelay/app"
	"notifyrelay/config"
	"notifyrelay/loadtest"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprintln(stderr, usage)
		return 2
	}
	switch args[0] {
	case "serve":
		return serve(ctx, args[1:], stderr)
	case "loadtest":
		return loadtest.Main(ctx, args[1:], stdout, stderr)
	case "version", "--version", "-v":
		fmt.Fprintln(stdout, "notifyrelay", version)
		return 0
	case "help", "-h", "--help":
		fmt.Fprintln(stdout, usage)
		return 0
	}
	fmt.Fprintf(stderr, "notifyrelay: unknown command %q\n%s\n", args[0], usage)
	return 2
}

const usage = `usage:
  notifyrelay serve [--config FILE] [--listen ADDR] [--data-dir DIR] [--public-url URL] [--admin-listen ADDR] [--insecure] [--log-level LEVEL]
  notifyrelay loadtest SCENARIO [flags]   (notifyrelay loadtest -h)
  notifyrelay version`

func serve(ctx context.Context, args []string, stderr io.Writer) int {
	cfg, err := parseServe(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintln(stderr, "notifyrelay:", err)
		return 2
	}
	log := newLogger(stderr, cfg.LogLevel)
	if err := app.Run(ctx, cfg, log); err != nil {
		log.Error().Err(err).Msg("notifyrelay failed")
		return 1
	}
	return 0
}

// parseServe reads the flags; each one set overrides the key of the same meaning.
func parseServe(args []string, stderr io.Writer) (config.Config, error) {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "", "YAML configuration file (configs/notifyrelay.yaml documents every key)")
	keys := map[string]string{"listen": "listen", "data-dir": "data_dir", "public-url": "public_url",
		"admin-listen": "admin_listen", "log-level": "log_level", "queue-engine": "queue.engine"}
	vals := map[string]*string{}
	for name, key := range keys {
		vals[name] = fs.String(name, "", "overrides "+key)
	}
	insecure := fs.Bool("insecure", false, "allow auth off on a non-loopback listen address")
	if err := fs.Parse(args); err != nil {
		return config.Config{}, err
	}
	overrides := map[string]string{}
	fs.Visit(func(f *flag.Flag) {
		if key, ok := keys[f.Name]; ok {
			overrides[key] = *vals[f.Name]
		}
	})
	if *insecure {
		overrides["insecure"] = "true"
	}
	return config.Load(*path, os.Environ(), overrides)
}

func newLogger(w io.Writer, level string) zerolog.Logger {
	lvl, err := zerolog.ParseLevel(level)
	if err != nil {
		lvl = zerolog.InfoLevel
	}
	return zerolog.New(w).Level(lvl).With().Timestamp().Logger()
}
