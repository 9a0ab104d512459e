package dashboard_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/tributary-iot/tributary/internal/testenv/chromium"
)

// tab is a browser tab of a test, its problems collected by con.
type tab struct {
	t   *testing.T
	ctx context.Context
	con *browserConsole
}

// openTab starts a tab with a viewport chromium.Width × height, without
// a deadline (a deadline on the first Run would bound the browser's life),
// then bounds everything else by timeout. It closes with the test.
func openTab(t *testing.T, allocCtx context.Context, con *browserConsole, height int, timeout time.Duration) *tab {
	t.Helper()
	browser, cancelBrowser := chromedp.NewContext(allocCtx, chromedp.WithListener(con.listen))
	t.Cleanup(cancelBrowser)
	if err := chromedp.Do(browser, chromedp.EmulateViewport(chromium.Width, int64(height))); err != nil {
		t.Fatalf("start %s: %v", chromium.Path, err)
	}
	ctx, cancel := context.WithTimeout(browser, timeout)
	t.Cleanup(cancel)
	return &tab{t: t, ctx: ctx, con: con}
}

// wait polls a JavaScript predicate until it is truthy (20 s at most).
func (b *tab) wait(what, expr string) {
	b.t.Helper()
	chromium.Wait(b.t, b.ctx, what, expr, 20*time.Second)
}

// text is the innerText of the first element matching a CSS selector
// ("" if none).
func (b *tab) text(sel string) string {
	b.t.Helper()
	return chromium.Eval[string](b.t, b.ctx, fmt.Sprintf(`document.querySelector(%q)?.innerText ?? ""`, sel))
}

// screenshot saves the tab's view in the test's artifact directory
// (go test -artifacts keeps it).
func (b *tab) screenshot(name string) {
	b.t.Helper()
	png, err := chromedp.Run(b.ctx, chromedp.CaptureScreenshot())
	if err != nil {
		b.t.Fatalf("screenshot %s: %v", name, err)
	}
	p := filepath.Join(b.t.ArtifactDir(), name)
	if err := os.WriteFile(p, png, 0o644); err != nil {
		b.t.Fatal(err)
	}
	b.t.Logf("screenshot: %s", p)
}
