package protocol_test

import (
	"encoding/json"
	"testing"

	"github.com/fxamacker/cbor/v2"

	"github.com/tributary-iot/tributary/protocol"
)

// A typical device message: one BME280 sample (3 readings) with a time.
func bmePack() []protocol.Reading {
	t0 := int64(1_764_000_000_250_000)
	return []protocol.Reading{
		{Name: "temperature", Unit: "Cel", Kind: protocol.KindFloat, Value: 21.37, Time: t0},
		{Name: "humidity", Unit: "%RH", Kind: protocol.KindFloat, Value: 45.123, Time: t0},
		{Name: "pressure", Unit: "Pa", Kind: protocol.KindFloat, Value: 101325.25, Time: t0},
	}
}

func reportReadings(b *testing.B, perOp int) {
	b.ReportMetric(float64(perOp*b.N)/b.Elapsed().Seconds(), "readings/s")
}

func BenchmarkDecodeSenMLCBOR(b *testing.B) {
	in := protocol.EncodeSenMLCBOR(bmePack(), nil)
	o := opts()
	dst := make([]protocol.Reading, 0, 8)
	b.SetBytes(int64(len(in)))
	b.ReportAllocs()
	for b.Loop() {
		var err error
		if dst, err = protocol.AppendSenMLCBOR(dst[:0], in, &o); err != nil {
			b.Fatal(err)
		}
	}
	reportReadings(b, 3)
}

func BenchmarkDecodeSenMLJSON(b *testing.B) {
	in := protocol.EncodeSenMLJSON(bmePack(), nil)
	o := opts()
	dst := make([]protocol.Reading, 0, 8)
	b.SetBytes(int64(len(in)))
	b.ReportAllocs()
	for b.Loop() {
		var err error
		if dst, err = protocol.AppendSenMLJSON(dst[:0], in, &o); err != nil {
			b.Fatal(err)
		}
	}
	reportReadings(b, 3)
}

// Baselines: the same pack decoded generically by encoding/json and by
// fxamacker/cbor into maps (no SenML resolution or validation).
func BenchmarkBaselineJSONGeneric(b *testing.B) {
	in := protocol.EncodeSenMLJSON(bmePack(), nil)
	b.ReportAllocs()
	for b.Loop() {
		var v []map[string]any
		if err := json.Unmarshal(in, &v); err != nil {
			b.Fatal(err)
		}
	}
	reportReadings(b, 3)
}

func BenchmarkBaselineFxamackerGeneric(b *testing.B) {
	in := protocol.EncodeSenMLCBOR(bmePack(), nil)
	b.ReportAllocs()
	for b.Loop() {
		var v []map[int]any
		if err := cbor.Unmarshal(in, &v); err != nil {
			b.Fatal(err)
		}
	}
	reportReadings(b, 3)
}

func BenchmarkEncodeSenMLCBOR(b *testing.B) {
	rs := bmePack()
	buf := make([]byte, 0, 256)
	b.ReportAllocs()
	for b.Loop() {
		buf = protocol.AppendSenMLCBORPack(buf[:0], rs, nil)
	}
	b.SetBytes(int64(len(buf)))
	reportReadings(b, 3)
}

func BenchmarkEncodeSenMLJSON(b *testing.B) {
	rs := bmePack()
	buf := make([]byte, 0, 256)
	b.ReportAllocs()
	for b.Loop() {
		buf = protocol.AppendSenMLJSONPack(buf[:0], rs, nil)
	}
	b.SetBytes(int64(len(buf)))
	reportReadings(b, 3)
}

func BenchmarkEncodeBatch(b *testing.B) {
	batch := sampleBatch(100, 10) // 3,000 readings
	buf := make([]byte, 0, 1<<20)
	b.ReportAllocs()
	for b.Loop() {
		var err error
		if buf, err = protocol.AppendBatch(buf[:0], batch); err != nil {
			b.Fatal(err)
		}
	}
	b.SetBytes(int64(len(buf)))
	b.ReportMetric(float64(len(buf))/float64(len(batch.Readings)), "bytes/reading")
	reportReadings(b, len(batch.Readings))
}

func BenchmarkDecodeBatch(b *testing.B) {
	batch := sampleBatch(100, 10)
	in, err := protocol.AppendBatch(nil, batch)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(in)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := protocol.DecodeBatch(in); err != nil {
			b.Fatal(err)
		}
	}
	reportReadings(b, len(batch.Readings))
}

func BenchmarkEncodeRecords(b *testing.B) {
	rs := deviceReadings("node-1", 300)
	b.ReportAllocs()
	for b.Loop() {
		if err := protocol.AppendRecords("gw-1", rs, 0, func([]byte, []protocol.Reading) error { return nil }); err != nil {
			b.Fatal(err)
		}
	}
	reportReadings(b, len(rs))
}

func BenchmarkDecodeRecord(b *testing.B) {
	data, err := protocol.AppendRecord(nil, "gw-1", deviceReadings("node-1", 300))
	if err != nil {
		b.Fatal(err)
	}
	dst := make([]protocol.Reading, 0, 300)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := protocol.AppendDecodeRecord(dst[:0], data); err != nil {
			b.Fatal(err)
		}
	}
	reportReadings(b, 300)
}
