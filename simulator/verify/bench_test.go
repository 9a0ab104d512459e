package verify_test

import (
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/tributary-iot/tributary/protocol"
	"github.com/tributary-iot/tributary/simulator/model"
	"github.com/tributary-iot/tributary/simulator/verify"
)

// BenchmarkCheckerMemory measures what the Checker holds per unique
// reading: 1,000 devices × 3 metrics × 1,000 samples, heap in use after a
// GC (reported as bytes/reading), and the time per reading.
func BenchmarkCheckerMemory(b *testing.B) {
	const devices, samples = 1000, 1000
	var events []model.Event
	for d := range devices {
		events = append(events, published(fmt.Sprintf("dev-%04d", d), samples))
	}
	tr := mustTruth(b, events...)
	batch := make([]protocol.Reading, 3)
	for b.Loop() {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		c := verify.NewChecker(tr, nil)
		for k := range samples {
			for d := range devices {
				copy(batch, sample(events[d].Device, k))
				c.AddReadings(batch, t0.Add(time.Duration(k)*time.Second))
			}
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/(devices*samples*3), "bytes/reading")
		runtime.KeepAlive(c)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*devices*samples*3), "ns/reading")
}
