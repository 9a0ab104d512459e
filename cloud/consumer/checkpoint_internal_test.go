package consumer

import (
	"encoding/json"
	"testing"
	"time"
)

// FuzzDecodeCheckpoint: a stored checkpoint decodes to an error on
// garbage, never a panic, and what decodes survives a round trip.
func FuzzDecodeCheckpoint(f *testing.F) {
	for _, cp := range []Checkpoint{
		{SequenceNumber: "49590338271490256608559692538361571095921575989136588898", Updated: time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC)},
		{Ended: true, Updated: time.Unix(0, 0).UTC()},
	} {
		v, err := json.Marshal(cp)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(v)
	}
	f.Add([]byte(`{"seq":"12ab","updated":"2026-01-01T00:00:00Z"}`))
	f.Add([]byte(`{"seq":1}`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, v []byte) {
		cp, err := decodeCheckpoint(v)
		if err != nil {
			return
		}
		enc, err := json.Marshal(cp)
		if err != nil {
			t.Fatalf("%q decodes to %+v, which does not encode: %v", v, cp, err)
		}
		again, err := decodeCheckpoint(enc)
		if err != nil || again.SequenceNumber != cp.SequenceNumber || again.Ended != cp.Ended || !again.Updated.Equal(cp.Updated) {
			t.Fatalf("%q decodes to %+v, which round-trips as %+v, %v", v, cp, again, err)
		}
	})
}
