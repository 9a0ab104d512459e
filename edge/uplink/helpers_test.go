package uplink_test

import (
	"context"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/tributary-iot/tributary/edge/uplink"
	"github.com/tributary-iot/tributary/edge/uplink/uplinktest"
	"github.com/tributary-iot/tributary/internal/testenv"
	"github.com/tributary-iot/tributary/protocol"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const (
	gateway = "gw-1"
	token   = "secret-1"
)

var tokens = map[string]string{gateway: token}

// config is a fast configuration for tests against url.
func config(url string) uplink.Config {
	return uplink.Config{
		URL:          url,
		Gateway:      gateway,
		Token:        token,
		MaxReadings:  100,
		MaxAge:       20 * time.Millisecond,
		Backoff:      uplink.Backoff{Initial: time.Millisecond, Max: 20 * time.Millisecond},
		DrainTimeout: 5 * time.Second,
	}
}

// readings makes n distinct readings of one device starting at t0, one
// a millisecond, received 3 ms later.
func readings(device string, n int, t0 time.Time) []protocol.Reading {
	rs := make([]protocol.Reading, n)
	for i := range rs {
		tm := t0.Add(time.Duration(i) * time.Millisecond).UnixMicro()
		rs[i] = protocol.Reading{
			Device: device, Name: "temperature", Unit: "Cel",
			Kind: protocol.KindFloat, Value: 20 + float64(i%500)/100,
			Time: tm, Received: tm + 3000,
		}
	}
	return rs
}

// running is an uplink running in the background.
type running struct {
	u      *uplink.Uplink
	cancel context.CancelFunc
	done   chan error
	logs   *testenv.Buffer
}

// start builds and runs an uplink; it is stopped when the test ends if
// the test did not stop it.
func start(t testing.TB, src uplink.Source, cfg uplink.Config, opts ...uplink.Option) *running {
	t.Helper()
	logs := &testenv.Buffer{}
	opts = append([]uplink.Option{uplink.WithLogger(slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})))}, opts...)
	u, err := uplink.New(src, cfg, opts...)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{u: u, cancel: cancel, done: make(chan error, 1), logs: logs}
	go func() { r.done <- u.Run(ctx) }()
	t.Cleanup(func() { r.stop() })
	return r
}

// stop cancels Run and returns its result (once; later calls return nil).
func (r *running) stop() error {
	if r.cancel == nil {
		return nil
	}
	r.cancel()
	r.cancel = nil
	return <-r.done
}

// startInProcess starts an in-process cloud (for synctest bubbles) and an
// uplink using it.
func startInProcess(t testing.TB, src uplink.Source, cfg func(*uplink.Config), opts uplinktest.Options) (*uplinktest.Cloud, *running) {
	t.Helper()
	cloud := inProcessCloud(t, opts)
	return cloud, startOn(t, cloud, src, cfg)
}

// inProcessCloud is an in-process Cloud (with the test tokens unless opts
// has some), closed when the test ends.
func inProcessCloud(t testing.TB, opts uplinktest.Options) *uplinktest.Cloud {
	if opts.Tokens == nil {
		opts.Tokens = tokens
	}
	cloud := uplinktest.New(opts)
	t.Cleanup(cloud.Close)
	return cloud
}

// startOn starts an uplink sending to the in-process cloud; cfg, if not
// nil, adjusts its Config.
func startOn(t testing.TB, cloud *uplinktest.Cloud, src uplink.Source, cfg func(*uplink.Config)) *running {
	t.Helper()
	c := config(cloud.URL())
	if cfg != nil {
		cfg(&c)
	}
	return start(t, src, c, uplink.WithHTTPClient(cloud.Client()))
}

// waitFor polls cond every millisecond (fake time in a bubble) until it
// holds or timeout passes.
func waitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(time.Millisecond)
	}
}

func waitCount(t testing.TB, c *uplinktest.Cloud, n int, timeout time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if err := c.WaitCount(ctx, n); err != nil {
		t.Fatal(err)
	}
}

func fmtStats(s uplink.Stats) string { return fmt.Sprintf("%+v", s) }
