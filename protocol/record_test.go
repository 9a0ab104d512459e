package protocol_test

import (
	"errors"
	"math"
	"testing"

	"github.com/fxamacker/cbor/v2"
	"github.com/google/go-cmp/cmp"

	"github.com/tributary-iot/tributary/protocol"
)

func deviceReadings(dev string, n int) []protocol.Reading {
	t0 := int64(1_764_000_000_123_456)
	var rs []protocol.Reading
	for i := 0; i < n; i++ {
		tm := t0 + int64(i)*1_000_000
		rs = append(rs, protocol.Reading{Device: dev, Name: "temperature", Unit: "Cel", Kind: protocol.KindFloat,
			Value: 20 + float64(i%100)/10, Time: tm, Received: tm + 2_345})
	}
	return rs
}

func TestRecordRoundTrip(t *testing.T) {
	rs := append(deviceReadings("node:7", 3), protocol.Reading{Device: "node:7", Name: "open", Kind: protocol.KindBool, Bool: true,
		Time: 1_764_000_009_000_000, Received: 1_764_000_009_500_000, Flags: protocol.FlagClockUnsynced | protocol.FlagReceiverTime})
	data, err := protocol.AppendRecord(nil, "gw-1", rs)
	if err != nil {
		t.Fatal(err)
	}
	rec, err := protocol.DecodeRecord(data)
	if err != nil {
		t.Fatal(err)
	}
	if rec.Gateway != "gw-1" || rec.Device != "node:7" {
		t.Errorf("gateway %q device %q", rec.Gateway, rec.Device)
	}
	if diff := cmp.Diff(rs, rec.Readings); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}

	// A plain SenML reader (ours, without stream labels; and fxamacker)
	// sees "{device}:{metric}" names and absolute times.
	plain, err := protocol.DecodeSenML(data, protocol.DecodeOptions{Now: 1})
	if err != nil {
		t.Fatal(err)
	}
	if plain[0].Name != "node:7:temperature" || plain[0].Time != rs[0].Time || plain[0].Flags&protocol.FlagReceiverTime != 0 {
		t.Errorf("generic decode: %+v", plain[0])
	}
	var generic []map[any]any
	if err := cbor.Unmarshal(data, &generic); err != nil {
		t.Fatal(err)
	}
	if generic[0][int64(-2)] != "node:7:" || generic[0]["gw"] != "gw-1" {
		t.Errorf("fxamacker sees first record %v", generic[0])
	}
	bt := generic[0][int64(-3)].(float64)
	if math.Abs(bt-1764000000.123456) > 1e-6 {
		t.Errorf("bt = %v", bt)
	}
}

func TestEncodeRecordsSplits(t *testing.T) {
	rs := deviceReadings("node-1", 5000)
	var got []protocol.Reading
	records := 0
	err := protocol.EncodeRecords("gw-1", rs, 0, func(data []byte, part []protocol.Reading) error {
		records++
		if len(data) > protocol.TargetRecordBytes {
			t.Errorf("record of %d bytes exceeds target %d", len(data), protocol.TargetRecordBytes)
		}
		if len(data) < protocol.TargetRecordBytes*9/10 && len(got)+len(part) < len(rs) {
			t.Errorf("non-final record only %d bytes: split too eagerly", len(data))
		}
		rec, err := protocol.DecodeRecord(data)
		if err != nil {
			return err
		}
		if diff := cmp.Diff(part, rec.Readings); diff != "" {
			t.Fatalf("record %d (-want +got):\n%s", records, diff)
		}
		got = append(got, rec.Readings...)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if records < 2 {
		t.Fatalf("5000 readings fit in %d record(s)?", records)
	}
	if diff := cmp.Diff(rs, got); diff != "" {
		t.Errorf("readings lost or reordered (-want +got):\n%s", diff)
	}
}

func TestRecordErrors(t *testing.T) {
	mixed := append(deviceReadings("a", 1), deviceReadings("b", 1)...)
	if _, err := protocol.AppendRecord(nil, "gw", mixed); !errors.Is(err, protocol.ErrBadRecord) {
		t.Errorf("two devices in one record: err = %v", err)
	}
	if _, err := protocol.AppendRecord(nil, "bad gw", deviceReadings("a", 1)); !errors.Is(err, protocol.ErrBadRecord) || !errors.Is(err, protocol.ErrBadDeviceID) {
		t.Errorf("bad gateway: err = %v, want ErrBadRecord wrapping ErrBadDeviceID", err)
	}
	noTime := deviceReadings("a", 1)
	noTime[0].Time = 0
	if _, err := protocol.AppendRecord(nil, "gw", noTime); !errors.Is(err, protocol.ErrBadRecord) {
		t.Errorf("no time: err = %v", err)
	}
	// A device pack (no bn, no gw/rt) is not a stream record.
	pack := protocol.EncodeSenMLCBOR(deviceReadings("a", 2), nil)
	if _, err := protocol.DecodeRecord(pack); !errors.Is(err, protocol.ErrBadRecord) {
		t.Errorf("device pack as record: err = %v", err)
	}
	// Relative time in a stream record.
	rel, _ := cbor.Marshal([]map[any]any{{-2: "a:", "gw": "g", 0: "x", 2: 1, 6: -5, "rt": 1.7e9}})
	if _, err := protocol.DecodeRecord(rel); !errors.Is(err, protocol.ErrBadRecord) {
		t.Errorf("relative time: err = %v", err)
	}
	// A record whose SenML is bad keeps the SenML error: what and where.
	badName, _ := cbor.Marshal([]map[any]any{{-2: "a:", "gw": "g", 0: "x", 2: 1, 6: 1.7e9, "rt": 1.7e9}, {0: "has space", 2: 1, "rt": 1.7e9}})
	_, err := protocol.DecodeRecord(badName)
	var se *protocol.SenMLError
	if !errors.Is(err, protocol.ErrBadRecord) || !errors.Is(err, protocol.ErrBadName) || !errors.As(err, &se) || se.Index != 1 || se.Label != "n" {
		t.Errorf("bad name in a record: err = %v (SenML error %+v), want ErrBadRecord wrapping ErrBadName at record 1, label n", err, se)
	}
}
