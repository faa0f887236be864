package app_test

import (
	"bytes"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/pb33f/libopenapi"
	validator "github.com/pb33f/libopenapi-validator"

	"notifyrelay/app/apptest"
	"notifyrelay/docs"
)

// /openapi.json is docs/openapi.yaml, and the document is valid OpenAPI 3.1.
func TestOpenAPIServedAndValid(t *testing.T) {
	base := apptest.URL(apptest.Start(t, nil))
	resp, err := http.Get(base + "/openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	got, _ := io.ReadAll(resp.Body)
	want, err := docs.OpenAPIJSON()
	if err != nil || resp.StatusCode != 200 || !bytes.Equal(got, want) {
		t.Fatalf("%d %v: /openapi.json is not docs/openapi.yaml", resp.StatusCode, err)
	}
	doc, err := libopenapi.NewDocument(got)
	if err != nil {
		t.Fatal(err)
	}
	if doc.GetVersion() != "3.1.0" {
		t.Errorf("version %s", doc.GetVersion())
	}
	v, errs := validator.NewValidator(doc)
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	if ok, errs := v.ValidateDocument(); !ok {
		for _, e := range errs {
			t.Error(e)
		}
	}
}

// The contract check apptest runs on every server does fail on an answer the
// document does not describe (so its silence elsewhere means something).
func TestContractCheckCatchesDrift(t *testing.T) {
	doc, _ := libopenapi.NewDocument(docs.OpenAPIYAML())
	v, _ := validator.NewValidator(doc)
	get := func(path string) *http.Request {
		r, _ := http.NewRequest("GET", "http://localhost"+path, nil)
		r.Header.Set("Authorization", "Bearer x")
		return r
	}
	answer := func(status int, body string) *http.Response {
		h := http.Header{"Content-Type": {"application/json"}}
		return &http.Response{StatusCode: status, Header: h, Body: io.NopCloser(strings.NewReader(body))}
	}
	good := `{"destinations":[{"id":"o:1","kind":"operator","notifyURL":"http://x","key":"","depth":1,` +
		`"oldestAgeSeconds":0.5,"headAttempts":0,"state":"ready","paused":false,"rateLimit":null}]}`
	if e := apptest.ContractErrors(v, get("/relay/v1/destinations"), answer(200, good)); e != "" {
		t.Errorf("a conforming answer: %s", e)
	}
	for name, c := range map[string]struct {
		path string
		resp *http.Response
	}{
		"field missing":        {"/relay/v1/destinations", answer(200, `{"destinations":[{"id":"o:1"}]}`)},
		"wrong type":           {"/relay/v1/destinations", answer(200, strings.Replace(good, `"depth":1`, `"depth":"1"`, 1))},
		"fault not a fault":    {"/relay/v1/destinations", answer(403, `{"error":"no"}`)},
		"undocumented route":   {"/relay/v1/nothing", answer(200, `{}`)},
		"undocumented success": {"/healthz", answer(201, "")},
	} {
		if e := apptest.ContractErrors(v, get(c.path), c.resp); e == "" {
			t.Errorf("%s: not reported", name)
		}
	}
}
