package ingest

import (
	"fmt"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/tributary-iot/tributary/protocol"
)

// TestSeriesCapsMemory measures what one admitted series costs in
// memory (device ids and metric names of a usual length), against the
// figure in the package documentation and deploy/cloud.example.yaml.
func TestSeriesCapsMemory(t *testing.T) {
	acks, err := openAckLog(filepath.Join(t.TempDir(), "ingest.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer acks.close()
	const devices, metrics = 2000, 10
	c, _, err := openSeriesCaps(acks, devices, devices*metrics)
	if err != nil {
		t.Fatal(err)
	}
	b := &protocol.Batch{Gateway: "gateway-0001", FirstSeq: 1}
	for d := range devices {
		for m := range metrics {
			b.Readings = append(b.Readings, protocol.Reading{Device: fmt.Sprintf("sensor-node-%06d", d), Name: fmt.Sprintf("metric.name.%02d", m)})
		}
	}
	fresh := spans{{1, uint64(len(b.Readings))}}
	var m0, m1 runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&m0)
	a := c.admit(b, fresh, 20000)
	a.added = nil
	runtime.GC()
	runtime.ReadMemStats(&m1)
	per := (int64(m1.HeapAlloc) - int64(m0.HeapAlloc)) / int64(len(b.Readings))
	t.Logf("%d bytes per admitted series", per)
	if c.count() != devices*metrics || len(a.refused) != 0 {
		t.Fatalf("%d series admitted, %d refused", c.count(), len(a.refused))
	}
	if per > 150 {
		t.Errorf("%d bytes per series, the documentation says at most 150", per)
	}
	runtime.KeepAlive(c)
	runtime.KeepAlive(b)
}
