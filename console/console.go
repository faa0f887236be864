// Package console is the operator's web page (/console/): static files embedded
// in the binary, no build step. The page holds no data: it asks the operator for
// the operator token and reads everything through the operator API with it
// (docs/console.md).
package console

import (
	"embed"
	"encoding/json"
	"mime"
	"path"
	"strings"

	"github.com/valyala/fasthttp"
)

//go:embed static
var files embed.FS

// Prefix is where the console is served, at the root like /metrics.
const Prefix = "/console/"

// Handler serves the console's files. apiBase is base_path: the page calls
// {apiBase}/relay/v1/… on the same origin.
type Handler struct {
	config []byte
}

// New builds the handler.
func New(apiBase string) *Handler {
	b, _ := json.Marshal(map[string]string{"apiBase": apiBase})
	return &Handler{config: b}
}

// Serve answers GET and HEAD of /console and everything under it.
func (h *Handler) Serve(ctx *fasthttp.RequestCtx) {
	p := string(ctx.Path())
	if p == "/console" {
		ctx.Redirect(Prefix, fasthttp.StatusMovedPermanently)
		return
	}
	if !ctx.IsGet() && !ctx.IsHead() {
		ctx.Response.Header.Set("Allow", "GET, HEAD")
		ctx.Error("method not allowed\n", fasthttp.StatusMethodNotAllowed)
		return
	}
	name := strings.TrimPrefix(p, Prefix)
	if name == "" {
		name = "index.html"
	}
	// The page runs only its own files: no inline script, nothing from elsewhere.
	ctx.Response.Header.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'")
	ctx.Response.Header.Set("X-Content-Type-Options", "nosniff")
	ctx.Response.Header.Set("Cache-Control", "no-cache")
	if name == "config.json" {
		ctx.SetContentType("application/json")
		ctx.SetBody(h.config)
		return
	}
	b, err := files.ReadFile("static/" + path.Clean(name))
	if err != nil || strings.Contains(name, "..") {
		ctx.Error("not found\n", fasthttp.StatusNotFound)
		return
	}
	ctx.SetContentType(mime.TypeByExtension(path.Ext(name)))
	ctx.SetBody(b)
}
