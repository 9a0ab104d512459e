package dashboard_test

import (
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	"github.com/tributary-iot/tributary/cloud/dashboard"
	"github.com/tributary-iot/tributary/cloud/monitor"
)

// TestAssetsBuiltAndLocal fails when the built assets are missing (run
// `npm ci && npm run build` in web/) or name another origin.
func TestAssetsBuiltAndLocal(t *testing.T) {
	files := dashboard.Assets()
	index, err := fs.ReadFile(files, "index.html")
	if err != nil {
		t.Fatalf("assets/index.html: %v (build the dashboard: cd cloud/dashboard/web && npm ci && npm run build)", err)
	}
	refs := regexp.MustCompile(`/assets/([^"]+)`).FindAllStringSubmatch(string(index), -1)
	want := map[string]bool{}
	for _, r := range refs {
		want[r[1]] = true
	}
	var js, css bool
	for name := range want {
		if _, err := fs.Stat(files, name); err != nil {
			t.Errorf("index.html references %s, which is not built: %v", name, err)
		}
		js = js || strings.HasSuffix(name, ".js")
		css = css || strings.HasSuffix(name, ".css")
	}
	if !js || !css {
		t.Errorf("index.html references no script or no stylesheet: %v", want)
	}

	url := regexp.MustCompile(`(?i)https?://`)
	n := 0
	fs.WalkDir(files, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		n++
		b, err := fs.ReadFile(files, p)
		if err != nil {
			t.Fatal(err)
		}
		if loc := url.FindIndex(b); loc != nil {
			end := min(loc[1]+60, len(b))
			t.Errorf("%s references another origin: %q", p, b[loc[0]:end])
		}
		if p != "index.html" && p != "uplot-LICENSE.txt" && !want[p] {
			t.Errorf("%s is built but not referenced by index.html (stale? rebuild)", p)
		}
		return nil
	})
	if n < 4 {
		t.Errorf("%d asset files, want index.html, script, stylesheet, icon and licence", n)
	}
}

func TestHandler(t *testing.T) {
	m := monitor.New(monitor.Options{})
	srv := httptest.NewServer(dashboard.Handler(m.APIHandler()))
	defer srv.Close()

	fetch := func(path string, hdr ...string) (*http.Response, string) {
		t.Helper()
		req, _ := http.NewRequest("GET", srv.URL+path, nil)
		for i := 0; i+1 < len(hdr); i += 2 {
			req.Header.Set(hdr[i], hdr[i+1])
		}
		resp, err := http.DefaultTransport.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b)
	}

	resp, body := fetch("/")
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/html; charset=utf-8" ||
		resp.Header.Get("Cache-Control") != "no-cache" {
		t.Fatalf("GET /: %d %v", resp.StatusCode, resp.Header)
	}
	csp := resp.Header.Get("Content-Security-Policy")
	for _, d := range []string{"default-src 'none'", "script-src 'self'", "connect-src 'self'", "frame-ancestors 'none'"} {
		if !strings.Contains(csp, d) {
			t.Errorf("CSP %q lacks %q", csp, d)
		}
	}
	if strings.Contains(csp, "unsafe-inline") || strings.Contains(csp, "http") || strings.Contains(csp, "*") {
		t.Errorf("CSP %q allows inline code or other origins", csp)
	}
	script := regexp.MustCompile(`/assets/app\.[0-9a-f]{12}\.js`).FindString(body)
	style := regexp.MustCompile(`/assets/app\.[0-9a-f]{12}\.css`).FindString(body)
	if script == "" || style == "" {
		t.Fatalf("index.html names no hashed script or stylesheet:\n%s", body)
	}

	for path, ct := range map[string]string{script: "text/javascript; charset=utf-8", style: "text/css; charset=utf-8"} {
		resp, body := fetch(path)
		if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != ct || len(body) == 0 ||
			resp.Header.Get("Cache-Control") != "public, max-age=31536000, immutable" {
			t.Errorf("GET %s: %d %v", path, resp.StatusCode, resp.Header)
		}
		if resp, _ := fetch(path, "If-None-Match", resp.Header.Get("ETag")); resp.StatusCode != http.StatusNotModified {
			t.Errorf("GET %s with its ETag: %d, want 304", path, resp.StatusCode)
		}
	}
	if resp, _ := fetch("/assets/uplot-LICENSE.txt"); resp.StatusCode != 200 || resp.Header.Get("Cache-Control") != "no-cache" {
		t.Errorf("licence: %d %v", resp.StatusCode, resp.Header)
	}
	if resp, _ := fetch("/favicon.ico"); resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "image/png" {
		t.Errorf("favicon: %d %v", resp.StatusCode, resp.Header)
	}
	resp, body = fetch("/api/v1/overview")
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/json" || !strings.Contains(body, `"devices"`) {
		t.Errorf("API through the dashboard: %d %s", resp.StatusCode, body)
	}
	for _, p := range []string{"/nope", "/assets/nope.js", "/assets/index.html", "/assets/../dashboard.go"} {
		if resp, _ := fetch(p); resp.StatusCode != 404 && resp.StatusCode != 301 && resp.StatusCode != 307 {
			t.Errorf("GET %s: %d, want 404", p, resp.StatusCode)
		}
	}
}
