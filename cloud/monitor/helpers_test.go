package monitor_test

import (
	"bytes"
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/tributary-iot/tributary/cloud/consumer"
	"github.com/tributary-iot/tributary/cloud/monitor"
	"github.com/tributary-iot/tributary/protocol"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// rec builds one stream record of a device's float readings, value v at
// each of the device times ts (µs), received 1 ms after and arriving now.
func rec(gw, device, metric string, v float64, ts ...int64) consumer.Record {
	r := consumer.Record{Gateway: gw, Device: device, PartitionKey: device, Arrival: time.Now(),
		Data: make([]byte, 100)}
	for _, t := range ts {
		r.Readings = append(r.Readings, protocol.Reading{Device: device, Name: metric, Unit: "Cel",
			Kind: protocol.KindFloat, Value: v, Time: t, Received: t + 1000})
	}
	return r
}

// batch assembles records into a consumer batch of a shard.
func batch(shard string, recs ...consumer.Record) consumer.Batch {
	b := consumer.Batch{Stream: "telemetry", Shard: shard, Records: recs}
	for _, r := range recs {
		b.Readings = append(b.Readings, r.Readings...)
	}
	return b
}

func handle(t *testing.T, m *monitor.Monitor, b consumer.Batch) {
	t.Helper()
	if err := m.HandleBatch(context.Background(), b); err != nil {
		t.Fatalf("HandleBatch: %v", err)
	}
}

// charted returns a series' raw points over the last 5 minutes and its
// entry in its device's metrics.
func charted(t *testing.T, m *monitor.Monitor, device, metric string) (monitor.SeriesData, monitor.Metric) {
	t.Helper()
	d, err := m.Series(device, metric, "5m", time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	dev, err := m.Device(device)
	if err != nil {
		t.Fatal(err)
	}
	for _, mt := range dev.Series {
		if mt.Name == metric {
			return d, mt
		}
	}
	t.Fatalf("device %s has no metric %s: %+v", device, metric, dev.Series)
	return d, monitor.Metric{}
}

// us returns now as device time.
func us() int64 { return time.Now().UnixMicro() }

// sseRecorder is a ResponseWriter for the events handler inside a
// synctest bubble (real sockets are not durably blocking there). Writes
// block while block is set.
type sseRecorder struct {
	mu    sync.Mutex
	h     http.Header
	code  int
	buf   bytes.Buffer
	block chan struct{}
}

func newSSERecorder() *sseRecorder { return &sseRecorder{h: http.Header{}} }

func (r *sseRecorder) Header() http.Header { return r.h }
func (r *sseRecorder) WriteHeader(code int) {
	r.mu.Lock()
	r.code = code
	r.mu.Unlock()
}
func (r *sseRecorder) Write(b []byte) (int, error) {
	if r.block != nil {
		<-r.block
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.buf.Write(b)
}
func (r *sseRecorder) Flush() {}
func (r *sseRecorder) String() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.buf.String()
}

// events splits an SSE body into (event, data) pairs; comments become
// event ":".
func events(body string) [][2]string {
	var out [][2]string
	for _, block := range strings.Split(body, "\n\n") {
		var ev, data string
		for _, line := range strings.Split(block, "\n") {
			switch {
			case strings.HasPrefix(line, ":"):
				out = append(out, [2]string{":", strings.TrimSpace(line[1:])})
			case strings.HasPrefix(line, "event: "):
				ev = line[len("event: "):]
			case strings.HasPrefix(line, "data: "):
				data = line[len("data: "):]
			}
		}
		if ev != "" {
			out = append(out, [2]string{ev, data})
		}
	}
	return out
}
