// Package web holds flowlake's static user interface and serves it.
//
// The UI is a single-page app (TypeScript, Vite) whose sources live beside this
// file; `make web` builds them into dist/, which is embedded here with go:embed so
// that `flowlake serve` ships the UI inside its binary. The Go build does not
// need the UI to be built: dist/ then holds only a keep file, Built reports false
// and Handler serves a page that says how to build it. The same dist/ files can be
// deployed as they are to S3/CloudFront: asset paths are relative and the API base
// URL is read at run time from config.json next to index.html (default: same origin).
package web

import (
	"bytes"
	"embed"
	"io/fs"
	"net/http"
	"path"
	"strings"
	"time"
)

//go:embed all:dist
var embedded embed.FS

// Dist returns the built UI files (the contents of web/dist).
func Dist() fs.FS {
	sub, err := fs.Sub(embedded, "dist")
	if err != nil { // cannot happen: "dist" is a valid path embedded above
		panic(err)
	}
	return sub
}

// Built reports whether the embedded files hold a real build (an index.html).
func Built() bool { return hasIndex(Dist()) }

func hasIndex(fsys fs.FS) bool {
	st, err := fs.Stat(fsys, "index.html")
	return err == nil && !st.IsDir()
}

// Handler serves the embedded UI; see NewHandler.
func Handler() http.Handler { return NewHandler(Dist()) }

// notBuilt is served for every UI path when fsys holds no index.html.
const notBuilt = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>flowlake: UI not built</title>
<style>body{background:#111217;color:#ccccdc;font:15px/1.5 system-ui,sans-serif;margin:15vh auto;max-width:640px}
code{background:#0b0c0e;padding:2px 6px;border-radius:3px}</style></head>
<body><h1>flowlake: UI not built</h1>
<p>This binary was built without the web UI. Run <code>make web</code> (Node.js and npm needed), then rebuild
flowlake (<code>make build</code>) so that the UI is embedded.</p>
<p>The API works without it: <code>/api/v1/openapi.json</code>.</p></body></html>
`

// NewHandler serves the single-page app in fsys (index.html at the root). Files are
// served as they are; hashed files under assets/ are cached for a year, anything
// else must be revalidated. A path with no file gets index.html when it looks like
// a page (no extension), 404 otherwise. Without index.html every path gets a page
// saying the UI is not built (status 503).
func NewHandler(fsys fs.FS) http.Handler {
	built := hasIndex(fsys)
	files := http.FileServerFS(fsys)
	start := time.Now()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		if !built {
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			w.Header().Set("Cache-Control", "no-store")
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write([]byte(notBuilt))
			return
		}
		p := strings.TrimPrefix(path.Clean("/"+r.URL.Path), "/")
		if p == "" || p == "." {
			p = "index.html"
		}
		if strings.HasPrefix(p, "assets/") {
			w.Header().Set("Cache-Control", "public, max-age=31536000, immutable")
		} else {
			w.Header().Set("Cache-Control", "no-cache")
		}
		if st, err := fs.Stat(fsys, p); err == nil && !st.IsDir() {
			if p == "index.html" {
				serveIndex(w, r, fsys, start)
				return
			}
			files.ServeHTTP(w, r)
			return
		}
		if path.Ext(p) == "" {
			serveIndex(w, r, fsys, start)
			return
		}
		http.NotFound(w, r)
	})
}

func serveIndex(w http.ResponseWriter, r *http.Request, fsys fs.FS, mod time.Time) {
	b, err := fs.ReadFile(fsys, "index.html")
	if err != nil {
		http.Error(w, "read index.html: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Cache-Control", "no-cache")
	http.ServeContent(w, r, "index.html", mod, bytes.NewReader(b))
}
