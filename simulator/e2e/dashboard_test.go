package e2e_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/tributary-iot/tributary/internal/testenv"
	"github.com/tributary-iot/tributary/internal/testenv/chromium"
	"github.com/tributary-iot/tributary/simulator/verify"
)

// TestDashboardLive is the "done when" as a test: simulator →
// agent (embedded broker) → cloud → dashboard in headless Chromium shows
// the fleet and live charts, and an anomaly the simulator injected (per
// its truth file) appears on the anomalies page.
func TestDashboardLive(t *testing.T) {
	if testing.Short() {
		t.Skip("e2e: runs the whole system")
	}
	allocCtx := chromium.Allocator(t)
	dir := t.TempDir()
	agentBin, simBin := bin(t, "tributary-agent"), bin(t, "tributary-sim")
	cloud := startCloud(t, dir, "gw-live")
	cloudAddr := cloud.addr
	agentHTTP, mqttAddr := testenv.FreeAddr(t), testenv.FreeAddr(t)
	agent := testenv.NewDaemon(t, dir, "agent", agentBin, []string{"-data", filepath.Join(dir, "agent"), "-gateway", "gw-live",
		"-cloud", "http://" + cloudAddr, "-token", cloud.token,
		"-listen", agentHTTP, "-mqtt-listen", mqttAddr, "-log-level", "warn"},
		func() bool { return httpOK("http://" + agentHTTP + "/healthz") })
	agent.Start()

	// 30 devices at 10 samples/s: the detectors learn within ~20 s; about
	// one injected anomaly every few seconds fleet-wide.
	truth := filepath.Join(dir, "truth.jsonl")
	simLog, _ := os.Create(filepath.Join(dir, "sim.log"))
	sim := exec.Command(simBin, "-broker", "tcp://"+mqttAddr, "-devices", "30", "-rate", "10", "-duration", "100s",
		"-seed", "11", "-anomaly-rate", "240", "-truth", truth, "-stats-every", "0")
	sim.Stdout, sim.Stderr = simLog, simLog
	simProc := testenv.Start(t, sim)

	browser, cancelBrowser := chromedp.NewContext(allocCtx)
	defer cancelBrowser()
	if err := chromedp.Do(browser, chromedp.EmulateViewport(chromium.Width, chromium.Height)); err != nil {
		t.Fatalf("start %s: %v", chromium.Path, err)
	}
	ctx, cancel := context.WithTimeout(browser, 3*time.Minute)
	defer cancel()
	url := "http://" + cloud.adminAddr // the dashboard is on the admin listener
	wait := func(what, expr string, timeout time.Duration) {
		t.Helper()
		chromium.Wait(t, ctx, what, expr, timeout)
	}
	shot := func(name string) {
		png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
		if err != nil {
			t.Fatalf("screenshot: %v", err)
		}
		for _, d := range []string{t.ArtifactDir(), os.Getenv("TRIBUTARY_SCREENSHOT_DIR")} {
			if d != "" {
				os.MkdirAll(d, 0o755)
				os.WriteFile(filepath.Join(d, name), png, 0o644)
			}
		}
	}

	// The fleet, live.
	if err := chromedp.Do(ctx, chromedp.Navigate(url+"/#/")); err != nil {
		t.Fatal(err)
	}
	wait("30 devices on the overview", `document.querySelectorAll('#devices tr[data-device]').length === 30`, 60*time.Second)
	wait("the gateway", `document.querySelectorAll('#gateways tr[data-gateway="gw-live"]').length === 1`, 10*time.Second)
	shot("live-overview.png")

	// A device's chart draws and grows without a reload.
	if err := chromedp.Do(ctx, chromedp.Navigate(url+"/#/device/sim-00001")); err != nil {
		t.Fatal(err)
	}
	wait("the temperature chart", `window.__tributary.chartLen('temperature') > 0`, 20*time.Second)
	n := chromium.Eval[int](t, ctx, `window.__tributary.chartLen('temperature')`)
	wait("live points", fmt.Sprintf(`window.__tributary.chartLen('temperature') > %d`, n), 20*time.Second)
	shot("live-device.png")

	// The anomalies page fills as the detectors find what the simulator
	// injects.
	if err := chromedp.Do(ctx, chromedp.Navigate(url+"/#/alerts")); err != nil {
		t.Fatal(err)
	}
	wait("alerts", `document.querySelectorAll('#alerts tr[data-alert]').length >= 3`, 100*time.Second)
	shot("live-alerts.png")
	page, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.querySelector('#alerts').innerText`))
	if err != nil {
		t.Fatal(err)
	}

	// At least one alert shown is one the simulator injected.
	if err := simProc.Wait(); err != nil {
		t.Fatalf("tributary-sim: %v", err)
	}
	tr, err := verify.LoadTruth(truth)
	if err != nil {
		t.Fatal(err)
	}
	var al struct {
		Alerts []struct {
			Device, Metric, Kind string
			Time                 time.Time
		}
	}
	if err := getJSON(url+"/api/v1/alerts?limit=1000", &al); err != nil {
		t.Fatal(err)
	}
	matched := 0
	for _, a := range al.Alerts {
		for _, e := range tr.Anomalies {
			if e.Device == a.Device && (e.Metric == "" || e.Metric == a.Metric) &&
				!a.Time.Before(e.Start) && !a.Time.After(e.End.Add(30*time.Second)) {
				matched++
				if strings.Contains(page, a.Device) {
					t.Logf("on the page: %s %s %s at %s (injected %s %s..%s)", a.Device, a.Metric, a.Kind, a.Time.Format(time.TimeOnly), e.Kind, e.Start.Format(time.TimeOnly), e.End.Format(time.TimeOnly))
				}
				break
			}
		}
	}
	t.Logf("%d alerts, %d match an injected anomaly (%d injected)", len(al.Alerts), matched, len(tr.Anomalies))
	if matched == 0 {
		t.Errorf("none of the %d alerts matches one of the %d injected anomalies", len(al.Alerts), len(tr.Anomalies))
	}
}
