// Package app is the composition root: it opens the queue, builds the relay and the
// bridge on it, serves them on one fasthttp listener, and stops everything in one
// order. cmd/notifyrelay calls Run; tests call New, Start and Stop on 127.0.0.1:0.
package app

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/rs/zerolog"
	"github.com/valyala/fasthttp"

	"notifyrelay/api"
	"notifyrelay/bridge"
	"notifyrelay/config"
	"notifyrelay/console"
	"notifyrelay/docs"
	"notifyrelay/queue"
	"notifyrelay/telemetry"
)

// Part is a piece of the server (the relay, webhook delivery, the bridge) that the
// app wires in.
type Part interface {
	// Start launches the part's background work; it runs until Stop.
	Start(ctx context.Context) error
	// Stop ends the part's background work, waiting for it, bounded by ctx. Called
	// after ingress has stopped; nothing acknowledged may be lost.
	Stop(ctx context.Context) error
}

// Routed is a part with HTTP resources.
type Routed interface {
	// Routes adds the part's resources to r.
	Routes(r *api.Router)
}

// Drainer is a part with long-lived connections (WebSockets, long polls) that must
// be closed before the listener can finish shutting down.
type Drainer interface {
	Drain(ctx context.Context)
}

// App is one running notifyrelay.
type App struct {
	cfg    config.Config
	log    zerolog.Logger
	reg    *prometheus.Registry
	engine queue.Engine
	space  func() error // nil while the queue takes new data (queue.ErrNoSpace)
	parts  []Part
	router *api.Router
	bodies *bodyLimiter

	ln, adminLn net.Listener
	srv, admin  *fasthttp.Server
	ready       chan struct{}
	stopping    chan struct{}
	wg          sync.WaitGroup
	serveErr    chan error
	stopOnce    sync.Once
	mu          sync.Mutex // held by stop's start and by a standby's activation
	hooksOnce   sync.Once
	hooks       queueHooks
	flushTraces func(context.Context) error // the tracer's shutdown (telemetry)
	activeOnce  sync.Once
	active      prometheus.Gauge
	fwdToken    string // accepted in forwarding prefaces (forwarded.go); "" on Badger
	// warnedHolder is the active node last warned about (checkPublic); only the
	// standby's start and then its takeover loop use it.
	warnedHolder string
	openAPI      []byte // /openapi.json
	console      *console.Handler
	observe      func(ctx *fasthttp.RequestCtx) // see Observe
}

// Observe makes every answered request pass through fn before its body is
// released (the tests check the exchanges against docs/openapi.yaml). Set it
// before Start.
func (a *App) Observe(fn func(ctx *fasthttp.RequestCtx)) { a.observe = fn }

// New opens the queue and builds every part. Nothing listens yet.
func New(cfg config.Config, log zerolog.Logger) (*App, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.AuthOff() && !cfg.ListenIsLoopback() && !cfg.Insecure {
		return nil, fmt.Errorf("listen %s is not a loopback address and auth.tokens is empty: configure tokens or pass --insecure", cfg.Listen)
	}
	a := &App{cfg: cfg, log: log, reg: prometheus.NewRegistry(), ready: make(chan struct{}),
		stopping: make(chan struct{}), serveErr: make(chan error, 2)}
	a.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		newDiskCollector(cfg.DataDir))
	a.console = console.New(cfg.BasePath)
	var err error
	if a.openAPI, err = docs.OpenAPIJSON(); err != nil {
		return nil, err
	}
	return a, nil
}

// Start binds the listeners, opens the queue, builds the parts and starts serving.
// public_url, when unset, is derived from the bound address (so :0 works).
//
// With queue.engine jetstream, a node that finds the prefix held by another node
// starts as a standby instead (standby.go): it forwards its connections to that
// node and takes over when the other's lock expires.
func (a *App) Start(ctx context.Context) error {
	if err := a.listen(); err != nil {
		return err
	}
	engine, err := a.openEngine()
	var held *queue.HeldError
	if errors.As(err, &held) {
		a.standby(ctx, held)
		return nil
	}
	if err != nil {
		a.closeListeners()
		return err
	}
	if err := a.activate(ctx, engine); err != nil {
		a.closeListeners()
		return err
	}
	if a.cfg.Queue.Engine == "jetstream" {
		a.setActive(true)
	}
	return nil
}

// activate builds the parts on engine, starts them and serves.
func (a *App) activate(ctx context.Context, engine countedEngine) error {
	if err := a.open(engine); err != nil {
		return err
	}
	for _, p := range a.parts {
		if err := p.Start(ctx); err != nil {
			_ = a.engine.Close()
			return fmt.Errorf("start: %w", err)
		}
	}
	a.serve()
	a.watchLock(engine)
	if a.cfg.AuthOff() {
		a.log.Warn().Msg("authentication is off (no auth.tokens): every request may act for any user")
	}
	close(a.ready) // before the log line: a supervisor that reads it may probe /readyz at once
	a.log.Info().Str("listen", a.Addr()).Str("public_url", a.cfg.PublicURL).Str("data_dir", a.cfg.DataDir).Msg("notifyrelay started")
	return nil
}

func (a *App) listen() error {
	ln, err := net.Listen("tcp", a.cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	// Connections count the bytes written, so that a long poll can tell when the
	// client's TCP stack has its answer (bridge.WaitReceived).
	if a.cfg.Queue.Engine == "jetstream" {
		a.fwdToken = newForwardToken() // standbys may forward clients to this node
	}
	a.ln = bridge.CountingListener(limitPerIP(ln, a.cfg.Limits.MaxConnsPerIP, a.fwdToken))
	if a.cfg.PublicURL == "" {
		a.cfg.PublicURL = "http://" + ln.Addr().String()
		if a.cfg.Queue.Engine == "jetstream" {
			a.log.Warn().Str("public_url", a.cfg.PublicURL).Msg("public_url is not set: the URLs this node hands out name it, " +
				"and stop working when another node takes over; set the same public_url (a load balancer) on every node")
		}
	}
	if a.cfg.Queue.JetStream.Advertise == "" {
		a.cfg.Queue.JetStream.Advertise = advertised(ln.Addr())
	}
	if a.cfg.AdminListen != "" {
		if a.adminLn, err = net.Listen("tcp", a.cfg.AdminListen); err != nil {
			ln.Close()
			return fmt.Errorf("admin_listen: %w", err)
		}
	}
	return nil
}

// openEngine opens the queue engine. A JetStream prefix held by another node
// fails at once with a *queue.HeldError: this node becomes a standby.
func (a *App) openEngine() (countedEngine, error) {
	meta := lockMeta{Public: a.cfg.Public(), Token: a.fwdToken}.encode()
	return openEngine(a.cfg, a.log.With().Str("component", "queue").Logger(), a.queueMetrics(), meta)
}

func (a *App) open(engine countedEngine) error {
	a.registerEngine(engine)
	a.engine = newCountingQueue(engine, a.reg)
	a.space = func() error { return nil }
	if s, ok := engine.(interface{ Space() error }); ok {
		a.space = s.Space
	}
	a.router = api.NewRouter(a.reg, a.log.With().Str("component", "api").Logger())
	auth := api.NewAuth(a.cfg.Auth.Tokens)
	a.bodies = &bodyLimiter{max: int64(a.cfg.Limits.MaxBody), budget: int64(a.cfg.Limits.MaxInflightBody)}
	a.router.ReadBodies(api.AdmitToken(auth), a.bodies.read)
	var err error
	tracer, flush, err := telemetry.Tracer(context.Background(), "")
	if err != nil {
		_ = engine.Close()
		return err
	}
	a.flushTraces = flush
	a.parts, err = buildParts(a.cfg, a.log, a.reg, a.engine, auth, tracer)
	if err != nil {
		_ = engine.Close()
		return err
	}
	for _, p := range a.parts {
		if r, ok := p.(Routed); ok {
			r.Routes(a.router)
		}
	}
	a.router.Handle("/relay/v1/stats", api.ForOperator(auth), api.Methods{"GET": statsHandler(a.reg)})
	return nil
}

func (a *App) serve() {
	a.srv = a.newServer(a.handle)
	a.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "notifyrelay_http_open_connections",
		Help: "Connections open on the public listener.",
	}, func() float64 { return float64(a.srv.GetOpenConnectionsCount()) }))
	if sw, ok := a.ln.(*switchListener); ok {
		sw.serve()
	}
	a.goServe(a.srv, a.ln)
	a.serveAdmin()
}

// serveAdmin serves metrics (and pprof) on admin_listen, once: a standby serves
// them before it takes over.
func (a *App) serveAdmin() {
	if a.adminLn != nil && a.admin == nil {
		a.admin = a.newServer(a.handleAdmin)
		a.goServe(a.admin, a.adminLn)
	}
}

func (a *App) goServe(srv *fasthttp.Server, ln net.Listener) {
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		if err := srv.Serve(ln); err != nil {
			a.serveErr <- err
		}
	}()
}

// Addr is the bound public address (host:port).
func (a *App) Addr() string { return a.ln.Addr().String() }

// AdminAddr is the bound admin address, empty when admin_listen is off.
func (a *App) AdminAddr() string {
	if a.adminLn == nil {
		return ""
	}
	return a.adminLn.Addr().String()
}

// Config is the configuration in force (public_url filled in).
func (a *App) Config() config.Config { return a.cfg }

// Wait blocks until ctx is done or a listener fails.
func (a *App) Wait(ctx context.Context) error {
	select {
	case <-ctx.Done():
		return nil
	case err := <-a.serveErr:
		return fmt.Errorf("serve: %w", err)
	}
}

// Stop shuts down in one order: ingress (listeners, in-flight requests, long-lived
// connections), then the parts' workers, then the queue. Bounded by
// shutdown_timeout; the queue is closed whatever happens, so that what was
// acknowledged stays durable.
func (a *App) Stop() error {
	var err error
	a.stopOnce.Do(func() { err = a.stop() })
	return err
}

func (a *App) stop() error {
	a.mu.Lock() // an activation in progress finishes first; none starts after
	close(a.stopping)
	a.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), a.cfg.ShutdownTimeout.D())
	defer cancel()
	var errs []error
	errs = append(errs, a.stopIngress(ctx))
	for i := len(a.parts) - 1; i >= 0; i-- {
		errs = append(errs, a.parts[i].Stop(ctx))
	}
	if a.engine != nil {
		errs = append(errs, a.engine.Close())
	}
	if a.flushTraces != nil {
		if err := a.flushTraces(ctx); err != nil {
			a.log.Warn().Err(err).Msg("could not flush the last traces")
		}
	}
	a.wg.Wait()
	a.log.Info().Msg("notifyrelay stopped")
	return errors.Join(errs...)
}

func (a *App) stopIngress(ctx context.Context) error {
	for _, p := range a.parts {
		if d, ok := p.(Drainer); ok {
			d.Drain(ctx)
		}
	}
	var errs []error
	if a.srv != nil {
		errs = append(errs, a.srv.ShutdownWithContext(ctx))
	}
	if a.admin != nil {
		errs = append(errs, a.admin.ShutdownWithContext(ctx))
	}
	// fasthttp's Shutdown does nothing if Serve has not yet begun; closing the
	// listeners ourselves makes a late Serve return at once.
	a.closeListeners()
	return errors.Join(errs...)
}

func (a *App) closeListeners() {
	a.ln.Close()
	if a.adminLn != nil {
		a.adminLn.Close()
	}
}

// Run starts notifyrelay and serves until ctx is done, then stops it.
func Run(ctx context.Context, cfg config.Config, log zerolog.Logger) error {
	a, err := New(cfg, log)
	if err != nil {
		return err
	}
	if err := a.Start(ctx); err != nil {
		return err
	}
	waitErr := a.Wait(ctx)
	return errors.Join(waitErr, a.Stop())
}
