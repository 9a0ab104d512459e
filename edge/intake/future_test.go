package intake_test

import (
	"bytes"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tributary-iot/tributary/edge/intake"
	"github.com/tributary-iot/tributary/protocol"
)

// futureRun publishes, through an embedded intake with the given future
// margin, one pack of three readings of dev-1: on time, 5 min ahead and
// a year ahead of now. It returns the readings stored, the intake's
// Stats, tributary_intake_future_readings_total and the log.
func futureRun(t *testing.T, margin time.Duration) ([]protocol.Reading, intake.Stats, float64, string) {
	t.Helper()
	store := &memStore{}
	reg := prometheus.NewRegistry()
	var mu sync.Mutex
	var logBuf bytes.Buffer
	log := slog.New(slog.NewTextHandler(writerFunc(func(p []byte) (int, error) {
		mu.Lock()
		defer mu.Unlock()
		return logBuf.Write(p)
	}), nil))
	e, err := intake.NewEmbedded(intake.EmbeddedConfig{Listen: "127.0.0.1:0"}, store,
		intake.Options{Clock: testClock{}, Logger: log, Registerer: reg, FutureMargin: margin})
	if err != nil {
		t.Fatal(err)
	}
	start(t, e)
	waitFor(t, 5*time.Second, "the broker to serve", func() bool { return e.Stats().Connected })
	now := time.Now()
	var rs []protocol.Reading
	for i, ahead := range []time.Duration{0, 5 * time.Minute, 365 * 24 * time.Hour} {
		rs = append(rs, protocol.Reading{Device: "dev-1", Name: "m", Kind: protocol.KindFloat,
			Value: float64(i), Time: now.Add(ahead).UnixMicro()})
	}
	pub := publisher(t, "tcp://"+e.Addr(), "dev-1")
	publish(t, pub, protocol.TelemetryTopic("dev-1"), protocol.EncodeSenMLJSON(rs, nil))
	waitFor(t, 5*time.Second, "the readings", func() bool { return e.Stats().Acked == 1 })
	_, _, stored, _ := store.snapshot()
	n, _ := metric(t, reg, "tributary_intake_future_readings_total")
	mu.Lock()
	defer mu.Unlock()
	return stored, e.Stats(), n, logBuf.String()
}

// TestFutureReadingsFlagged: a reading stamped beyond the margin (default
// 10 min) after reception is kept unchanged but counted and logged; one
// within the margin is not.
func TestFutureReadingsFlagged(t *testing.T) {
	rs, st, n, log := futureRun(t, 0)
	if len(rs) != 3 || rs[2].Value != 2 || rs[2].Time-rs[2].Received < int64(364*24*time.Hour/time.Microsecond) {
		t.Fatalf("stored %v: want all 3 readings kept, the last a year ahead", rs)
	}
	if st.Future != 1 || n != 1 || st.Readings != 3 {
		t.Errorf("Stats.Future %d, metric %v, readings %d: want 1, 1 and 3", st.Future, n, st.Readings)
	}
	if !strings.Contains(log, "readings stamped in the future") || !strings.Contains(log, "device=dev-1") {
		t.Errorf("log does not report the future reading:\n%s", log)
	}
}

// TestFutureReadingsMarginOff: a negative margin disables the check.
func TestFutureReadingsMarginOff(t *testing.T) {
	rs, st, n, log := futureRun(t, -1)
	if len(rs) != 3 || st.Future != 0 || n != 0 || strings.Contains(log, "in the future") {
		t.Errorf("stored %d, Stats.Future %d, metric %v, log %q: want 3 kept and nothing flagged", len(rs), st.Future, n, log)
	}
}
