// Package dashboard serves Tributary's monitoring dashboard: web pages
// built from web/ into assets/ and embedded, so the binary needs neither
// Node nor the internet. The data comes from the monitor's API.
//
// To rebuild the assets after editing web/src: cd web && npm ci && npm run build.
package dashboard

import (
	"embed"
	"io/fs"
	"net/http"
	"path"
	"regexp"
	"strings"
)

//go:embed assets
var embedded embed.FS

// Assets returns the built files (index.html and the hashed assets).
func Assets() fs.FS {
	sub, err := fs.Sub(embedded, "assets")
	if err != nil {
		panic(err) // the embed pattern guarantees the folder
	}
	return sub
}

// ContentSecurityPolicy is sent with every page and asset: everything
// comes from this origin, nothing inline, no frames, no other origins.
const ContentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; " +
	"connect-src 'self'; font-src 'none'; manifest-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// hashed matches asset names with a content hash (name.0123456789ab.ext):
// they never change, so browsers may keep them for good.
var hashed = regexp.MustCompile(`^[a-z0-9-]+\.[0-9a-f]{12}\.[a-z]+$`)

var contentTypes = map[string]string{
	".html": "text/html; charset=utf-8",
	".js":   "text/javascript; charset=utf-8",
	".css":  "text/css; charset=utf-8",
	".png":  "image/png",
	".txt":  "text/plain; charset=utf-8",
}

// Handler serves the dashboard at / and /assets/, and passes /api/ to
// api (the monitor's APIHandler; nil answers 404 there).
func Handler(api http.Handler) http.Handler {
	if api == nil {
		api = http.NotFoundHandler()
	}
	files := Assets()
	favicon := ""
	if m, _ := fs.Glob(files, "favicon.*.png"); len(m) > 0 {
		favicon = m[0]
	}
	mux := http.NewServeMux()
	mux.Handle("/api/", api)
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		serveFile(w, r, files, "index.html", "no-cache")
	})
	mux.HandleFunc("GET /index.html", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/", http.StatusMovedPermanently)
	})
	mux.HandleFunc("GET /favicon.ico", func(w http.ResponseWriter, r *http.Request) {
		serveFile(w, r, files, favicon, "public, max-age=86400")
	})
	mux.HandleFunc("GET /assets/{name}", func(w http.ResponseWriter, r *http.Request) {
		name := r.PathValue("name")
		cache := "no-cache"
		if hashed.MatchString(name) {
			cache = "public, max-age=31536000, immutable"
		}
		serveFile(w, r, files, name, cache)
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		setSecurityHeaders(w.Header())
		http.Error(w, "404 page not found: the dashboard is at /", http.StatusNotFound)
	})
	return mux
}

func serveFile(w http.ResponseWriter, r *http.Request, files fs.FS, name, cache string) {
	h := w.Header()
	setSecurityHeaders(h)
	b, err := fs.ReadFile(files, name)
	if name == "" || name == "index.html" && r.URL.Path != "/" || err != nil {
		http.Error(w, "404 page not found", http.StatusNotFound)
		return
	}
	ct, ok := contentTypes[path.Ext(name)]
	if !ok {
		ct = "application/octet-stream"
	}
	h.Set("Content-Type", ct)
	h.Set("Cache-Control", cache)
	if hashed.MatchString(name) {
		etag := `"` + strings.Split(name, ".")[1] + `"`
		h.Set("ETag", etag)
		if r.Header.Get("If-None-Match") == etag {
			w.WriteHeader(http.StatusNotModified)
			return
		}
	}
	if r.Method == http.MethodHead {
		return
	}
	w.Write(b)
}

func setSecurityHeaders(h http.Header) {
	h.Set("Content-Security-Policy", ContentSecurityPolicy)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Frame-Options", "DENY")
}
