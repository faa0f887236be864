package app

import (
	"errors"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/rs/zerolog"
	"github.com/valyala/fasthttp"
	"github.com/valyala/fasthttp/fasthttpadaptor"

	"notifyrelay/api"
	clientjs "notifyrelay/client/js"
	"notifyrelay/console"
	"notifyrelay/oma"
)

func (a *App) newServer(h fasthttp.RequestHandler) *fasthttp.Server {
	return &fasthttp.Server{
		Handler:            h,
		Name:               "notifyrelay",
		MaxRequestBodySize: int(a.cfg.Limits.MaxBody),
		// Bodies are read by the router, once the route and the token are known
		// (bodyLimiter); fasthttp itself reads at most 8 KiB of one ahead.
		StreamRequestBody: true,
		// Keep multipart bodies as bytes: the chat API parses them itself, leniently
		// (the seed's multipart example is not one fasthttp's form parser reads).
		DisablePreParseMultipartForm: true,
		ReadTimeout:                  60 * time.Second,
		WriteTimeout:                 60 * time.Second,
		IdleTimeout:                  120 * time.Second,
		ErrorHandler:                 a.handleServerError,
		Logger:                       fasthttpLogger{log: a.log},
		NoDefaultDate:                false,
		CloseOnShutdown:              true,
		// The bridge owns the WebSockets it hijacks (and closes them): fasthttp then
		// releases the request context and reader of an upgraded connection.
		KeepHijackedConns: true,
	}
}

// handleServerError answers what fasthttp refuses before a handler runs (an
// oversize body, a malformed request) with a requestError.
func (a *App) handleServerError(ctx *fasthttp.RequestCtx, err error) {
	var small *fasthttp.ErrSmallBuffer
	if errors.As(err, &small) { // request line and headers over ReadBufferSize (4 KiB)
		api.Fail(ctx, oma.HeadersTooLarge())
		ctx.SetConnectionClose()
		return
	}
	if errors.Is(err, fasthttp.ErrBodyTooLarge) {
		api.Fail(ctx, oma.TooLarge(int(a.cfg.Limits.MaxBody)))
		ctx.SetConnectionClose()
		return
	}
	api.Fail(ctx, oma.InvalidInput("request (not a valid HTTP/1.1 request)"))
	ctx.SetConnectionClose()
}

func (a *App) handle(ctx *fasthttp.RequestCtx) {
	start := time.Now()
	a.route(ctx)
	if a.observe != nil {
		a.observe(ctx)
	}
	a.bodies.release(ctx)
	a.logRequest(ctx, start)
}

// dropBody leaves a body nobody reads to fasthttp, which discards it after the
// response (or closes the connection when it is large).
func dropBody(ctx *fasthttp.RequestCtx) {
	if ctx.Request.IsBodyStream() {
		ctx.Request.SetBodyRaw(nil)
	}
}

// logRequest writes one line per request at debug and one per failure (5xx) at warn.
// Only the path is logged: tokens travel in headers, and a callbackURL's
// capability token is cut off.
func (a *App) logRequest(ctx *fasthttp.RequestCtx, start time.Time) {
	status := ctx.Response.StatusCode()
	lvl := zerolog.DebugLevel
	if status >= 500 {
		lvl = zerolog.WarnLevel
	}
	ev := a.log.WithLevel(lvl)
	if ev == nil || a.log.GetLevel() > lvl {
		return
	}
	ev.Str("method", string(ctx.Method())).Str("path", redactPath(string(ctx.Path()))).
		Int("status", status).Dur("took", time.Since(start)).Msg("request")
}

func redactPath(p string) string {
	if i := strings.Index(p, "/notifications/"); i >= 0 {
		return p[:i] + "/notifications/…"
	}
	return p
}

func (a *App) route(ctx *fasthttp.RequestCtx) {
	switch string(ctx.Path()) {
	case "/healthz", "/readyz", "/metrics", clientjs.Path, "/openapi.json":
		dropBody(ctx)
	}
	switch string(ctx.Path()) {
	case "/healthz":
		ctx.SetStatusCode(fasthttp.StatusOK)
		ctx.SetBodyString("ok\n")
		return
	case "/readyz":
		a.handleReady(ctx)
		return
	case clientjs.Path:
		serveClientJS(ctx)
		return
	case "/openapi.json":
		ctx.SetContentType("application/json")
		ctx.SetBody(a.openAPI)
		return
	case "/metrics":
		if a.admin == nil {
			a.handleAdmin(ctx)
			return
		}
	}
	if isConsole(ctx) && a.admin == nil {
		dropBody(ctx)
		a.console.Serve(ctx)
		return
	}
	if !a.stripBase(ctx) {
		api.Fail(ctx, oma.NotFound(api.RequestPath(ctx)))
		return
	}
	if a.cors(ctx, string(ctx.Path())) {
		return
	}
	if !a.router.Serve(ctx) {
		api.Fail(ctx, oma.NotFound(api.RequestPath(ctx)))
	}
}

// stripBase removes base_path from the request URI so the routes need not know it.
func (a *App) stripBase(ctx *fasthttp.RequestCtx) bool {
	base := a.cfg.BasePath
	if base == "" {
		return true
	}
	raw := string(ctx.URI().PathOriginal())
	api.SetRequestPath(ctx, raw)
	rest, ok := strings.CutPrefix(raw, base)
	if !ok || (rest != "" && rest[0] != '/') {
		return false
	}
	ctx.URI().SetPathBytes([]byte(rest))
	ctx.Request.SetRequestURI(rest + queryOf(ctx))
	return true
}

func queryOf(ctx *fasthttp.RequestCtx) string {
	if q := ctx.URI().QueryString(); len(q) > 0 {
		return "?" + string(q)
	}
	return ""
}

// serveClientJS serves the browser client library. Any origin may load it (a
// module script from another origin needs CORS); what it then does is up to the
// API's own checks (tokens, channels.allowed_origins).
func serveClientJS(ctx *fasthttp.RequestCtx) {
	if !ctx.IsGet() && !ctx.IsHead() {
		ctx.Response.Header.Set("Allow", "GET, HEAD")
		api.Fail(ctx, oma.MethodNotAllowed(string(ctx.Method())))
		return
	}
	h := &ctx.Response.Header
	h.SetContentType("text/javascript; charset=utf-8")
	h.Set("Access-Control-Allow-Origin", "*")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Content-Type-Options", "nosniff")
	ctx.SetBody(clientjs.Source)
}

func (a *App) handleReady(ctx *fasthttp.RequestCtx) {
	select {
	case <-a.stopping:
		ctx.SetStatusCode(fasthttp.StatusServiceUnavailable)
		ctx.SetBodyString("stopping\n")
	case <-a.ready:
		if err := a.space(); err != nil { // producers get 507 meanwhile
			ctx.SetStatusCode(fasthttp.StatusServiceUnavailable)
			ctx.SetBodyString("not ready: " + err.Error() + "\n")
			return
		}
		ctx.SetStatusCode(fasthttp.StatusOK)
		ctx.SetBodyString("ready\n")
	default:
		ctx.SetStatusCode(fasthttp.StatusServiceUnavailable)
		ctx.SetBodyString("starting\n")
	}
}

// handleAdmin serves admin_listen: metrics, pprof, and the console with the
// operator API it calls (so that the page and its API share an origin).
func (a *App) handleAdmin(ctx *fasthttp.RequestCtx) {
	if strings.HasPrefix(string(ctx.Path()), a.cfg.BasePath+"/relay/v1/") {
		a.adminAPI(ctx)
		return
	}
	dropBody(ctx)
	switch p := string(ctx.Path()); {
	case isConsole(ctx):
		a.console.Serve(ctx)
	case p == "/metrics":
		a.metrics(ctx)
	case strings.HasPrefix(p, "/debug/pprof") && a.admin != nil:
		pprofHandler(ctx)
	default:
		api.Fail(ctx, oma.NotFound(p))
	}
}

func (a *App) metrics(ctx *fasthttp.RequestCtx) {
	fasthttpadaptor.NewFastHTTPHandler(promhttp.HandlerFor(a.reg, promhttp.HandlerOpts{}))(ctx)
}

func isConsole(ctx *fasthttp.RequestCtx) bool {
	p := string(ctx.Path())
	return p == "/console" || strings.HasPrefix(p, console.Prefix)
}

// adminAPI serves the operator API on admin_listen once the node is active (a
// standby serves metrics before it has an API).
func (a *App) adminAPI(ctx *fasthttp.RequestCtx) {
	select {
	case <-a.ready:
		a.handle(ctx)
	default:
		dropBody(ctx)
		api.Fail(ctx, oma.Unavailable())
	}
}
