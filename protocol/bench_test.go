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

// benchPack runs decode over an encoded BME280 pack.
func benchPack(b *testing.B, in []byte, decode func([]byte) error) {
	b.SetBytes(int64(len(in)))
	b.ReportAllocs()
	for b.Loop() {
		if err := decode(in); err != nil {
			b.Fatal(err)
		}
	}
	reportReadings(b, 3)
}

// benchDecodeSenML decodes the BME280 pack, encoded by enc, into a reused
// slice.
func benchDecodeSenML(b *testing.B, enc func([]protocol.Reading, *protocol.EncodeOptions) []byte) {
	o := opts()
	dst := make([]protocol.Reading, 0, 8)
	benchPack(b, enc(bmePack(), nil), func(in []byte) (err error) {
		dst, err = protocol.DecodeSenMLInto(dst[:0], in, &o)
		return err
	})
}

func BenchmarkDecodeSenMLCBOR(b *testing.B) { benchDecodeSenML(b, protocol.EncodeSenMLCBOR) }

func BenchmarkDecodeSenMLJSON(b *testing.B) { benchDecodeSenML(b, protocol.EncodeSenMLJSON) }

// Baselines: the same pack decoded generically by encoding/json and by
// fxamacker/cbor into maps (no SenML resolution or validation).
func BenchmarkBaselineJSONGeneric(b *testing.B) {
	benchPack(b, protocol.EncodeSenMLJSON(bmePack(), nil), func(in []byte) error {
		var v []map[string]any
		return json.Unmarshal(in, &v)
	})
}

func BenchmarkBaselineFxamackerGeneric(b *testing.B) {
	benchPack(b, protocol.EncodeSenMLCBOR(bmePack(), nil), func(in []byte) error {
		var v []map[int]any
		return cbor.Unmarshal(in, &v)
	})
}

// benchEncodeSenML encodes the BME280 pack into a reused buffer.
func benchEncodeSenML(b *testing.B, appendPack func([]byte, []protocol.Reading, *protocol.EncodeOptions) []byte) {
	rs := bmePack()
	buf := make([]byte, 0, 256)
	b.ReportAllocs()
	for b.Loop() {
		buf = appendPack(buf[:0], rs, nil)
	}
	b.SetBytes(int64(len(buf)))
	reportReadings(b, 3)
}

func BenchmarkEncodeSenMLCBOR(b *testing.B) { benchEncodeSenML(b, protocol.AppendSenMLCBOR) }

func BenchmarkEncodeSenMLJSON(b *testing.B) { benchEncodeSenML(b, protocol.AppendSenMLJSON) }

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
		if err := protocol.EncodeRecords("gw-1", rs, 0, func([]byte, []protocol.Reading) error { return nil }); err != nil {
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
		if _, err := protocol.DecodeRecordInto(dst[:0], data); err != nil {
			b.Fatal(err)
		}
	}
	reportReadings(b, 300)
}
