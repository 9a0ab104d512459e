package protocol

import (
	"errors"
	"fmt"
	"math"
)

// Batch versions. A decoder reads any minor version of its major version
// (unknown fields are skipped) and refuses other major versions.
const (
	batchMajor = 1
	batchMinor = 0
)

// ContentTypeBatch is the media type of an encoded Batch.
const ContentTypeBatch = "application/vnd.tributary.batch+cbor"

// Batch is what a gateway uploads: a run of consecutive queue entries
// (FirstSeq .. FirstSeq+len(Readings)-1 within Epoch). The cloud
// acknowledges (Gateway, Epoch, FirstSeq, LastSeq) and stores a resent
// batch once.
type Batch struct {
	Gateway  string // gateway id (device id rules)
	Epoch    uint64 // queue epoch: changes when the gateway's queue restarts numbering
	FirstSeq uint64 // sequence number of Readings[0]
	Readings []Reading

	// Minor is the minor version the batch was encoded with (set by
	// DecodeBatch; AppendBatch always writes this build's minor version).
	Minor uint64
}

// LastSeq is the sequence number of the last reading.
func (b *Batch) LastSeq() uint64 { return b.FirstSeq + uint64(len(b.Readings)) - 1 }

// Validate checks the envelope and every reading.
func (b *Batch) Validate() error {
	if err := CheckDeviceID(b.Gateway); err != nil {
		return batchErr(-1, "gateway", ErrBadBatch, "gateway id: %w", err)
	}
	if len(b.Readings) == 0 {
		return batchErr(-1, "readings", ErrBadBatch, "a batch holds at least one reading")
	}
	if len(b.Readings) > MaxBatchReadings {
		return batchErr(-1, "readings", ErrTooLarge, "%d readings, limit %d", len(b.Readings), MaxBatchReadings)
	}
	if b.FirstSeq > math.MaxUint64-uint64(len(b.Readings)) {
		return batchErr(-1, "first_seq", ErrBadBatch, "sequence numbers overflow")
	}
	for i := range b.Readings {
		if err := b.Readings[i].validate(i); err != nil {
			return err
		}
	}
	return nil
}

// Batch wire keys.
const (
	batchKeyVersion  = 0
	batchKeyGateway  = 1
	batchKeyEpoch    = 2
	batchKeyFirstSeq = 3
	batchKeyStrings  = 4
	batchKeyReadings = 5
)

// AppendBatch validates b and appends its CBOR encoding (see README.md,
// "Uplink batch") to dst.
func AppendBatch(dst []byte, b *Batch) ([]byte, error) {
	if err := b.Validate(); err != nil {
		return dst, err
	}
	// String table: index 0 is "", then devices, names and units in order
	// of first use.
	idx := make(map[string]uint64, 64)
	strs := []string{""}
	idx[""] = 0
	intern := func(s string) uint64 {
		if i, ok := idx[s]; ok {
			return i
		}
		i := uint64(len(strs))
		idx[s] = i
		strs = append(strs, s)
		return i
	}
	rows := make([][3]uint64, len(b.Readings))
	for i := range b.Readings {
		r := &b.Readings[i]
		rows[i] = [3]uint64{intern(r.Device), intern(r.Name), intern(r.Unit)}
	}
	start := len(dst)
	dst = appendHead(dst, majorMap, 6)
	dst = appendInt(dst, batchKeyVersion)
	dst = appendHead(dst, majorArray, 2)
	dst = appendInt(dst, batchMajor)
	dst = appendInt(dst, batchMinor)
	dst = appendInt(dst, batchKeyGateway)
	dst = appendText(dst, b.Gateway)
	dst = appendInt(dst, batchKeyEpoch)
	dst = appendHead(dst, majorUint, b.Epoch)
	dst = appendInt(dst, batchKeyFirstSeq)
	dst = appendHead(dst, majorUint, b.FirstSeq)
	dst = appendInt(dst, batchKeyStrings)
	dst = appendHead(dst, majorArray, uint64(len(strs)))
	for _, s := range strs {
		dst = appendText(dst, s)
	}
	dst = appendInt(dst, batchKeyReadings)
	dst = appendHead(dst, majorArray, uint64(len(b.Readings)))
	var prevT, prevR int64
	for i := range b.Readings {
		r := &b.Readings[i]
		n := uint64(6)
		if r.HasSum {
			n = 8
		} else if r.Flags != 0 {
			n = 7
		}
		dst = appendHead(dst, majorArray, n)
		dst = appendHead(dst, majorUint, rows[i][0])
		dst = appendHead(dst, majorUint, rows[i][1])
		dst = appendHead(dst, majorUint, rows[i][2])
		dst = appendValue(dst, r, true)
		dst = appendInt(dst, r.Time-prevT)
		dst = appendInt(dst, r.Received-prevR)
		prevT, prevR = r.Time, r.Received
		if n >= 7 {
			dst = appendHead(dst, majorUint, uint64(r.Flags))
		}
		if n == 8 {
			dst = appendCompactNumber(dst, r.Sum)
		}
	}
	if len(dst)-start > MaxBatchBytes {
		return dst[:start], batchErr(-1, "", ErrTooLarge, "encoded batch is %d bytes, limit %d: send fewer readings per batch", len(dst)-start, MaxBatchBytes)
	}
	return dst, nil
}

// appendCompactNumber writes f exactly, preferring an integer, then a
// decimal fraction (tag 4) of up to 6 decimals, which compresses far better
// than a double's mantissa, then the shortest float.
func appendCompactNumber(b []byte, f float64) []byte {
	if f == math.Trunc(f) && math.Abs(f) < 1<<53 && !(f == 0 && math.Signbit(f)) {
		return appendInt(b, int64(f))
	}
	for k := 1; k <= 6; k++ {
		m := math.Round(f * pow10[k])
		if math.Abs(m) >= 1<<53 {
			break
		}
		if m/pow10[k] == f {
			b = append(b, majorTag<<5|4)
			b = appendHead(b, majorArray, 2)
			b = appendInt(b, int64(-k))
			return appendInt(b, int64(m))
		}
	}
	return appendNumber(b, f)
}

// DecodeBatch decodes and validates an encoded Batch. Errors wrap
// ErrBadBatch, ErrVersion, ErrTooLarge or a reading's validation error, and
// say which reading and field is wrong.
func DecodeBatch(data []byte) (*Batch, error) {
	if len(data) > MaxBatchBytes {
		return nil, batchErr(-1, "", ErrTooLarge, "batch is %d bytes, limit %d", len(data), MaxBatchBytes)
	}
	r := reader{b: data}
	syntax := func(field, what string) error {
		return batchErr(-1, field, ErrBadBatch, "%s", what)
	}
	n, err := r.containerLen(majorMap)
	if err != nil || n < 0 {
		return nil, syntax("", "a batch is a definite-length CBOR map")
	}
	b := &Batch{}
	stringsAt, rowsAt := -1, -1
	var seen uint32
	for k := 0; k < n; k++ {
		key, err := r.int()
		if err != nil {
			return nil, syntax("", "map keys are integers")
		}
		if key >= 0 && key < 32 {
			if seen&(1<<key) != 0 {
				return nil, syntax("", fmt.Sprintf("key %d appears twice", key))
			}
			seen |= 1 << key
		}
		switch key {
		case batchKeyVersion:
			vn, err := r.containerLen(majorArray)
			if err != nil || vn != 2 {
				return nil, syntax("version", "version is [major, minor]")
			}
			major, err1 := r.uint()
			minor, err2 := r.uint()
			if err1 != nil || err2 != nil {
				return nil, syntax("version", "version is [major, minor]")
			}
			if major != batchMajor {
				return nil, batchErr(-1, "version", ErrVersion,
					"batch version %d.%d; this build reads %d.x: upgrade the cloud before the gateways", major, minor, batchMajor)
			}
			b.Minor = minor
		case batchKeyGateway:
			s, err := r.strMax(true, MaxDeviceIDBytes)
			if err != nil {
				return nil, syntax("gateway", fmt.Sprintf("gateway is a text string of at most %d bytes", MaxDeviceIDBytes))
			}
			b.Gateway = string(s)
		case batchKeyEpoch:
			if b.Epoch, err = r.uint(); err != nil {
				return nil, syntax("epoch", "epoch is an unsigned integer")
			}
		case batchKeyFirstSeq:
			if b.FirstSeq, err = r.uint(); err != nil {
				return nil, syntax("first_seq", "first_seq is an unsigned integer")
			}
		case batchKeyStrings:
			// Decoded once the number of readings is known (it caps the
			// table), wherever the two stand.
			stringsAt = r.off
			if err := r.skip(0); err != nil {
				return nil, syntax("strings", "strings is malformed")
			}
		case batchKeyReadings:
			rowsAt = r.off
			if err := skipRows(&r); err != nil {
				return nil, err
			}
		default:
			if err := r.skip(0); err != nil {
				return nil, syntax("", fmt.Sprintf("value of key %d is malformed", key))
			}
		}
	}
	if !r.done() {
		return nil, syntax("", "data after the end of the batch")
	}
	if seen&(1<<batchKeyVersion) == 0 {
		return nil, syntax("version", "version is missing")
	}
	if rowsAt < 0 {
		return nil, syntax("readings", "readings are missing")
	}
	if err := decodeRows(b, data, rowsAt, stringsAt); err != nil {
		return nil, err
	}
	if err := b.Validate(); err != nil {
		return nil, err
	}
	return b, nil
}

// skipRows checks the shape of the readings array (an array of arrays of
// 6 to 8 well-formed items) without building anything, so that the
// readings are allocated only for rows that are there.
func skipRows(r *reader) error {
	n, err := r.containerLen(majorArray)
	if err != nil || n < 0 {
		return batchErr(-1, "readings", ErrBadBatch, "readings is a definite-length array")
	}
	for i := 0; i < n; i++ {
		cols, err := r.containerLen(majorArray)
		if err != nil || cols < 6 || cols > 8 {
			return batchErr(i, "", ErrBadBatch, "a reading is an array of 6 to 8 items")
		}
		for range cols {
			if err := r.skip(1); err != nil {
				return batchErr(i, "", ErrBadBatch, "reading is malformed")
			}
		}
	}
	return nil
}

// minReadingBytes is the shortest encoded reading: an array head, three
// string indexes, a value and two time deltas of one byte each.
const minReadingBytes = 7

// maxTableString is the longest string-table entry: the table holds device
// ids, names and units.
const maxTableString = max(MaxDeviceIDBytes, MaxNameBytes, MaxUnitBytes)

// decodeStrings decodes the string table at data[at:] (none if at < 0).
// Each reading uses at most three entries besides "", so a table of more
// than 3n+1 entries for n readings is refused before anything is built:
// what the table allocates is bounded by what the readings can use, not by
// what a small compressed body can declare.
func decodeStrings(data []byte, at, readings int) ([]string, error) {
	if at < 0 {
		return nil, nil
	}
	r := reader{b: data, off: at}
	n, err := r.containerLen(majorArray)
	if err != nil || n < 0 {
		return nil, batchErr(-1, "strings", ErrBadBatch, "strings is a definite-length array of text")
	}
	if n > 3*readings+1 {
		return nil, batchErr(-1, "strings", ErrBadBatch,
			"%d string table entries for %d readings: at most 3 per reading and \"\" are used", n, readings)
	}
	strs := make([]string, n)
	for i := range strs {
		s, err := r.strMax(true, maxTableString)
		if errors.Is(err, errTooLong) {
			return nil, batchErr(-1, "strings", ErrBadBatch,
				"entry %d is over %d bytes: no device id, name or unit is that long", i, maxTableString)
		}
		if err != nil {
			return nil, batchErr(-1, "strings", ErrBadBatch, "strings is a definite-length array of text")
		}
		strs[i] = string(s)
	}
	return strs, nil
}

func decodeRows(b *Batch, data []byte, at, stringsAt int) error {
	r := reader{b: data, off: at}
	n, err := r.containerLen(majorArray)
	if err != nil || n < 0 {
		return batchErr(-1, "readings", ErrBadBatch, "readings is a definite-length array")
	}
	if n > MaxBatchReadings {
		return batchErr(-1, "readings", ErrTooLarge, "%d readings, limit %d", n, MaxBatchReadings)
	}
	if n == 0 {
		return batchErr(-1, "readings", ErrBadBatch, "a batch holds at least one reading")
	}
	if room := (len(data) - r.off) / minReadingBytes; n > room {
		return batchErr(-1, "readings", ErrBadBatch,
			"%d readings declared, the rest of the batch holds at most %d (a reading is an array of 6 to 8 items)", n, room)
	}
	strs, err := decodeStrings(data, stringsAt, n)
	if err != nil {
		return err
	}
	b.Readings = make([]Reading, n)
	var prevT, prevR int64
	str := func(i int, field string) (string, error) {
		v, err := r.uint()
		if err != nil || v >= uint64(len(strs)) {
			return "", batchErr(i, field, ErrBadBatch, "not an index into the string table")
		}
		return strs[v], nil
	}
	for i := range b.Readings {
		rd := &b.Readings[i]
		cols, err := r.containerLen(majorArray)
		if err != nil || cols < 6 || cols > 8 {
			return batchErr(i, "", ErrBadBatch, "a reading is an array of 6 to 8 items")
		}
		if rd.Device, err = str(i, "device"); err != nil {
			return err
		}
		if rd.Name, err = str(i, "name"); err != nil {
			return err
		}
		if rd.Unit, err = str(i, "unit"); err != nil {
			return err
		}
		if r.done() {
			return batchErr(i, "value", ErrBadBatch, "truncated")
		}
		switch c := r.b[r.off]; c >> 5 {
		case majorText:
			s, err := r.strMax(true, MaxStringValueBytes)
			if errors.Is(err, errTooLong) {
				return batchErr(i, "value", ErrTooLarge, "string value over %d bytes", MaxStringValueBytes)
			}
			if err != nil {
				return batchErr(i, "value", ErrBadBatch, "malformed string")
			}
			rd.Kind, rd.Str = KindString, string(s)
		case majorBytes:
			d, err := r.strMax(false, MaxStringValueBytes)
			if errors.Is(err, errTooLong) {
				return batchErr(i, "value", ErrTooLarge, "data value over %d bytes", MaxStringValueBytes)
			}
			if err != nil {
				return batchErr(i, "value", ErrBadBatch, "malformed bytes")
			}
			rd.Kind, rd.Data = KindData, append(make([]byte, 0, len(d)), d...)
		default:
			switch {
			case r.isNull():
				rd.Kind = KindNone
			case c == majorSimple<<5|simpleTrue || c == majorSimple<<5|simpleFalse:
				rd.Kind = KindBool
				rd.Bool, _ = r.bool()
			default:
				f, err := r.number(true)
				if err != nil || !finite(f) {
					return batchErr(i, "value", ErrBadBatch, "not a finite number, string, bool, bytes or null")
				}
				rd.Kind, rd.Value = KindFloat, f
			}
		}
		dt, err1 := r.int()
		dr, err2 := r.int()
		if err1 != nil || err2 != nil {
			return batchErr(i, "time", ErrBadBatch, "time deltas are integers")
		}
		prevT += dt
		prevR += dr
		rd.Time, rd.Received = prevT, prevR
		if cols >= 7 {
			fl, err := r.uint()
			if err != nil || fl > math.MaxUint8 {
				return batchErr(i, "flags", ErrBadBatch, "flags is a small unsigned integer")
			}
			rd.Flags = Flags(fl)
		}
		if cols == 8 {
			f, err := r.number(true)
			if err != nil || !finite(f) {
				return batchErr(i, "sum", ErrBadBatch, "sum is a finite number")
			}
			rd.HasSum, rd.Sum = true, f
		}
	}
	return nil
}
