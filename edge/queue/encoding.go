package queue

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math"

	"github.com/tributary-iot/tributary/protocol"
)

// Entry encoding (the value under each key of the "entries" bucket):
//
//	crc      4 bytes, big-endian CRC-32C (Castagnoli) of everything after it
//	header   1 byte: bits 0-2 kind (protocol.Kind, 0-4), bit 3 HasSum,
//	         bit 4 the bool value (KindBool only), bits 5-7 zero
//	flags    1 byte: protocol.Flags
//	device   uvarint length, bytes (1..MaxDeviceIDBytes)
//	name     uvarint length, bytes (1..MaxNameBytes)
//	unit     uvarint length, bytes (0..MaxUnitBytes)
//	time     zigzag varint: Time, µs
//	received zigzag varint: Received - Time, µs
//	value    KindFloat: 8 bytes, big-endian IEEE 754
//	         KindString, KindData: uvarint length, bytes (..MaxStringValueBytes)
//	         KindBool, KindNone: nothing
//	sum      8 bytes, big-endian IEEE 754, present iff HasSum
//
// Nothing may follow. Varints are encoding/binary's. The decoder rejects
// anything the encoder cannot produce (bad CRC, reserved bits, unknown kind,
// over-long fields, NaN or infinite numbers, times out of range, trailing
// bytes), so a damaged record is reported, never returned as a reading.
// A typical reading (short ids, a float) takes about 50 bytes.

const (
	crcSize       = 4
	hdrKindMask   = 0x07
	hdrHasSum     = 0x08
	hdrBool       = 0x10
	hdrReserved   = 0xe0
	maxEntryBytes = crcSize + 2 + 3*binary.MaxVarintLen16 + protocol.MaxDeviceIDBytes + protocol.MaxNameBytes +
		protocol.MaxUnitBytes + 2*binary.MaxVarintLen64 + binary.MaxVarintLen32 + protocol.MaxStringValueBytes + 8
)

var (
	crcTable = crc32.MakeTable(crc32.Castagnoli)

	errEntry = errors.New("bad entry")
)

// appendEntry appends r's encoding to dst. It fails only for readings the
// encoding cannot hold (unknown kind, fields over the protocol limits);
// Append validates readings before encoding them.
func appendEntry(dst []byte, r *protocol.Reading) ([]byte, error) {
	if r.Kind > protocol.KindData {
		return dst, fmt.Errorf("unknown kind %d", r.Kind)
	}
	if len(r.Device) == 0 || len(r.Device) > protocol.MaxDeviceIDBytes || len(r.Name) == 0 ||
		len(r.Name) > protocol.MaxNameBytes || len(r.Unit) > protocol.MaxUnitBytes ||
		len(r.Str) > protocol.MaxStringValueBytes || len(r.Data) > protocol.MaxStringValueBytes {
		return dst, errors.New("field too long or empty")
	}
	start := len(dst)
	dst = append(dst, 0, 0, 0, 0)
	h := byte(r.Kind)
	if r.HasSum {
		h |= hdrHasSum
	}
	if r.Kind == protocol.KindBool && r.Bool {
		h |= hdrBool
	}
	dst = append(dst, h, byte(r.Flags))
	dst = appendString(dst, r.Device)
	dst = appendString(dst, r.Name)
	dst = appendString(dst, r.Unit)
	dst = binary.AppendVarint(dst, r.Time)
	dst = binary.AppendVarint(dst, r.Received-r.Time)
	switch r.Kind {
	case protocol.KindFloat:
		dst = binary.BigEndian.AppendUint64(dst, math.Float64bits(r.Value))
	case protocol.KindString:
		dst = appendString(dst, r.Str)
	case protocol.KindData:
		dst = binary.AppendUvarint(dst, uint64(len(r.Data)))
		dst = append(dst, r.Data...)
	}
	if r.HasSum {
		dst = binary.BigEndian.AppendUint64(dst, math.Float64bits(r.Sum))
	}
	binary.BigEndian.PutUint32(dst[start:], crc32.Checksum(dst[start+crcSize:], crcTable))
	return dst, nil
}

func appendString(dst []byte, s string) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(s)))
	return append(dst, s...)
}

// decoder turns entries into readings. It interns device ids, names and
// units, which repeat across a run of readings, so a Read allocates one
// string per distinct value rather than three per reading.
type decoder struct {
	strs map[string]string
}

func (d *decoder) str(b []byte) string {
	if d == nil {
		return string(b)
	}
	if s, ok := d.strs[string(b)]; ok {
		return s
	}
	if d.strs == nil || len(d.strs) >= 4096 {
		d.strs = make(map[string]string, 64)
	}
	s := string(b)
	d.strs[s] = s
	return s
}

// decodeEntry decodes b into r (overwriting every field). b is not
// retained. The error wraps errEntry and says what is wrong.
func (d *decoder) decodeEntry(b []byte, r *protocol.Reading) error {
	if len(b) < crcSize+2 {
		return fmt.Errorf("%w: %d bytes is too short", errEntry, len(b))
	}
	if len(b) > maxEntryBytes {
		return fmt.Errorf("%w: %d bytes is too long", errEntry, len(b))
	}
	if got, want := crc32.Checksum(b[crcSize:], crcTable), binary.BigEndian.Uint32(b); got != want {
		return fmt.Errorf("%w: checksum %08x, stored %08x", errEntry, got, want)
	}
	p := b[crcSize:]
	h, flags := p[0], p[1]
	p = p[2:]
	kind := protocol.Kind(h & hdrKindMask)
	if h&hdrReserved != 0 || kind > protocol.KindData || h&hdrBool != 0 && kind != protocol.KindBool {
		return fmt.Errorf("%w: bad header %#02x", errEntry, h)
	}
	var dev, name, unit []byte
	var err error
	if dev, p, err = readBytes(p, 1, protocol.MaxDeviceIDBytes, "device"); err != nil {
		return err
	}
	if name, p, err = readBytes(p, 1, protocol.MaxNameBytes, "name"); err != nil {
		return err
	}
	if unit, p, err = readBytes(p, 0, protocol.MaxUnitBytes, "unit"); err != nil {
		return err
	}
	t, n := binary.Varint(p)
	if n <= 0 || t <= -protocol.MaxTimeMicros || t >= protocol.MaxTimeMicros {
		return fmt.Errorf("%w: bad time", errEntry)
	}
	p = p[n:]
	delta, n := binary.Varint(p)
	if n <= 0 || delta <= -2*protocol.MaxTimeMicros || delta >= 2*protocol.MaxTimeMicros {
		return fmt.Errorf("%w: bad receive time", errEntry)
	}
	p = p[n:]
	recv := t + delta
	if recv <= -protocol.MaxTimeMicros || recv >= protocol.MaxTimeMicros {
		return fmt.Errorf("%w: receive time out of range", errEntry)
	}
	*r = protocol.Reading{
		Device: d.str(dev), Name: d.str(name), Unit: d.str(unit),
		Kind: kind, Time: t, Received: recv, Flags: protocol.Flags(flags),
		HasSum: h&hdrHasSum != 0, Bool: h&hdrBool != 0,
	}
	switch kind {
	case protocol.KindFloat:
		if r.Value, p, err = readFloat(p, "value"); err != nil {
			return err
		}
	case protocol.KindString:
		var s []byte
		if s, p, err = readBytes(p, 0, protocol.MaxStringValueBytes, "string value"); err != nil {
			return err
		}
		r.Str = string(s)
	case protocol.KindData:
		var v []byte
		if v, p, err = readBytes(p, 0, protocol.MaxStringValueBytes, "data value"); err != nil {
			return err
		}
		if len(v) > 0 {
			r.Data = append([]byte(nil), v...)
		}
	case protocol.KindNone:
		if !r.HasSum {
			return fmt.Errorf("%w: neither value nor sum", errEntry)
		}
	}
	if r.HasSum {
		if r.Sum, p, err = readFloat(p, "sum"); err != nil {
			return err
		}
	}
	if len(p) != 0 {
		return fmt.Errorf("%w: %d trailing bytes", errEntry, len(p))
	}
	return nil
}

func readBytes(p []byte, minLen, maxLen int, what string) (v, rest []byte, err error) {
	l, n := binary.Uvarint(p)
	if n <= 0 || l < uint64(minLen) || l > uint64(maxLen) || l > uint64(len(p)-n) {
		return nil, nil, fmt.Errorf("%w: bad %s length", errEntry, what)
	}
	end := n + int(l)
	return p[n:end:end], p[end:], nil
}

func readFloat(p []byte, what string) (float64, []byte, error) {
	if len(p) < 8 {
		return 0, nil, fmt.Errorf("%w: truncated %s", errEntry, what)
	}
	f := math.Float64frombits(binary.BigEndian.Uint64(p))
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return 0, nil, fmt.Errorf("%w: %s is not finite", errEntry, what)
	}
	return f, p[8:], nil
}

// decodeReceived returns the Received time of an entry without decoding
// the rest (for Stats.OldestReceived).
func decodeReceived(b []byte) (int64, bool) {
	var r protocol.Reading
	var d decoder
	if d.decodeEntry(b, &r) != nil {
		return 0, false
	}
	return r.Received, true
}

// natural-key hashing for dedupe: FNV-1a (64-bit) over a per-file random
// salt and the length-prefixed key fields, then a splitmix64 finaliser so
// every output bit depends on every input bit. The salt is stored in the
// meta bucket, so hashes are stable across restarts.
const (
	fnvOffset = 14695981039346656037
	fnvPrime  = 1099511628211
)

func keyHash(salt uint64, r *protocol.Reading) uint64 {
	h := uint64(fnvOffset)
	for i := 0; i < 8; i++ {
		h = (h ^ (salt >> (8 * i) & 0xff)) * fnvPrime
	}
	h = (h ^ uint64(len(r.Device))) * fnvPrime
	for i := 0; i < len(r.Device); i++ {
		h = (h ^ uint64(r.Device[i])) * fnvPrime
	}
	h = (h ^ uint64(len(r.Name)&0xff)) * fnvPrime
	h = (h ^ uint64(len(r.Name)>>8)) * fnvPrime
	for i := 0; i < len(r.Name); i++ {
		h = (h ^ uint64(r.Name[i])) * fnvPrime
	}
	t := uint64(r.Time)
	for i := 0; i < 8; i++ {
		h = (h ^ (t >> (8 * i) & 0xff)) * fnvPrime
	}
	h ^= h >> 30
	h *= 0xbf58476d1ce4e5b9
	h ^= h >> 27
	h *= 0x94d049bb133111eb
	h ^= h >> 31
	return h
}
