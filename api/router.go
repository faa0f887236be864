package api

import (
	"net/url"
	"sort"
	"strconv"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"github.com/valyala/fasthttp"

	"notifyrelay/oma"
)

// Params holds the decoded values of a route's {name} segments.
type Params map[string]string

type route struct {
	pattern string
	segs    []string // literal segment, or "{name}"
	open    Opening
	methods Methods
	allow   string
	prefix  bool  // last segment "{name...}" matches the rest of the path
	admit   Admit // nil: the router's
}

// Router matches the raw (still percent-encoded) path segment by segment, so an
// encoded "/" inside a {userId} stays inside it, then decodes each parameter.
// With ReadBodies set, a request's body is read only after its route is matched and
// the request admitted.
type Router struct {
	routes   []*route
	requests *prometheus.CounterVec
	log      zerolog.Logger // the causes of 5xx answers
	admit    Admit
	read     BodyReader
}

// NewRouter returns an empty router counting requests by route and status in reg
// (nil: not counted) and logging the causes of 5xx answers to log.
func NewRouter(reg prometheus.Registerer, log zerolog.Logger) *Router {
	r := &Router{log: log, requests: prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "notifyrelay_http_requests_total",
		Help: "HTTP requests by route pattern, method and status.",
	}, []string{"route", "method", "status"})}
	if reg != nil {
		reg.MustRegister(r.requests)
	}
	return r
}

// Handle adds a resource. pattern is a path such as "/chat/v1/{userId}/group"; every
// method of m is allowed, any other gets 405 with Allow listing exactly m's methods.
// Its bodies are read once the router's Admit lets the request in; then open runs,
// then the method's handler.
func (r *Router) Handle(pattern string, open Opening, m Methods) {
	r.HandleAdmit(pattern, open, m, nil)
}

// HandleAdmit is Handle with the resource's own Admit (nil: the router's), for a
// resource whose URL is its credential (a callbackURL).
func (r *Router) HandleAdmit(pattern string, open Opening, m Methods, admit Admit) {
	names := make([]string, 0, len(m))
	for k := range m {
		names = append(names, k)
	}
	sort.Strings(names)
	segs := strings.Split(strings.Trim(pattern, "/"), "/")
	rt := &route{pattern: pattern, segs: segs, open: open, methods: m, allow: strings.Join(names, ", "), admit: admit}
	if last := segs[len(segs)-1]; strings.HasSuffix(last, "...}") {
		rt.prefix = true
		segs[len(segs)-1] = strings.TrimSuffix(last, "...}") + "}"
	}
	r.routes = append(r.routes, rt)
}

// Serve dispatches ctx; it reports false when no route matches the path, so the
// caller can try other handlers or answer 404.
func (r *Router) Serve(ctx *fasthttp.RequestCtx) bool {
	path := string(ctx.URI().PathOriginal())
	if i := strings.IndexByte(path, '?'); i >= 0 {
		path = path[:i]
	}
	segs := strings.Split(strings.Trim(path, "/"), "/")
	for _, rt := range r.routes {
		p, ok := rt.match(segs)
		if !ok {
			continue
		}
		r.dispatch(ctx, rt, p)
		return true
	}
	return false
}

// dispatch is the one path of every routed request: 405 + Allow, the body read once
// admitted, the API's opening, the handler, and its answer or fault rendered and
// counted.
func (r *Router) dispatch(ctx *fasthttp.RequestCtx, rt *route, p Params) {
	method := string(ctx.Method())
	if h, ok := rt.methods[method]; ok {
		r.serve(ctx, rt, h, p)
	} else {
		ctx.Response.Header.Set("Allow", rt.allow)
		WriteError(ctx, ErrorFormat(ctx), oma.MethodNotAllowed(method))
	}
	r.requests.WithLabelValues(rt.pattern, method, strconv.Itoa(ctx.Response.StatusCode())).Inc()
}

func (r *Router) serve(ctx *fasthttp.RequestCtx, rt *route, h Handler, p Params) {
	if e := r.readBody(ctx, rt, p); e != nil {
		WriteError(ctx, ErrorFormat(ctx), e)
		return
	}
	req := &Request{RequestCtx: ctx, Params: p}
	var a Answer
	e := rt.open(req)
	if e == nil {
		a, e = h(req)
	}
	r.render(req, a, e, rt.pattern)
}

func (rt *route) match(segs []string) (Params, bool) {
	if len(segs) < len(rt.segs) || (!rt.prefix && len(segs) != len(rt.segs)) {
		return nil, false
	}
	var p Params
	for i, s := range rt.segs {
		if !strings.HasPrefix(s, "{") {
			if s != segs[i] {
				return nil, false
			}
			continue
		}
		raw := segs[i]
		if rt.prefix && i == len(rt.segs)-1 {
			raw = strings.Join(segs[i:], "/")
		}
		v, err := url.PathUnescape(raw)
		if err != nil || v == "" {
			return nil, false
		}
		if p == nil {
			p = Params{}
		}
		p[strings.Trim(s, "{}")] = v
	}
	return p, true
}

// EscapeID percent-encodes an id for a URL path segment the OMA way
// (tel:+1958… → tel%3A%2B1958…).
func EscapeID(id string) string { return url.QueryEscape(id) }
