package apptest

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/pb33f/libopenapi"
	validator "github.com/pb33f/libopenapi-validator"
	"github.com/valyala/fasthttp"

	"notifyrelay/docs"
)

// The OpenAPI document (docs/openapi.yaml) is checked against what the server
// really answers: every server a test starts passes its exchanges through a
// contract check, so the suites that exercise the APIs also keep the document
// true. A response is always checked (its status must be documented and its JSON
// body match); a request only when it succeeded (the suites send bad requests on
// purpose). Each kind of exchange (method, status, route shape) is checked a few
// times, which keeps load tests cheap.

var (
	contractOnce sync.Once
	contractV    validator.Validator
	contractErr  error
	contractMu   sync.Mutex // the validator's caches are not safe for concurrent use
)

func contractValidator() (validator.Validator, error) {
	contractOnce.Do(func() {
		doc, err := libopenapi.NewDocument(docs.OpenAPIYAML())
		if err != nil {
			contractErr = fmt.Errorf("docs/openapi.yaml: %w", err)
			return
		}
		v, errs := validator.NewValidator(doc)
		if len(errs) > 0 {
			contractErr = fmt.Errorf("docs/openapi.yaml: %v", errs)
			return
		}
		contractV = v
	})
	return contractV, contractErr
}

// contract checks exchanges for one test server.
type contract struct {
	t    testing.TB
	v    validator.Validator
	mu   sync.Mutex
	seen map[string]int
}

const checksPerKind = 4

// checkContract makes a check every exchange of the server a passes through.
func checkContract(t testing.TB, observe func(func(*fasthttp.RequestCtx))) {
	if _, bench := t.(*testing.B); bench {
		return
	}
	v, err := contractValidator()
	if err != nil {
		t.Fatal(err)
	}
	c := &contract{t: t, v: v, seen: map[string]int{}}
	observe(c.check)
}

func (c *contract) check(ctx *fasthttp.RequestCtx) {
	status := ctx.Response.StatusCode()
	// An upgrade, or a streamed answer (long poll) written after this: not checked.
	if status == fasthttp.StatusSwitchingProtocols || ctx.Hijacked() || ctx.Response.IsBodyStream() || !c.due(ctx, status) {
		return
	}
	req, resp := toHTTP(ctx)
	if err := ContractErrors(c.v, req, resp); err != "" {
		c.t.Errorf("docs/openapi.yaml does not describe %s %s → %d:\n%s", req.Method, req.URL.Path, status, err)
	}
}

// due counts the exchange's kind and says whether it is still to be checked.
func (c *contract) due(ctx *fasthttp.RequestCtx, status int) bool {
	if ctx.IsOptions() && len(ctx.Request.Header.Peek("Access-Control-Request-Method")) > 0 {
		return false // a CORS preflight: the browser's, not an operation of the API
	}
	segs := strings.Split(string(ctx.Path()), "/")
	if len(segs) > 4 {
		segs = segs[:4]
	}
	kind := fmt.Sprintf("%s %d %d %s", ctx.Method(), status, strings.Count(string(ctx.Path()), "/"), strings.Join(segs, "/"))
	c.mu.Lock()
	defer c.mu.Unlock()
	c.seen[kind]++
	return c.seen[kind] <= checksPerKind
}

// ContractErrors validates one exchange against the document, "" when it conforms.
func ContractErrors(v validator.Validator, req *http.Request, resp *http.Response) string {
	contractMu.Lock()
	defer contractMu.Unlock()
	var msgs []string
	if resp.StatusCode < 300 {
		if ok, errs := v.ValidateHttpRequestSync(req); !ok {
			for _, e := range errs {
				msgs = append(msgs, "request: "+e.Error())
			}
		}
	}
	if ok, errs := v.ValidateHttpResponse(req, resp); !ok {
		for _, e := range errs {
			if e.ValidationType == "path" && (resp.StatusCode == 404 || resp.StatusCode == 405) {
				continue // a refusal of a route or method the document rightly does not list
			}
			msgs = append(msgs, "response: "+e.Error())
		}
	}
	return strings.Join(msgs, "\n")
}

// toHTTP copies a fasthttp exchange into net/http values the validator reads.
func toHTTP(ctx *fasthttp.RequestCtx) (*http.Request, *http.Response) {
	u := &url.URL{Scheme: "http", Host: "localhost", Path: string(ctx.Path()), RawQuery: string(ctx.QueryArgs().QueryString())}
	var reqBody []byte
	if !ctx.Request.IsBodyStream() { // a stream is a body the server did not read
		reqBody = append(reqBody, ctx.Request.Body()...)
	}
	req := &http.Request{Method: string(ctx.Method()), URL: u, Header: http.Header{},
		Body: io.NopCloser(bytes.NewReader(reqBody))}
	for k, v := range ctx.Request.Header.All() {
		req.Header.Add(string(k), string(v))
	}
	resp := &http.Response{StatusCode: ctx.Response.StatusCode(), Header: http.Header{}, Request: req}
	for k, v := range ctx.Response.Header.All() {
		resp.Header.Add(string(k), string(v))
	}
	resp.Header.Set("Content-Type", string(ctx.Response.Header.ContentType()))
	resp.Body = io.NopCloser(bytes.NewReader(append([]byte(nil), ctx.Response.Body()...)))
	return req, resp
}
