package node_test

import (
	"context"
	"fmt"
	"log/slog"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/tributary-iot/tributary/firmware/node"
	"github.com/tributary-iot/tributary/firmware/sensor"
	"github.com/tributary-iot/tributary/internal/testenv"
)

// BenchmarkFleet measures what one running node costs, for the simulator's
// fleets: b.N nodes (each with a 3-measurement sensor sampled every
// second) against a real mosquitto in another process, so the broker's
// memory is not counted. Run it with a fleet size:
//
//	go test -run '^$' -bench Fleet -benchtime 1000x ./firmware/node/
//
// It reports goroutines, live heap bytes and stack bytes per connected
// node.
func BenchmarkFleet(b *testing.B) {
	broker := testenv.StartMosquitto(b, "max_connections -1")
	goroutines0, heap0, stack0 := footprint()
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	nodes := make([]*node.Node, 0, b.N)
	b.ResetTimer()
	for i := range b.N {
		cfg := node.Config{Device: fmt.Sprintf("bench-%06d", i), Broker: broker.URL, ReconnectBackoff: 100 * time.Millisecond}
		n, err := node.New(cfg, node.Options{Sensors: []sensor.Sensor{&envSensor{}}, Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			b.Fatal(err)
		}
		nodes = append(nodes, n)
		wg.Go(func() { _ = n.Run(ctx) })
	}
	for _, n := range nodes {
		for !n.Stats().Connected {
			time.Sleep(10 * time.Millisecond)
		}
	}
	b.StopTimer()
	time.Sleep(3 * time.Second) // a few samples each: steady state
	goroutines, heap, stack := footprint()
	var published uint64
	for _, n := range nodes {
		published += n.Stats().PacksPublished
	}
	b.ReportMetric(float64(goroutines-goroutines0)/float64(b.N), "goroutines/node")
	b.ReportMetric(float64(heap-heap0)/float64(b.N), "heapB/node")
	b.ReportMetric(float64(stack-stack0)/float64(b.N), "stackB/node")
	b.ReportMetric(float64(published)/float64(b.N), "packs/node")
	cancel()
	wg.Wait()
	for _, n := range nodes {
		n.Close()
	}
}

func footprint() (goroutines int, heap, stack uint64) {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return runtime.NumGoroutine(), ms.HeapAlloc, ms.StackInuse
}
