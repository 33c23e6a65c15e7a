package web

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"testing/fstest"
)

func get(t *testing.T, h http.Handler, method, path string) *http.Response {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(method, path, nil))
	return rec.Result()
}

func body(t *testing.T, r *http.Response) string {
	t.Helper()
	b, err := io.ReadAll(r.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestHandlerBuilt(t *testing.T) {
	fsys := fstest.MapFS{
		"index.html":         {Data: []byte("<!doctype html><title>flowlake</title>")},
		"config.json":        {Data: []byte(`{"api_base": ""}`)},
		"assets/index-1.js":  {Data: []byte("console.log(1)")},
		"assets/index-1.css": {Data: []byte("body{}")},
	}
	if !hasIndex(fsys) {
		t.Fatal("hasIndex = false with index.html")
	}
	h := NewHandler(fsys)
	tests := []struct {
		method, path string
		status       int
		contains     string
		cache        string
		ctype        string
	}{
		{"GET", "/", 200, "<title>flowlake</title>", "no-cache", "text/html"},
		{"GET", "/index.html", 200, "<title>flowlake</title>", "no-cache", "text/html"},
		{"GET", "/assets/index-1.js", 200, "console.log(1)", "immutable", "javascript"},
		{"GET", "/assets/index-1.css", 200, "body{}", "immutable", "text/css"},
		{"GET", "/config.json", 200, "api_base", "no-cache", "application/json"},
		{"GET", "/explore", 200, "<title>flowlake</title>", "no-cache", "text/html"}, // page-like path: the app
		{"GET", "/assets/missing.js", 404, "", "", ""},
		{"GET", "/../../etc/host.conf", 404, "", "", ""}, // cleaned to etc/host.conf: not in fsys
		{"HEAD", "/", 200, "", "no-cache", "text/html"},
		{"POST", "/", 405, "", "", ""},
	}
	for _, tt := range tests {
		r := get(t, h, tt.method, tt.path)
		b := body(t, r)
		if r.StatusCode != tt.status {
			t.Errorf("%s %s: status %d, want %d", tt.method, tt.path, r.StatusCode, tt.status)
			continue
		}
		if tt.contains != "" && !strings.Contains(b, tt.contains) {
			t.Errorf("%s %s: body %q lacks %q", tt.method, tt.path, b, tt.contains)
		}
		if tt.cache != "" && !strings.Contains(r.Header.Get("Cache-Control"), tt.cache) {
			t.Errorf("%s %s: Cache-Control %q, want %q", tt.method, tt.path, r.Header.Get("Cache-Control"), tt.cache)
		}
		if tt.ctype != "" && !strings.Contains(r.Header.Get("Content-Type"), tt.ctype) {
			t.Errorf("%s %s: Content-Type %q, want %q", tt.method, tt.path, r.Header.Get("Content-Type"), tt.ctype)
		}
	}
}

func TestHandlerNotBuilt(t *testing.T) {
	fsys := fstest.MapFS{".gitkeep": {Data: nil}}
	if hasIndex(fsys) {
		t.Fatal("hasIndex = true without index.html")
	}
	h := NewHandler(fsys)
	for _, p := range []string{"/", "/index.html", "/assets/x.js"} {
		r := get(t, h, "GET", p)
		b := body(t, r)
		if r.StatusCode != http.StatusServiceUnavailable {
			t.Errorf("GET %s: status %d, want 503", p, r.StatusCode)
		}
		if !strings.Contains(b, "UI not built") || !strings.Contains(b, "make web") {
			t.Errorf("GET %s: body does not say how to build the UI: %q", p, b)
		}
	}
}

// The embedded files are either a real build (index.html and its assets) or only
// the keep file; both must compile and serve.
func TestEmbedded(t *testing.T) {
	h := Handler()
	r := get(t, h, "GET", "/")
	b := body(t, r)
	if Built() {
		if r.StatusCode != 200 || !strings.Contains(b, "<div id=\"app\">") {
			t.Fatalf("built UI: GET / = %d %q", r.StatusCode, b)
		}
		// Every asset index.html references must be embedded, by a relative path.
		for _, ref := range assetRefs(b) {
			if strings.HasPrefix(ref, "/") {
				t.Errorf("index.html references %s by an absolute path (breaks S3 and sub-path hosting)", ref)
			}
			if rr := get(t, h, "GET", "/"+strings.TrimPrefix(ref, "./")); rr.StatusCode != 200 {
				t.Errorf("asset %s: status %d", ref, rr.StatusCode)
			}
		}
	} else if r.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("unbuilt UI: GET / = %d", r.StatusCode)
	}
}

func assetRefs(html string) []string {
	var out []string
	for _, attr := range []string{`src="`, `href="`} {
		s := html
		for {
			i := strings.Index(s, attr)
			if i < 0 {
				break
			}
			s = s[i+len(attr):]
			j := strings.IndexByte(s, '"')
			if j < 0 {
				break
			}
			ref := s[:j]
			if strings.Contains(ref, "assets/") {
				out = append(out, ref)
			}
			s = s[j:]
		}
	}
	return out
}
