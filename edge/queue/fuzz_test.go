package queue_test

import (
	"bytes"
	"encoding/binary"
	"math"
	"testing"
	"time"

	"github.com/tributary-iot/tributary/edge/queue"
)

// FuzzDecodeDeadLetter: any bytes from the deadletters bucket decode
// without panicking; what decodes survives an encode/decode round trip.
func FuzzDecodeDeadLetter(f *testing.F) {
	for _, d := range []queue.DeadLetter{
		{},
		{Time: time.UnixMicro(baseTime), Topic: "tributary/v1/devices/d1/telemetry", Reason: "bad SenML", Payload: []byte{0x81, 0xa1}},
		{Time: time.UnixMicro(-1), Topic: "é", Reason: string(bytes.Repeat([]byte{'r'}, 1024))},
		{Time: time.UnixMicro(math.MaxInt64), Payload: bytes.Repeat([]byte{0}, 300)},
	} {
		enc := queue.EncodeDeadLetter(d, queue.MaxDeadLetterPayload)
		f.Add(enc)
		f.Add(enc[:len(enc)-1])
	}
	f.Add([]byte{})
	f.Add([]byte{0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		d, err := queue.DecodeDeadLetter(b)
		if err != nil {
			return
		}
		if len(d.Topic) > 1024 || len(d.Reason) > 1024 {
			t.Fatalf("decoded an over-long topic or reason: %d, %d bytes", len(d.Topic), len(d.Reason))
		}
		again, err := queue.DecodeDeadLetter(queue.EncodeDeadLetter(d, len(d.Payload)))
		if err != nil {
			t.Fatalf("re-encoded dead letter does not decode: %v", err)
		}
		if !again.Time.Equal(d.Time) || again.Topic != d.Topic || again.Reason != d.Reason || !bytes.Equal(again.Payload, d.Payload) {
			t.Fatalf("round trip: %+v, want %+v", again, d)
		}
	})
}

func u64(v uint64) []byte { return binary.BigEndian.AppendUint64(nil, v) }

// FuzzDecodeMeta: any meta records decode without panicking, the state
// record round-trips, and an accepted state leaves seqs room to grow.
func FuzzDecodeMeta(f *testing.F) {
	good := queue.State{Next: 1, DLNext: 1}
	f.Add(u64(queue.FormatVersion), u64(7), u64(9), queue.EncodeState(good))
	f.Add(u64(queue.FormatVersion), u64(0), u64(9), queue.EncodeState(good))
	f.Add(u64(2), u64(7), u64(9), queue.EncodeState(good))
	f.Add(u64(queue.FormatVersion), u64(7), []byte{1}, queue.EncodeState(good))
	f.Add(u64(queue.FormatVersion), u64(7), u64(9), queue.EncodeState(queue.State{Next: 12_345, Appended: 12_344, Acked: 10_000, DLNext: 4}))
	f.Add(u64(queue.FormatVersion), u64(7), u64(9), queue.EncodeState(good)[:40])
	f.Fuzz(func(t *testing.T, format, epoch, salt, st []byte) {
		e, _, s, err := queue.DecodeMeta(format, epoch, salt, st)
		if err != nil {
			return
		}
		if e == 0 || s.Next == 0 || s.DLNext == 0 {
			t.Fatalf("accepted epoch %d, state %+v", e, s)
		}
		if !bytes.Equal(queue.EncodeState(s), st) {
			t.Fatalf("state %x decodes to %+v, which encodes differently", st, s)
		}
		// Seqs only grow: from an accepted state, a commit of the most
		// readings one Append may hold (it may take 2^40 bytes, so fewer
		// than 2^36 readings) and a dead letter must not wrap around.
		const most = 1 << 36
		if s.Next > math.MaxUint64-most || s.DLNext == math.MaxUint64 {
			t.Fatalf("accepted state %+v: its seqs would wrap around to reused ones", s)
		}
	})
}
