package protocol_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"testing"

	"github.com/tributary-iot/tributary/protocol"
)

// cborHead appends a CBOR head with an 8-byte argument when it needs one.
func cborHead(b []byte, major byte, n uint64) []byte {
	switch {
	case n < 24:
		return append(b, major<<5|byte(n))
	case n <= 0xffffffff:
		return binary.BigEndian.AppendUint32(append(b, major<<5|26), uint32(n))
	}
	return binary.BigEndian.AppendUint64(append(b, major<<5|27), n)
}

func cborText(b []byte, s string) []byte { return append(cborHead(b, 3, uint64(len(s))), s...) }

// bombBatch builds a batch map by hand: gateway, string table and readings
// are raw CBOR, so they can claim and hold what an encoder never writes.
func bombBatch(gateway, strs, rows []byte) []byte {
	b := []byte{0xa6, 0x00, 0x82, 0x01, 0x00, 0x01}
	b = append(b, gateway...)
	b = append(b, 0x02, 0x01, 0x03, 0x01, 0x04)
	b = append(b, strs...)
	b = append(b, 0x05)
	return append(b, rows...)
}

// A valid string table ["", "dev", "temp"] and one row using it.
var (
	bombGateway = cborText(nil, "gw")
	bombStrings = cborText(cborText(cborText([]byte{0x83}, ""), "dev"), "temp")
	bombRows    = []byte{0x81, 0x86, 0x01, 0x02, 0x00, 0x01, 0x00, 0x00}
)

// allocated returns the bytes f allocates per call, over a few calls.
func allocated(f func()) uint64 {
	const runs = 5
	f() // warm up
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for range runs {
		f()
	}
	runtime.ReadMemStats(&after)
	return (after.TotalAlloc - before.TotalAlloc) / runs
}

// TestDecodeBatchBombs: a body that declares or holds far more than its
// readings can use is refused, and refusing it costs little memory, far
// less than the body itself (which a compressed request gets for a few
// hundred bytes on the wire).
func TestDecodeBatchBombs(t *testing.T) {
	if _, err := protocol.DecodeBatch(bombBatch(bombGateway, bombStrings, bombRows)); err != nil {
		t.Fatalf("hand-built batch: %v", err)
	}
	const big = 1 << 20
	emptyStrings := cborHead(nil, 4, big)
	emptyStrings = append(emptyStrings, bytes.Repeat([]byte{0x60}, big)...)
	longEntry := cborText(cborText([]byte{0x83}, ""), "dev")
	longEntry = cborText(longEntry, strings.Repeat("t", big))
	row := func(value []byte) []byte {
		return append(append([]byte{0x81, 0x86, 0x01, 0x02, 0x00}, value...), 0x00, 0x00)
	}
	chunked := []byte{0x5f} // indefinite-length bytes: 1 KiB chunks
	for range big / 1024 {
		chunked = append(cborHead(chunked, 2, 1024), make([]byte, 1024)...)
	}
	chunked = append(chunked, 0xff)
	filler := append(cborHead(nil, 4, 50_000), make([]byte, 50_000)...)
	unused := []byte{0x85}
	for _, s := range []string{"", "dev", "temp", "x", "y"} {
		unused = cborText(unused, s)
	}

	cases := []struct {
		name string
		in   []byte
		err  error
		msg  string
	}{
		{"a million empty table entries", bombBatch(bombGateway, emptyStrings, bombRows), protocol.ErrBadBatch, "string table entries for 1 readings"},
		{"table claims 2^32 entries", bombBatch(bombGateway, cborHead(nil, 4, 1<<32), bombRows), protocol.ErrBadBatch, "strings"},
		{"table claims 2^64-1 entries", bombBatch(bombGateway, cborHead(nil, 4, 1<<64-1), bombRows), protocol.ErrBadBatch, "strings"},
		{"unused table entries", bombBatch(bombGateway, unused, bombRows), protocol.ErrBadBatch, "at most 3 per reading"},
		{"1 MiB table entry", bombBatch(bombGateway, longEntry, bombRows), protocol.ErrBadBatch, "over 255 bytes"},
		{"1 MiB gateway", bombBatch(cborText(nil, strings.Repeat("g", big)), bombStrings, bombRows), protocol.ErrBadBatch, "gateway"},
		{"gateway claims 2^32 bytes", bombBatch(cborHead(nil, 3, 1<<32), bombStrings, bombRows), protocol.ErrBadBatch, "gateway"},
		{"1 MiB string value", bombBatch(bombGateway, bombStrings, row(cborText(nil, strings.Repeat("v", big)))), protocol.ErrTooLarge, "string value over"},
		{"1 MiB chunked data value", bombBatch(bombGateway, bombStrings, row(chunked)), protocol.ErrTooLarge, "data value over"},
		{"50000 readings of one byte", bombBatch(bombGateway, bombStrings, filler), protocol.ErrBadBatch, "6 to 8 items"},
		{"readings claim 2^32 rows", bombBatch(bombGateway, bombStrings, cborHead(nil, 4, 1<<32)), protocol.ErrBadBatch, "readings"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var err error
			bytes := allocated(func() { _, err = protocol.DecodeBatch(c.in) })
			if !errors.Is(err, c.err) {
				t.Fatalf("err = %v, want %v", err, c.err)
			}
			if !strings.Contains(err.Error(), c.msg) {
				t.Errorf("error %q does not mention %q", err, c.msg)
			}
			if bytes > 64<<10 {
				t.Errorf("refusing a %d-byte body allocated %d bytes, want under 64 KiB", len(c.in), bytes)
			}
		})
	}
}

// TestDecodeBatchFullStringTable: a table with three distinct entries per
// reading (the most the readings can use) still decodes.
func TestDecodeBatchFullStringTable(t *testing.T) {
	b := &protocol.Batch{Gateway: "gw-1", Epoch: 1, FirstSeq: 1}
	for i := range 1000 {
		b.Readings = append(b.Readings, protocol.Reading{
			Device: fmt.Sprintf("dev-%d", i), Name: fmt.Sprintf("name-%d", i), Unit: fmt.Sprintf("u%d", i),
			Kind: protocol.KindFloat, Value: float64(i), Time: int64(i), Received: int64(i),
		})
	}
	enc, err := protocol.AppendBatch(nil, b)
	if err != nil {
		t.Fatal(err)
	}
	got, err := protocol.DecodeBatch(enc)
	if err != nil {
		t.Fatalf("a table of 3 entries per reading: %v", err)
	}
	if got.Readings[999].Unit != "u999" {
		t.Errorf("last reading = %+v", got.Readings[999])
	}
}
