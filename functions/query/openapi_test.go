package query

import (
	"bytes"
	"context"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/legacy"
)

var (
	specOnce   sync.Once
	spec       *openapi3.T
	specRouter routers.Router
	specErr    error
)

// loadSpec loads and validates openapi.json as served.
func loadSpec(t *testing.T) (*openapi3.T, routers.Router) {
	t.Helper()
	specOnce.Do(func() {
		l := openapi3.NewLoader()
		spec, specErr = l.LoadFromData(OpenAPI())
		if specErr != nil {
			return
		}
		if specErr = spec.Validate(context.Background()); specErr != nil {
			return
		}
		// Match requests whatever their host.
		s := *spec
		s.Servers = nil
		specRouter, specErr = legacy.NewRouter(&s)
	})
	if specErr != nil {
		t.Fatalf("openapi.json: %v", specErr)
	}
	return spec, specRouter
}

// Every registered route is in openapi.json, and every operation of
// openapi.json is a registered route.
func TestOpenAPIRoutes(t *testing.T) {
	doc, _ := loadSpec(t)
	if doc.OpenAPI != "3.0.3" {
		t.Errorf("openapi %q", doc.OpenAPI)
	}
	s := &Server{}
	var registered, documented []string
	for _, rt := range s.routes() {
		registered = append(registered, rt.method+" "+rt.path)
		op := doc.Paths.Find(rt.path)
		if op == nil || op.GetOperation(rt.method) == nil {
			t.Errorf("route %s %s is not in openapi.json", rt.method, rt.path)
			continue
		}
		o := op.GetOperation(rt.method)
		// Public routes say so; the others need the bearer token.
		isPublic := o.Security != nil && len(*o.Security) == 0
		if isPublic != (rt.access == public) {
			t.Errorf("%s %s: openapi.json says public=%v, the route's access is %v", rt.method, rt.path, isPublic, rt.access)
		}
		if rt.access != public {
			if o.Responses.Status(401) == nil {
				t.Errorf("%s %s: no 401 in openapi.json", rt.method, rt.path)
			}
			if rt.access > viewer && o.Responses.Status(403) == nil {
				t.Errorf("%s %s: no 403 in openapi.json", rt.method, rt.path)
			}
		}
	}
	for path, item := range doc.Paths.Map() {
		for method := range item.Operations() {
			documented = append(documented, method+" "+path)
			if !slices.Contains(registered, method+" "+path) {
				t.Errorf("openapi.json has %s %s, which is no route", method, path)
			}
		}
	}
	if len(documented) != len(registered) {
		t.Errorf("%d documented operations, %d routes", len(documented), len(registered))
	}
	// The document is also what the server serves.
	e := newEnv(t)
	resp, b := e.do("GET", "/api/v1/openapi.json", "", nil)
	if resp.StatusCode != 200 || !bytes.Equal(b, OpenAPI()) || resp.Header.Get("Content-Type") != "application/json" {
		t.Errorf("GET /api/v1/openapi.json: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
}

// checkResponse validates an answer against openapi.json: the status must
// be documented for the operation, and the body must match its schema.
func checkResponse(t *testing.T, req *http.Request, status int, header http.Header, body []byte) {
	t.Helper()
	if !strings.HasPrefix(req.URL.Path, "/api/") || status == http.StatusMethodNotAllowed {
		return // 405 answers any path, for methods it has no operation for
	}
	_, router := loadSpec(t)
	route, params, err := router.FindRoute(req)
	if err != nil {
		if status != http.StatusNotFound && status != http.StatusMethodNotAllowed {
			t.Errorf("%s %s: %d answered for a request openapi.json has no route for: %v", req.Method, req.URL.Path, status, err)
		}
		return
	}
	in := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route},
		Status:                 status,
		Header:                 header,
		Options:                &openapi3filter.Options{IncludeResponseStatus: true, MultiError: true},
	}
	in.SetBodyBytes(body)
	if err := openapi3filter.ValidateResponse(req.Context(), in); err != nil {
		t.Errorf("%s %s: answer %d does not match openapi.json: %v\nbody: %.300s", req.Method, req.URL.Path, status, err, body)
	}
}
