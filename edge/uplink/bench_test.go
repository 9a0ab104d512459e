package uplink_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/tributary-iot/tributary/edge/uplink"
	"github.com/tributary-iot/tributary/edge/uplink/uplinktest"
	"github.com/tributary-iot/tributary/protocol"
)

// bmeFleet is the realistic workload: devices BME280 nodes, each sampling
// temperature (°C, 2 decimals), humidity (%RH, 3 decimals) and pressure
// (Pa, 2 decimals) once a second at its own phase, received by the
// gateway 2–8 ms later, for seconds seconds, in arrival order. Values
// wander like a room's: a random walk at the sensor's resolution.
func bmeFleet(devices, seconds int) []protocol.Reading {
	rng := rand.New(rand.NewPCG(42, 1))
	type dev struct {
		id               string
		phase            int64
		temp, hum, press float64
	}
	ds := make([]dev, devices)
	for i := range ds {
		ds[i] = dev{
			id:    fmt.Sprintf("bme-%04d", i+1),
			phase: rng.Int64N(1_000_000),
			temp:  18 + 6*rng.Float64(),
			hum:   35 + 20*rng.Float64(),
			press: 100_500 + 1500*rng.Float64(),
		}
	}
	slices.SortFunc(ds, func(a, b dev) int { return int(a.phase - b.phase) })
	round := func(v float64, decimals int) float64 {
		p := math.Pow10(decimals)
		return math.Round(v*p) / p
	}
	t0 := int64(1_764_000_000) * 1_000_000
	rs := make([]protocol.Reading, 0, 3*devices*seconds)
	for s := range seconds {
		for i := range ds {
			d := &ds[i]
			d.temp += 0.01 * float64(rng.IntN(3)-1)
			d.hum += 0.004 * rng.NormFloat64()
			d.press += 1.5 * rng.NormFloat64()
			tm := t0 + int64(s)*1_000_000 + d.phase
			rcv := tm + 2000 + rng.Int64N(6000)
			for _, m := range []struct {
				name, unit string
				v          float64
			}{{"temperature", "Cel", round(d.temp, 2)}, {"humidity", "%RH", round(d.hum, 3)}, {"pressure", "Pa", round(d.press, 2)}} {
				rs = append(rs, protocol.Reading{Device: d.id, Name: m.name, Unit: m.unit,
					Kind: protocol.KindFloat, Value: m.v, Time: tm, Received: rcv})
			}
		}
	}
	return rs
}

// BenchmarkWireBytes reports the bytes per reading on the wire for the
// BME280 fleet workload (1,000 devices, 5,000-reading batches): the
// uplink's batches through the whole uplink (zstd, gzip, none), next to
// the same readings as SenML JSON and SenML CBOR, one pack per device
// message, and SenML JSON gzip'd per 5,000 readings.
//
//	go test -run '^$' -bench WireBytes ./edge/uplink
func BenchmarkWireBytes(b *testing.B) {
	rs := bmeFleet(1000, 20) // 60,000 readings, 12 batches
	for _, comp := range []string{uplink.CompressionZstd, uplink.CompressionGzip, uplink.CompressionNone} {
		b.Run("batch-"+comp, func(b *testing.B) {
			var wire, n uint64
			for b.Loop() {
				src := uplink.NewMemSource(1)
				src.Append(rs...)
				cloud := uplinktest.New(uplinktest.Options{Tokens: tokens})
				cfg := config(cloud.URL())
				cfg.Compression = comp
				cfg.MaxReadings = 5000
				u, err := uplink.New(src, cfg, uplink.WithHTTPClient(cloud.Client()))
				if err != nil {
					b.Fatal(err)
				}
				ctx, cancel := context.WithCancel(context.Background())
				done := make(chan error)
				go func() { done <- u.Run(ctx) }()
				wctx, wcancel := context.WithTimeout(ctx, time.Minute)
				err = cloud.WaitCount(wctx, len(rs))
				wcancel()
				cancel()
				<-done
				cloud.Close()
				if err != nil {
					b.Fatal(err)
				}
				s := u.Stats()
				wire, n = s.BytesCompressed, s.ReadingsAcked
			}
			b.ReportMetric(float64(wire)/float64(n), "B/reading")
			b.ReportMetric(float64(len(rs)*b.N)/b.Elapsed().Seconds(), "readings/s")
		})
	}
	// Baselines: one SenML pack per device message (3 readings), with
	// bn "{device}:" so the device travels with it, as a JSON uplink would.
	msgs := func(enc func([]protocol.Reading, *protocol.EncodeOptions) []byte) [][]byte {
		var out [][]byte
		for i := 0; i < len(rs); i += 3 {
			out = append(out, enc(rs[i:i+3], &protocol.EncodeOptions{BaseName: rs[i].Device + ":"}))
		}
		return out
	}
	for _, base := range []struct {
		name string
		enc  func([]protocol.Reading, *protocol.EncodeOptions) []byte
	}{{"senml-json", protocol.EncodeSenMLJSON}, {"senml-cbor", protocol.EncodeSenMLCBOR}} {
		b.Run(base.name, func(b *testing.B) {
			var total int
			for b.Loop() {
				total = 0
				for _, m := range msgs(base.enc) {
					total += len(m)
				}
			}
			b.ReportMetric(float64(total)/float64(len(rs)), "B/reading")
		})
	}
	b.Run("senml-json-gzip", func(b *testing.B) {
		// The device messages of each 5,000 readings as one JSON array,
		// gzip'd (default level) as one request body.
		ms := msgs(protocol.EncodeSenMLJSON)
		var total int
		for b.Loop() {
			total = 0
			for i := 0; i < len(ms); i += 5000 / 3 {
				var body bytes.Buffer
				zw := gzip.NewWriter(&body)
				zw.Write([]byte("["))
				for k, m := range ms[i:min(i+5000/3, len(ms))] {
					if k > 0 {
						zw.Write([]byte(","))
					}
					zw.Write(m)
				}
				zw.Write([]byte("]"))
				zw.Close()
				total += body.Len()
			}
		}
		b.ReportMetric(float64(total)/float64(len(rs)), "B/reading")
	})
}
