// Package chromium starts headless Chromium for the dashboard's browser
// tests, with the options every such test needs. It is apart from testenv
// so that only browser tests link the driver (chromedp).
package chromium

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/tributary-iot/tributary/internal/testenv"
)

// Path is Debian's Chromium, which `make deps-chromium` installs.
const Path = "/usr/bin/chromium"

// Width and Height are the browser window's size.
const Width, Height = 1280, 800

// Allocator returns a context that starts a headless Chromium (in a
// profile folder of the test's own, no sandbox, GPU, first-run page or
// background networking, a Width x Height window) for chromedp.NewContext;
// opts add to those options. The browser stops when the test ends. A
// missing Chromium skips the test (fails it under TRIBUTARY_INTEROP=1).
func Allocator(t testing.TB, opts ...chromedp.ExecAllocatorOption) context.Context {
	t.Helper()
	if _, err := os.Stat(Path); err != nil {
		testenv.Missing(t, Path+" (Debian package chromium; `make deps-chromium`)")
	}
	all := append([]chromedp.ExecAllocatorOption{
		chromedp.ExecPath(Path),
		chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(Width, Height),
	}, opts...)
	ctx, cancel := chromedp.NewExecAllocator(context.Background(), all...)
	t.Cleanup(cancel)
	return ctx
}

// Wait polls the JavaScript predicate expr in the page of ctx (a chromedp
// context) every 50 ms until it is truthy, and fails the test, naming what
// it waited for, after timeout.
func Wait(t testing.TB, ctx context.Context, what, expr string, timeout time.Duration) {
	t.Helper()
	if _, err := chromedp.Run(ctx, chromedp.Poll[chromedp.Void](expr, chromedp.WithPollingTimeout(timeout),
		chromedp.WithPollingInterval(50*time.Millisecond))); err != nil {
		t.Fatalf("waiting for %s (%s): %v", what, expr, err)
	}
}

// Eval evaluates the JavaScript expression expr in the page of ctx and
// returns its value; an error fails the test.
func Eval[T any](t testing.TB, ctx context.Context, expr string) T {
	t.Helper()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		t.Fatalf("%s: %v", expr, err)
	}
	return v
}
