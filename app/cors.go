package app

import (
	"strings"

	"github.com/valyala/fasthttp"

	"notifyrelay/api"
)

// corsPaths are the APIs a browser page calls with a user's token: its channels
// (create, long poll, lifetime, delete) and the chat API.
var corsPaths = []string{"/notificationchannel/v1/", "/chat/v1/"}

// corsHeaders a page may send, and answer headers it may read.
const (
	corsAllowHeaders  = "Authorization, Content-Type, Accept, Idempotency-Key, traceparent"
	corsExposeHeaders = "Location, Retry-After, Content-Type"
)

// cors lets pages from channels.allowed_origins (and public_url's own origin) use
// the user APIs from another origin. Bearer tokens, not cookies, carry the
// credentials, so no Allow-Credentials. An origin not allowed gets no CORS
// headers, and the browser keeps the answer from the page.
func (a *App) cors(ctx *fasthttp.RequestCtx, path string) (answered bool) {
	origin := string(ctx.Request.Header.Peek("Origin"))
	if origin == "" || !corsPath(path) || !api.OriginAllowed(origin, a.cfg.Public(), a.cfg.Channels.AllowedOrigins) {
		return false
	}
	h := &ctx.Response.Header
	h.Set("Access-Control-Allow-Origin", origin)
	h.Add("Vary", "Origin")
	if !ctx.IsOptions() || len(ctx.Request.Header.Peek("Access-Control-Request-Method")) == 0 {
		h.Set("Access-Control-Expose-Headers", corsExposeHeaders)
		return false
	}
	// A preflight: answered here, before authentication (browsers send no token
	// with it).
	dropBody(ctx)
	h.Set("Access-Control-Allow-Methods", "GET, POST, PUT, DELETE")
	h.Set("Access-Control-Allow-Headers", corsAllowHeaders)
	h.Set("Access-Control-Max-Age", "600")
	ctx.SetStatusCode(fasthttp.StatusNoContent)
	return true
}

func corsPath(path string) bool {
	for _, p := range corsPaths {
		if strings.HasPrefix(path, p) {
			return true
		}
	}
	return false
}
