package protocol_test

import (
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"os"
	"strings"
	"testing"

	"github.com/fxamacker/cbor/v2"
	"github.com/google/go-cmp/cmp"

	"github.com/tributary-iot/tributary/protocol"
)

// sampleBatch is a realistic batch: devices sending BME280 triples once a
// second, plus every value kind.
func sampleBatch(devices, samples int) *protocol.Batch {
	b := &protocol.Batch{Gateway: "gw-1", Epoch: 7, FirstSeq: 1000}
	t0 := int64(1_764_000_000_000_000)
	for s := 0; s < samples; s++ {
		for d := 0; d < devices; d++ {
			tm := t0 + int64(s)*1_000_000 + int64(d)*137
			dev := fmt.Sprintf("node-%04d", d)
			b.Readings = append(b.Readings,
				protocol.Reading{Device: dev, Name: "temperature", Unit: "Cel", Kind: protocol.KindFloat, Value: 21.37 + float64(s%7)/100, Time: tm, Received: tm + 1500},
				protocol.Reading{Device: dev, Name: "humidity", Unit: "%RH", Kind: protocol.KindFloat, Value: 45.123 + float64(d%5), Time: tm, Received: tm + 1500},
				protocol.Reading{Device: dev, Name: "pressure", Unit: "Pa", Kind: protocol.KindFloat, Value: 101325.25, Time: tm, Received: tm + 1500, Flags: protocol.FlagClockUnsynced},
			)
		}
	}
	return b
}

func allKinds() []protocol.Reading {
	t0 := int64(1_764_000_000_000_000)
	return []protocol.Reading{
		{Device: "d", Name: "f", Unit: "V", Kind: protocol.KindFloat, Value: math.Pi, Time: t0, Received: t0},
		{Device: "d", Name: "neg", Kind: protocol.KindFloat, Value: -0.001, Time: t0 - 5, Received: t0},
		{Device: "d", Name: "big", Kind: protocol.KindFloat, Value: 1e300, Time: t0, Received: t0},
		{Device: "d", Name: "int", Kind: protocol.KindFloat, Value: -42, Time: t0, Received: t0},
		{Device: "d", Name: "s", Kind: protocol.KindString, Str: "héllo", Time: t0, Received: t0},
		{Device: "d", Name: "b", Kind: protocol.KindBool, Bool: true, Time: t0, Received: t0},
		{Device: "d", Name: "raw", Kind: protocol.KindData, Data: []byte{0, 1, 2}, Time: t0, Received: t0},
		{Device: "e", Name: "count", Unit: "m3", Kind: protocol.KindNone, HasSum: true, Sum: 12.5, Time: t0, Received: t0, Flags: protocol.FlagReceiverTime},
		{Device: "e", Name: "both", Kind: protocol.KindFloat, Value: 0.5, HasSum: true, Sum: 1e-7, Time: 1, Received: 2},
	}
}

func TestBatchRoundTrip(t *testing.T) {
	for name, b := range map[string]*protocol.Batch{
		"bme280 fleet": sampleBatch(50, 4),
		"all kinds":    {Gateway: "gw:a.b_c-1", Epoch: math.MaxUint64, FirstSeq: 0, Readings: allKinds()},
	} {
		t.Run(name, func(t *testing.T) {
			enc, err := protocol.AppendBatch(nil, b)
			if err != nil {
				t.Fatal(err)
			}
			got, err := protocol.DecodeBatch(enc)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(b, got); diff != "" {
				t.Errorf("round trip (-want +got):\n%s", diff)
			}
			// fxamacker (independent) reads the envelope.
			var generic map[int]any
			if err := cbor.Unmarshal(enc, &generic); err != nil {
				t.Fatalf("fxamacker: %v", err)
			}
			if generic[1] != b.Gateway {
				t.Errorf("fxamacker sees gateway %v", generic[1])
			}
		})
	}
}

func TestBatchGolden(t *testing.T) {
	b := &protocol.Batch{Gateway: "gw-1", Epoch: 3, FirstSeq: 10, Readings: []protocol.Reading{
		{Device: "node-1", Name: "temperature", Unit: "Cel", Kind: protocol.KindFloat, Value: 21.5, Time: 1_764_000_000_000_000, Received: 1_764_000_000_001_000},
		{Device: "node-1", Name: "humidity", Unit: "%RH", Kind: protocol.KindFloat, Value: 45.25, Time: 1_764_000_000_000_000, Received: 1_764_000_000_001_000, Flags: protocol.FlagClockUnsynced},
	}}
	enc, err := protocol.AppendBatch(nil, b)
	if err != nil {
		t.Fatal(err)
	}
	got := hex.EncodeToString(enc)
	const file = "testdata/batch-v1.hex"
	if *update {
		os.WriteFile(file, []byte(got+"\n"), 0o644)
	}
	want, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if strings.TrimSpace(string(want)) != got {
		t.Errorf("encoding changed (run -update if intended, and bump batchMinor or batchMajor):\n got %s\nwant %s", got, want)
	}
	diag, _ := cbor.Diagnose(enc)
	t.Logf("diagnostic: %s", diag)
}

func TestBatchDecodeErrors(t *testing.T) {
	valid, err := protocol.AppendBatch(nil, sampleBatch(1, 1))
	if err != nil {
		t.Fatal(err)
	}
	mk := func(m map[int]any) []byte {
		b, err := cbor.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	row := []any{1, 2, 0, 1.5, int64(1_764_000_000_000_000), int64(1_764_000_000_000_000)}
	env := func(mod func(m map[int]any)) []byte {
		m := map[int]any{0: []any{1, 0}, 1: "gw", 2: 1, 3: 1, 4: []string{"", "dev", "temp"}, 5: []any{row}}
		mod(m)
		return mk(m)
	}
	if _, err := protocol.DecodeBatch(env(func(map[int]any) {})); err != nil {
		t.Fatalf("hand-built batch: %v", err)
	}
	cases := []struct {
		name string
		in   []byte
		err  error
		msg  string
	}{
		{"major version 2", env(func(m map[int]any) { m[0] = []any{2, 0} }), protocol.ErrVersion, "upgrade the cloud"},
		{"newer minor with unknown key", env(func(m map[int]any) { m[0] = []any{1, 9}; m[17] = "future" }), nil, ""},
		{"no version", env(func(m map[int]any) { delete(m, 0) }), protocol.ErrBadBatch, "version"},
		{"no readings", env(func(m map[int]any) { delete(m, 5) }), protocol.ErrBadBatch, "readings"},
		{"empty readings", env(func(m map[int]any) { m[5] = []any{} }), protocol.ErrBadBatch, "at least one"},
		{"bad gateway", env(func(m map[int]any) { m[1] = "gw 1" }), protocol.ErrBadBatch, "gateway"},
		{"string index out of range", env(func(m map[int]any) { m[5] = []any{[]any{9, 2, 0, 1, 0, 0}} }), protocol.ErrBadBatch, "string table"},
		{"invalid device id", env(func(m map[int]any) { m[4] = []string{"", "dev/1", "temp"} }), protocol.ErrBadDeviceID, "device"},
		{"invalid name", env(func(m map[int]any) { m[4] = []string{"", "dev", "te mp"} }), protocol.ErrBadName, "name"},
		{"short row", env(func(m map[int]any) { m[5] = []any{[]any{1, 2, 0, 1}} }), protocol.ErrBadBatch, "6 to 8"},
		{"value wrong type", env(func(m map[int]any) { m[5] = []any{[]any{1, 2, 0, []any{}, 0, 0}} }), protocol.ErrBadBatch, "value"},
		{"null value without sum", env(func(m map[int]any) { m[5] = []any{[]any{1, 2, 0, nil, 0, 0}} }), protocol.ErrNoValue, ""},
		{"NaN value", env(func(m map[int]any) { m[5] = []any{[]any{1, 2, 0, math.NaN(), 0, 0}} }), protocol.ErrBadBatch, "finite"},
		{"not a map", []byte{0x80}, protocol.ErrBadBatch, "map"},
		{"truncated", valid[:len(valid)-3], protocol.ErrBadBatch, ""},
		{"trailing bytes", append(append([]byte(nil), valid...), 0), protocol.ErrBadBatch, "after the end"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := protocol.DecodeBatch(c.in)
			if c.err == nil {
				if err != nil {
					t.Fatalf("err = %v, want nil", err)
				}
				return
			}
			if !errors.Is(err, c.err) {
				t.Fatalf("err = %v, want %v", err, c.err)
			}
			if !strings.Contains(err.Error(), c.msg) {
				t.Errorf("error %q does not mention %q", err, c.msg)
			}
		})
	}
	// The batch error keeps what is wrong with the gateway id.
	if _, err := protocol.DecodeBatch(env(func(m map[int]any) { m[1] = "gw 1" })); !errors.Is(err, protocol.ErrBadDeviceID) {
		t.Errorf("bad gateway: err = %v, want it to wrap ErrBadDeviceID", err)
	}
}

func TestBatchEncodeRejectsInvalid(t *testing.T) {
	for name, b := range map[string]*protocol.Batch{
		"no gateway":  {Readings: allKinds()},
		"no readings": {Gateway: "g"},
		"two values":  {Gateway: "g", Readings: []protocol.Reading{{Device: "d", Name: "n", Kind: protocol.KindFloat, Value: 1, Str: "x"}}},
		"NaN":         {Gateway: "g", Readings: []protocol.Reading{{Device: "d", Name: "n", Kind: protocol.KindFloat, Value: math.NaN()}}},
		"too many":    {Gateway: "g", Readings: make([]protocol.Reading, protocol.MaxBatchReadings+1)},
	} {
		if _, err := protocol.AppendBatch(nil, b); err == nil {
			t.Errorf("%s: AppendBatch accepted an invalid batch", name)
		}
	}
}

func TestBatchLastSeq(t *testing.T) {
	b := sampleBatch(2, 1)
	if got := b.LastSeq(); got != b.FirstSeq+5 {
		t.Errorf("LastSeq = %d, want %d", got, b.FirstSeq+5)
	}
}
