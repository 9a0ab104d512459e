package queue_test

import (
	"encoding/binary"
	"errors"
	"hash/crc32"
	"math"
	"strings"
	"testing"

	"github.com/tributary-iot/tributary/edge/queue"
	"github.com/tributary-iot/tributary/protocol"
)

// withCRC prefixes body with its CRC-32C, making a well-framed entry.
func withCRC(body ...byte) []byte {
	b := binary.BigEndian.AppendUint32(nil, crc32.Checksum(body, crc32.MakeTable(crc32.Castagnoli)))
	return append(b, body...)
}

// One table drives encode and decode: each valid case is a reading and
// its exact encoding.
var entryCases = []struct {
	name string
	r    protocol.Reading
	body []byte // encoding without the CRC
}{
	{"float", protocol.Reading{Device: "d", Name: "t", Unit: "Cel", Kind: protocol.KindFloat, Value: 1.5, Time: 1, Received: 3},
		[]byte{0x01, 0, 1, 'd', 1, 't', 3, 'C', 'e', 'l', 2, 4, 0x3f, 0xf8, 0, 0, 0, 0, 0, 0}},
	{"string", protocol.Reading{Device: "d", Name: "n", Kind: protocol.KindString, Str: "hi", Time: -1, Received: -1},
		[]byte{0x02, 0, 1, 'd', 1, 'n', 0, 1, 0, 2, 'h', 'i'}},
	{"bool true", protocol.Reading{Device: "d", Name: "n", Kind: protocol.KindBool, Bool: true},
		[]byte{0x13, 0, 1, 'd', 1, 'n', 0, 0, 0}},
	{"bool false", protocol.Reading{Device: "d", Name: "n", Kind: protocol.KindBool},
		[]byte{0x03, 0, 1, 'd', 1, 'n', 0, 0, 0}},
	{"data", protocol.Reading{Device: "d", Name: "n", Kind: protocol.KindData, Data: []byte{0, 0xff}},
		[]byte{0x04, 0, 1, 'd', 1, 'n', 0, 0, 0, 2, 0, 0xff}},
	{"sum only, flags", protocol.Reading{Device: "d", Name: "n", Kind: protocol.KindNone, HasSum: true, Sum: -2,
		Flags: protocol.FlagReceiverTime | protocol.FlagClockUnsynced},
		[]byte{0x08, 3, 1, 'd', 1, 'n', 0, 0, 0, 0xc0, 0, 0, 0, 0, 0, 0, 0}},
	{"value and sum", protocol.Reading{Device: "d", Name: "n", Kind: protocol.KindFloat, Value: 0, HasSum: true, Sum: 1},
		[]byte{0x09, 0, 1, 'd', 1, 'n', 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x3f, 0xf0, 0, 0, 0, 0, 0, 0}},
}

func TestEntryEncoding(t *testing.T) {
	for _, c := range entryCases {
		t.Run(c.name, func(t *testing.T) {
			got, err := queue.EncodeEntry(&c.r)
			if err != nil {
				t.Fatal(err)
			}
			if want := withCRC(c.body...); string(got) != string(want) {
				t.Fatalf("encoding\n got % x\nwant % x", got, want)
			}
			r, err := queue.DecodeEntry(got)
			if err != nil {
				t.Fatal(err)
			}
			if !r.Equal(&c.r) {
				t.Fatalf("decoded %+v, want %+v", r, c.r)
			}
		})
	}
}

func TestEntryRoundTripLimits(t *testing.T) {
	r := protocol.Reading{
		Device: strings.Repeat("d", protocol.MaxDeviceIDBytes), Name: strings.Repeat("n", protocol.MaxNameBytes),
		Unit: strings.Repeat("u", protocol.MaxUnitBytes), Kind: protocol.KindString,
		Str:  strings.Repeat("s", protocol.MaxStringValueBytes),
		Time: protocol.MaxTimeMicros - 1, Received: -protocol.MaxTimeMicros + 1, HasSum: true, Sum: math.MaxFloat64,
	}
	b, err := queue.EncodeEntry(&r)
	if err != nil {
		t.Fatal(err)
	}
	got, err := queue.DecodeEntry(b)
	if err != nil || !got.Equal(&r) {
		t.Fatalf("round trip at the limits: %v", err)
	}
	r.Unit += "u"
	if _, err := queue.EncodeEntry(&r); err == nil {
		t.Fatal("encoded a unit over the limit")
	}
}

func TestEntryDecodeRejects(t *testing.T) {
	valid := withCRC(entryCases[0].body...)
	badCRC := append([]byte(nil), valid...)
	badCRC[len(badCRC)-1] ^= 1
	nan := binary.BigEndian.AppendUint64([]byte{0x01, 0, 1, 'd', 1, 'n', 0, 0, 0}, math.Float64bits(math.NaN()))
	for _, c := range []struct {
		name string
		b    []byte
	}{
		{"empty", nil},
		{"short", []byte{0, 0, 0}},
		{"bad checksum", badCRC},
		{"reserved header bits", withCRC(0x21, 0, 1, 'd', 1, 'n', 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)},
		{"unknown kind", withCRC(0x05, 0, 1, 'd', 1, 'n', 0, 0, 0)},
		{"bool bit on a float", withCRC(0x11, 0, 1, 'd', 1, 'n', 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)},
		{"empty device", withCRC(0x03, 0, 0, 1, 'n', 0, 0, 0)},
		{"device length past the end", withCRC(0x03, 0, 9, 'd')},
		{"unit over the limit", withCRC(append(append([]byte{0x03, 0, 1, 'd', 1, 'n', 33}, strings.Repeat("u", 33)...), 0, 0)...)},
		{"truncated time", withCRC(0x03, 0, 1, 'd', 1, 'n', 0, 0x80)},
		{"time out of range", withCRC(binary.AppendVarint([]byte{0x03, 0, 1, 'd', 1, 'n', 0}, protocol.MaxTimeMicros)...)},
		{"truncated float", withCRC(0x01, 0, 1, 'd', 1, 'n', 0, 0, 0, 0x3f)},
		{"NaN", withCRC(nan...)},
		{"neither value nor sum", withCRC(0x00, 0, 1, 'd', 1, 'n', 0, 0, 0)},
		{"trailing bytes", withCRC(0x03, 0, 1, 'd', 1, 'n', 0, 0, 0, 7)},
	} {
		t.Run(c.name, func(t *testing.T) {
			if _, err := queue.DecodeEntry(c.b); !errors.Is(err, queue.ErrEntry) {
				t.Fatalf("err = %v, want a bad entry", err)
			}
		})
	}
}

// FuzzDecodeEntry: the decoder takes bytes from a file that may be
// damaged. The harness frames the input with a valid CRC so the fuzzer
// reaches the parser. Whatever decodes re-encodes to a reading that
// decodes equal.
func FuzzDecodeEntry(f *testing.F) {
	for _, c := range entryCases {
		f.Add(c.body)
	}
	f.Add([]byte{0x04, 0, 1, 'd', 1, 'n', 0, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01, 0, 0})
	f.Fuzz(func(t *testing.T, body []byte) {
		for _, b := range [][]byte{body, withCRC(body...)} {
			r, err := queue.DecodeEntry(b)
			if err != nil {
				continue
			}
			enc, err := queue.EncodeEntry(&r)
			if err != nil {
				t.Fatalf("decoded a reading that does not encode: %v", err)
			}
			r2, err := queue.DecodeEntry(enc)
			if err != nil || !r2.Equal(&r) {
				t.Fatalf("re-encoded reading decodes to %+v, %v; want %+v", r2, err, r)
			}
		}
	})
}
