package server_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/tributary-iot/tributary/cloud/server"
	"github.com/tributary-iot/tributary/internal/testenv/chromium"
)

// In a real browser: the dashboard sends an anonymous visitor to the
// login page; signing in there opens the dashboard with a cookie that
// scripts cannot read, and the API and event stream work; signing out
// ends it. A page on another origin that posts the login form (login
// CSRF) gets no session.
func TestAdminLoginInBrowser(t *testing.T) {
	allocCtx := chromium.Allocator(t)
	_, base := adminServer(t, server.Config{}, nil)
	browser, cancelBrowser := chromedp.NewContext(allocCtx)
	defer cancelBrowser()
	if err := chromedp.Do(browser, chromedp.EmulateViewport(chromium.Width, chromium.Height)); err != nil {
		t.Fatalf("start %s: %v", chromium.Path, err)
	}
	ctx, cancel := context.WithTimeout(browser, 60*time.Second)
	defer cancel()
	do := func(actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(ctx, actions...); err != nil {
			t.Fatal(err)
		}
	}
	// wait polls a predicate across navigations (a form post navigates
	// while the page is being watched).
	wait := func(what, expr string) {
		t.Helper()
		deadline := time.Now().Add(15 * time.Second)
		for {
			ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`!!(`+expr+`)`))
			if err == nil && ok {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("waiting for %s (%s): %v", what, expr, err)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	// status navigates to path and returns the answer's status (a fetch
	// would do, but the login page's policy allows no script to connect).
	status := func(path string) int64 {
		t.Helper()
		resp, err := chromedp.Run(ctx, chromedp.NavigateResponse(base+path))
		if err != nil {
			t.Fatalf("navigate to %s: %v", path, err)
		}
		return resp.Status
	}

	// A page elsewhere posts the right credentials to the login form.
	evil := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, `<!doctype html><form id=f method=post action="%s/login">
<input name=user value=%q><input name=password value=%q><input name=next value="/"></form>
<script>document.getElementById("f").submit()</script>`, base, adminUser, adminPass)
	}))
	defer evil.Close()
	do(chromedp.Navigate(evil.URL))
	wait("the cross-site form post refused", `location.pathname === "/login" && document.body?.innerText.includes("cross-origin request detected")`)
	if n := status("/api/v1/overview"); n != 401 {
		t.Fatalf("after the cross-site post: API %d, want 401 (no session)", n)
	}

	// The dashboard sends the visitor to sign in, and back.
	do(chromedp.Navigate(base + "/"))
	wait("the login page", `location.pathname === "/login" && !!document.querySelector("#password")`)
	do(chromedp.SendKeys(chromedp.CSS("#user"), adminUser), chromedp.SendKeys(chromedp.CSS("#password"), adminPass),
		chromedp.Click(chromedp.CSS(`button[type="submit"]`)))
	wait("the dashboard", `location.pathname === "/" && document.querySelector("#live")?.dataset.state === "live"`)
	if n := status("/api/v1/overview"); n != 200 {
		t.Errorf("API signed in: %d", n)
	}
	if c := chromium.Eval[string](t, ctx, `document.cookie`); c != "" {
		t.Errorf("a script reads the cookies %q: the session cookie must be HttpOnly", c)
	}

	// Signing out ends the session.
	do(chromedp.Navigate(base + "/login"))
	wait("the signed-in page", `document.body.innerText.includes("Signed in as")`)
	do(chromedp.Click(chromedp.CSS(`form[action="/logout"] button`)))
	wait("the login form again", `location.pathname === "/login" && !!document.querySelector("#password")`)
	if n := status("/api/v1/overview"); n != 401 {
		t.Errorf("API after signing out: %d, want 401", n)
	}
}
