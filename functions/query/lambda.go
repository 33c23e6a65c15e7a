package query

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"unicode/utf8"

	"github.com/aws/aws-lambda-go/events"
)

// maxLambdaResponse is Lambda's limit on a synchronous response payload
// (6 MB), less room for the envelope.
const maxLambdaResponse = 6_000_000 - 16<<10

// HandleLambda is the Lambda handler (pass it to lambda.Start): it serves
// an HTTP request of a function URL or an API Gateway HTTP API (payload
// format 2.0) with the same handler as `flowlake serve`. Binary answers
// (pcap downloads) are base64-encoded; an answer above Lambda's 6 MB
// limit becomes a 500 saying so.
func (s *Server) HandleLambda(ctx context.Context, ev events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
	req, err := lambdaRequest(ctx, ev)
	if err != nil {
		return lambdaError(http.StatusBadRequest, "bad_request", err.Error()), nil
	}
	rec := newRecorder()
	s.ServeHTTP(rec, req)
	return rec.response(), nil
}

// lambdaRequest rebuilds the HTTP request of an event.
func lambdaRequest(ctx context.Context, ev events.APIGatewayV2HTTPRequest) (*http.Request, error) {
	method := ev.RequestContext.HTTP.Method
	if method == "" {
		return nil, fmt.Errorf("event has no requestContext.http.method: not a payload 2.0 HTTP event")
	}
	p := ev.RawPath
	if p == "" {
		p = ev.RequestContext.HTTP.Path
	}
	// An API Gateway stage other than $default prefixes the path.
	if st := ev.RequestContext.Stage; st != "" && st != "$default" {
		if rest, ok := strings.CutPrefix(p, "/"+st+"/"); ok {
			p = "/" + rest
		}
	}
	body := []byte(ev.Body)
	if ev.IsBase64Encoded {
		b, err := base64.StdEncoding.DecodeString(ev.Body)
		if err != nil {
			return nil, fmt.Errorf("event body is not valid base64: %v", err)
		}
		body = b
	}
	u := &url.URL{Path: p, RawQuery: ev.RawQueryString}
	if raw, err := url.PathUnescape(p); err == nil && raw != p {
		u.Path, u.RawPath = raw, p
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("event request: %v", err)
	}
	req.URL = u
	req.RequestURI = u.RequestURI()
	for k, v := range ev.Headers {
		req.Header.Set(k, v)
	}
	if len(ev.Cookies) > 0 {
		req.Header.Set("Cookie", strings.Join(ev.Cookies, "; "))
	}
	req.Host = req.Header.Get("Host")
	if req.Host == "" {
		req.Host = ev.RequestContext.DomainName
	}
	if req.Header.Get("X-Forwarded-Proto") == "" {
		req.Header.Set("X-Forwarded-Proto", "https") // function URLs and HTTP APIs are HTTPS
	}
	req.RemoteAddr = ev.RequestContext.HTTP.SourceIP
	req.ContentLength = int64(len(body))
	return req, nil
}

// recorder is the ResponseWriter of a Lambda invocation.
type recorder struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func newRecorder() *recorder { return &recorder{header: http.Header{}} }

func (r *recorder) Header() http.Header { return r.header }

func (r *recorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
	}
}

func (r *recorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	return r.body.Write(b)
}

// textual reports whether a content type can travel as a JSON string.
func textual(ct string) bool {
	ct = strings.ToLower(ct)
	return strings.HasPrefix(ct, "text/") || strings.Contains(ct, "json") || strings.Contains(ct, "javascript") ||
		strings.Contains(ct, "xml") || strings.HasPrefix(ct, "image/svg")
}

func (r *recorder) response() events.APIGatewayV2HTTPResponse {
	status := r.status
	if status == 0 {
		status = http.StatusOK
	}
	resp := events.APIGatewayV2HTTPResponse{StatusCode: status, Headers: map[string]string{}}
	for k, vs := range r.header {
		if k == "Set-Cookie" {
			resp.Cookies = append(resp.Cookies, vs...)
			continue
		}
		resp.Headers[k] = strings.Join(vs, ", ")
	}
	b := r.body.Bytes()
	if textual(r.header.Get("Content-Type")) && utf8.Valid(b) {
		resp.Body = string(b)
	} else if len(b) > 0 {
		resp.Body = base64.StdEncoding.EncodeToString(b)
		resp.IsBase64Encoded = true
	}
	if len(resp.Body) > maxLambdaResponse {
		return lambdaError(http.StatusInternalServerError, "internal",
			fmt.Sprintf("the answer (%d bytes) exceeds the 6 MB limit of Lambda responses: narrow the request", len(b)))
	}
	return resp
}

// lambdaError is an error answer built outside the handler.
func lambdaError(status int, code, msg string) events.APIGatewayV2HTTPResponse {
	rec := newRecorder()
	writeError(rec, status, code, msg, nil)
	return rec.response()
}
