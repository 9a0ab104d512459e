package protocol_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/tributary-iot/tributary/protocol"
)

// Every decoder of outside input has a fuzz target. Each checks that the
// decoder never panics, and that what it accepts survives a round trip
// through our encoder unchanged.

func addSenMLSeeds(f *testing.F) {
	for _, c := range senmlCases(f) {
		if c.json != "" {
			f.Add([]byte(c.json))
		}
		if c.cborv != nil {
			f.Add(cb(f, c.cborv))
		}
		if c.cbraw != nil {
			f.Add(c.cbraw)
		}
	}
	files, _ := filepath.Glob("testdata/rfc8428/*")
	for _, p := range files {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b)
		}
	}
}

func FuzzDecodeSenML(f *testing.F) {
	addSenMLSeeds(f)
	f.Fuzz(func(t *testing.T, in []byte) {
		rs, err := protocol.DecodeSenML(in, opts())
		if err != nil {
			return
		}
		// Differential check of our JSON scanner against encoding/json.
		if f, _ := protocol.DetectFormat(in); f == protocol.FormatJSON && !json.Valid(in) {
			t.Fatalf("accepted invalid JSON %q", in)
		}
		for i := range rs {
			if err := rs[i].Validate(); err != nil {
				t.Fatalf("decoder accepted an invalid reading %d: %v", i, err)
			}
			rs[i].Flags = 0
		}
		for _, enc := range []func([]protocol.Reading, *protocol.EncodeOptions) []byte{protocol.EncodeSenMLCBOR, protocol.EncodeSenMLJSON} {
			b := enc(rs, nil)
			again, err := protocol.DecodeSenML(b, opts())
			if err != nil {
				t.Fatalf("re-decode of %q: %v", b, err)
			}
			for i := range again {
				again[i].Flags = 0
			}
			if diff := cmp.Diff(rs, again); diff != "" {
				t.Fatalf("round trip changed readings (-first +second):\n%s", diff)
			}
		}
	})
}

func FuzzDecodeBatch(f *testing.F) {
	for _, b := range []*protocol.Batch{sampleBatch(3, 2), {Gateway: "g", Epoch: 1, Readings: allKinds()}} {
		enc, err := protocol.AppendBatch(nil, b)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(enc)
	}
	f.Add([]byte{0xa0})
	f.Fuzz(func(t *testing.T, in []byte) {
		b, err := protocol.DecodeBatch(in)
		if err != nil {
			return
		}
		enc, err := protocol.AppendBatch(nil, b)
		if err != nil {
			t.Fatalf("decoded batch does not encode: %v", err)
		}
		again, err := protocol.DecodeBatch(enc)
		if err != nil {
			t.Fatalf("re-decode: %v", err)
		}
		again.Minor = b.Minor
		if diff := cmp.Diff(b, again); diff != "" {
			t.Fatalf("round trip (-first +second):\n%s", diff)
		}
	})
}

func FuzzDecodeRecord(f *testing.F) {
	data, err := protocol.AppendRecord(nil, "gw-1", append(deviceReadings("n1", 3), allKinds()[0]))
	if err == nil {
		f.Add(data)
	}
	data, _ = protocol.AppendRecord(nil, "gw-1", deviceReadings("n1", 3))
	f.Add(data)
	f.Fuzz(func(t *testing.T, in []byte) {
		rec, err := protocol.DecodeRecord(in)
		if err != nil {
			return
		}
		enc, err := protocol.AppendRecord(nil, rec.Gateway, rec.Readings)
		if err != nil {
			t.Fatalf("decoded record does not encode: %v", err)
		}
		again, err := protocol.DecodeRecord(enc)
		if err != nil {
			t.Fatalf("re-decode: %v", err)
		}
		if diff := cmp.Diff(rec, again); diff != "" {
			t.Fatalf("round trip (-first +second):\n%s", diff)
		}
	})
}

func FuzzParseTopic(f *testing.F) {
	for _, s := range []string{protocol.TelemetryTopic("a"), protocol.CommandTopic("a", "ping"), "tributary/v1/devices/x/status", "x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		tp, err := protocol.ParseTopic(s)
		if err != nil {
			return
		}
		var back string
		switch tp.Kind {
		case protocol.TopicTelemetry:
			back = protocol.TelemetryTopic(tp.Device)
		case protocol.TopicStatus:
			back = protocol.StatusTopic(tp.Device)
		case protocol.TopicCommand:
			back = protocol.CommandTopic(tp.Device, tp.Command)
		}
		if back != s {
			t.Fatalf("ParseTopic(%q) = %+v, which formats as %q", s, tp, back)
		}
	})
}
