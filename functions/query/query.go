// Package query is the query function: flowlake's HTTP API (/api/v1, see
// openapi.json, served at /api/v1/openapi.json) over the query engine
// ([lakequery.Engine]) and access control ([auth.Service]).
//
// [Server] is a plain net/http handler. It runs three ways: in `flowlake
// serve` (which also serves the web UI at /), as an AWS Lambda function
// behind a function URL or an API Gateway HTTP API ([Server.HandleLambda],
// payload format 2.0), and in process in tests.
//
// Handlers are thin: the auth middleware turns the bearer token into an
// [auth.Principal] and checks the route's role, the handler parses and
// validates the parameters (400 with a precise message), calls the engine
// with the principal's agent scope, and writes JSON. Every error is
// {"error", "code", "pos"} (pos only for filter errors). Nothing logged
// contains a password, token or API key: request lines name the route
// pattern, not the URL (public link URLs hold a token).
//
// Password logins are throttled per username and per client address
// (package auth, per process; 429 with Retry-After). The address is
// r.RemoteAddr: the connection's peer under `flowlake serve`, and the
// event's requestContext.http.sourceIp under Lambda (set by AWS, see
// [Server.HandleLambda]). X-Forwarded-For, which any client can write, is
// not used; so behind a reverse proxy in front of `flowlake serve`, all
// clients share the proxy's address and its limit.
package query

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/flowlake/flowlake/internal/auth"
	"github.com/flowlake/flowlake/internal/filter"
	lakequery "github.com/flowlake/flowlake/internal/query"
)

// Engine is what the API needs of the query engine ([lakequery.Engine]).
type Engine interface {
	Map(ctx context.Context, r lakequery.Request) (*lakequery.MapResult, error)
	Timeline(ctx context.Context, r lakequery.Request) (*lakequery.TimelineResult, error)
	Communications(ctx context.Context, r lakequery.Request) (*lakequery.Page, error)
	// Communication and PCAP look id up around hint first when it is not
	// zero (the exchange's ts, from the ts parameter).
	Communication(ctx context.Context, id string, scope []string, hint time.Time) (*lakequery.Detail, error)
	Sequence(ctx context.Context, r lakequery.Request) (*lakequery.SequenceResult, error)
	Status(ctx context.Context, r lakequery.Request) (*lakequery.StatusResult, error)
	Fields() []filter.Field
	PCAP(ctx context.Context, id string, scope []string, hint time.Time, w io.Writer) error
	HAR(ctx context.Context, r lakequery.Request, w io.Writer) error
}

// Config configures a Server.
type Config struct {
	// Engine answers the data routes (required).
	Engine Engine
	// Auth is the access control (required).
	Auth *auth.Service
	// UI, if set, serves the web UI at / (web.Handler: the files, and
	// index.html for the UI's own routes).
	UI http.Handler
	// PublicURL is the base URL of the UI in public links
	// (https://flowlake.example.com); by default the scheme and host of
	// the request that creates the link.
	PublicURL string
	// Log receives a line per request (route pattern, status, duration)
	// and the causes of 500s; nil discards.
	Log *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Server is the query API. It is safe for concurrent use.
type Server struct {
	eng       Engine
	auth      *auth.Service
	publicURL string
	log       *slog.Logger
	now       func() time.Time
	mux       *http.ServeMux
}

// New returns the server for cfg.
func New(cfg Config) (*Server, error) {
	if cfg.Engine == nil || cfg.Auth == nil {
		return nil, errors.New("query server: an engine and an auth service are required")
	}
	s := &Server{eng: cfg.Engine, auth: cfg.Auth, publicURL: strings.TrimRight(cfg.PublicURL, "/"), log: cfg.Log, now: cfg.Now}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.now == nil {
		s.now = time.Now
	}
	s.mux = http.NewServeMux()
	for _, rt := range s.routes() {
		s.mux.Handle(rt.method+" "+rt.path, s.wrap(rt))
	}
	s.mux.HandleFunc("/api/", s.noRoute)
	if cfg.UI != nil {
		s.mux.Handle("/", cfg.UI)
	}
	return s, nil
}

// access is who may call a route.
type access int

const (
	public  access = iota // anyone
	anyone                // any authenticated caller, also public link visitors
	viewer                // users and service accounts of any role
	analyst               // analysts and admins
	admin                 // admins
)

// route is one API route.
type route struct {
	method, path string // a net/http pattern: GET /api/v1/views/{id}
	access       access
	handle       func(w http.ResponseWriter, r *http.Request, p *auth.Principal) error
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

// noRoute answers requests below /api/ that match no route: 405 when the
// path has routes for other methods, else 404, as JSON.
func (s *Server) noRoute(w http.ResponseWriter, r *http.Request) {
	var allow []string
	for _, m := range []string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodDelete} {
		if m == r.Method {
			continue
		}
		r2 := r.Clone(r.Context())
		r2.Method = m
		if _, p := s.mux.Handler(r2); strings.HasPrefix(p, m+" /api/") {
			allow = append(allow, m)
		}
	}
	if len(allow) > 0 {
		w.Header().Set("Allow", strings.Join(allow, ", "))
		writeError(w, http.StatusMethodNotAllowed, "bad_request",
			fmt.Sprintf("method %s not allowed on %s (allowed: %s)", r.Method, r.URL.Path, strings.Join(allow, ", ")), nil)
		return
	}
	writeError(w, http.StatusNotFound, "not_found", fmt.Sprintf("no API route %s %s", r.Method, r.URL.Path), nil)
}

// statusRecorder remembers the status a handler wrote.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (r *statusRecorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *statusRecorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	return r.ResponseWriter.Write(b)
}

// wrap is the middleware of a route: authentication, role check, error
// answers and the request log line.
func (s *Server) wrap(rt route) http.Handler {
	pattern := rt.method + " " + rt.path
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &statusRecorder{ResponseWriter: w}
		w = rec
		w.Header().Set("Cache-Control", "no-store")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		err := s.serve(rt, w, r)
		if err != nil {
			s.fail(w, r, pattern, err)
		}
		s.log.Debug("request", "route", pattern, "status", rec.status, "duration_ms", time.Since(start).Milliseconds())
	})
}

func (s *Server) serve(rt route, w http.ResponseWriter, r *http.Request) error {
	if rt.access == public {
		return rt.handle(w, r, nil)
	}
	tok, err := bearer(r)
	if err != nil {
		return err
	}
	p, err := s.auth.Authenticate(r.Context(), tok)
	if err != nil {
		return err
	}
	if err := allowed(rt.access, p); err != nil {
		return err
	}
	return rt.handle(w, r, p)
}

// bearer returns the token of the Authorization header.
func bearer(r *http.Request) (string, error) {
	h := r.Header.Get("Authorization")
	if h == "" {
		return "", fmt.Errorf("%w: missing Authorization: Bearer header", auth.ErrUnauthorized)
	}
	scheme, tok, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(tok) == "" {
		return "", fmt.Errorf("%w: Authorization header is not 'Bearer <token>'", auth.ErrUnauthorized)
	}
	return strings.TrimSpace(tok), nil
}

// allowed checks the principal against the route's access.
func allowed(a access, p *auth.Principal) error {
	if p.Kind == auth.KindLink && a != anyone {
		return fmt.Errorf("%w: a public link gives access to its view's data only", auth.ErrForbidden)
	}
	var need auth.Role
	switch a {
	case anyone, viewer:
		need = auth.RoleViewer
	case analyst:
		need = auth.RoleAnalyst
	case admin:
		need = auth.RoleAdmin
	}
	if !p.Can(need) {
		return fmt.Errorf("%w: this needs the %s role (you are %s)", auth.ErrForbidden, need, p.Role)
	}
	return nil
}

// errBadParam is a malformed parameter or body.
var errBadParam = errors.New("bad request")

func badRequest(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{errBadParam}, args...)...)
}

// apiError is the error body of every non-2xx answer.
type apiError struct {
	Error string `json:"error"`
	Code  string `json:"code"`
	Pos   *int   `json:"pos,omitempty"`
}

// sentinels, whose text is cut from the front of messages.
var sentinels = []error{auth.ErrUnauthorized, auth.ErrForbidden, auth.ErrNotFound, auth.ErrInvalid,
	lakequery.ErrBadRequest, lakequery.ErrNotFound, errBadParam}

// fail answers err.
func (s *Server) fail(w http.ResponseWriter, r *http.Request, pattern string, err error) {
	if rec, ok := w.(*statusRecorder); ok && rec.status != 0 {
		// The answer has begun (a download): too late for an error body.
		s.log.Warn("request failed after the answer began", "route", pattern, "err", err)
		return
	}
	if r.Context().Err() != nil {
		return // the client is gone (an engine may answer a canceled scan with not found)
	}
	var ferr *filter.Error
	status, code := http.StatusInternalServerError, "internal"
	switch {
	case errors.As(err, &ferr):
		pos := ferr.Pos
		writeError(w, http.StatusBadRequest, "bad_request", "q: "+ferr.Error(), &pos)
		return
	case errors.Is(err, auth.ErrUnauthorized):
		status, code = http.StatusUnauthorized, "unauthorized"
		w.Header().Set("WWW-Authenticate", `Bearer realm="flowlake"`)
	case errors.Is(err, auth.ErrForbidden):
		status, code = http.StatusForbidden, "forbidden"
	case errors.Is(err, auth.ErrThrottled):
		status, code = http.StatusTooManyRequests, "too_many_requests"
		var te *auth.ThrottledError
		if errors.As(err, &te) {
			w.Header().Set("Retry-After", strconv.FormatInt(int64(math.Ceil(te.RetryAfter.Seconds())), 10))
		}
	case errors.Is(err, auth.ErrNotFound), errors.Is(err, lakequery.ErrNotFound):
		status, code = http.StatusNotFound, "not_found"
	case errors.Is(err, auth.ErrInvalid), errors.Is(err, auth.ErrConflict), errors.Is(err, lakequery.ErrBadRequest), errors.Is(err, errBadParam):
		status, code = http.StatusBadRequest, "bad_request"
	}
	msg := err.Error()
	if status == http.StatusInternalServerError {
		s.log.Error("request failed", "route", pattern, "err", err)
		msg = "internal error"
		if errors.Is(err, context.DeadlineExceeded) {
			msg = "internal error: the query took too long"
		}
	}
	for _, e := range sentinels {
		if m, ok := strings.CutPrefix(msg, e.Error()+": "); ok {
			msg = m
			break
		}
	}
	writeError(w, status, code, msg, nil)
}

func writeError(w http.ResponseWriter, status int, code, msg string, pos *int) {
	writeJSON(w, status, apiError{Error: msg, Code: code, Pos: pos})
}

// writeJSON answers v as JSON.
func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status = http.StatusInternalServerError
		b, _ = json.Marshal(apiError{Error: "internal error: encode answer", Code: "internal"})
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}

// maxBody bounds request bodies.
const maxBody = 1 << 20

// decode reads a JSON request body into v.
func decode(r *http.Request, v any) error {
	body := http.MaxBytesReader(nil, r.Body, maxBody)
	dec := json.NewDecoder(body)
	if err := dec.Decode(v); err != nil {
		var se *json.SyntaxError
		var te *json.UnmarshalTypeError
		var me *http.MaxBytesError
		switch {
		case errors.Is(err, io.EOF):
			return badRequest("empty request body: want a JSON object")
		case errors.Is(err, io.ErrUnexpectedEOF):
			return badRequest("request body is not valid JSON: it ends too early")
		case errors.As(err, &me):
			return badRequest("request body larger than %d bytes", maxBody)
		case errors.As(err, &se):
			return badRequest("request body is not valid JSON (at byte %d): %v", se.Offset, err)
		case errors.As(err, &te):
			field := te.Field
			if field == "" {
				field = "the body"
			}
			return badRequest("%s: want a JSON %s, got %s", field, jsonType(te.Type), te.Value)
		}
		return badRequest("request body: %v", err)
	}
	if dec.More() {
		return badRequest("request body holds more than one JSON value")
	}
	return nil
}

// jsonType names the JSON type that decodes into t.
func jsonType(t reflect.Type) string {
	switch t.Kind() {
	case reflect.Bool:
		return "boolean"
	case reflect.String:
		return "string"
	case reflect.Slice, reflect.Array:
		return "array"
	case reflect.Map, reflect.Struct:
		return "object"
	case reflect.Pointer:
		return jsonType(t.Elem())
	}
	return "number"
}

// list is the shape of every list answer.
type list[T any] struct {
	Items []T    `json:"items"`
	Next  string `json:"next"`
}

func listOf[T any](items []T) list[T] {
	if items == nil {
		items = []T{}
	}
	return list[T]{Items: items}
}
