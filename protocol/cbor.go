package protocol

// A small CBOR (RFC 8949) writer and reader for the two formats this package
// owns: SenML-CBOR packs and uplink batches. Both are decoded on hot paths
// (gateway intake, cloud ingest), need to see every map key (SenML's
// must-understand labels, base fields that apply in order) and must never
// allocate more than the input justifies, so they are hand written here.
// Tests cross-check both directions against github.com/fxamacker/cbor/v2, an
// independent implementation.

import (
	"encoding/binary"
	"errors"
	"math"
	"unicode/utf8"
)

// CBOR major types.
const (
	majorUint   = 0
	majorNeg    = 1
	majorBytes  = 2
	majorText   = 3
	majorArray  = 4
	majorMap    = 5
	majorTag    = 6
	majorSimple = 7
)

const (
	simpleFalse = 20
	simpleTrue  = 21
	simpleNull  = 22
	infoFloat16 = 25
	infoFloat32 = 26
	infoFloat64 = 27
	infoIndef   = 31
	maxDepth    = 16
)

var errCBOR = errors.New("malformed CBOR")

// --- writer ---------------------------------------------------------------

func appendHead(b []byte, major byte, n uint64) []byte {
	m := major << 5
	switch {
	case n < 24:
		return append(b, m|byte(n))
	case n <= math.MaxUint8:
		return append(b, m|24, byte(n))
	case n <= math.MaxUint16:
		return append(b, m|25, byte(n>>8), byte(n))
	case n <= math.MaxUint32:
		return append(b, m|26, byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
	}
	return append(b, m|27, byte(n>>56), byte(n>>48), byte(n>>40), byte(n>>32),
		byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
}

func appendInt(b []byte, v int64) []byte {
	if v >= 0 {
		return appendHead(b, majorUint, uint64(v))
	}
	return appendHead(b, majorNeg, uint64(-(v + 1)))
}

func appendText(b []byte, s string) []byte {
	b = appendHead(b, majorText, uint64(len(s)))
	return append(b, s...)
}

func appendBytes(b []byte, d []byte) []byte {
	b = appendHead(b, majorBytes, uint64(len(d)))
	return append(b, d...)
}

func appendBool(b []byte, v bool) []byte {
	if v {
		return append(b, majorSimple<<5|simpleTrue)
	}
	return append(b, majorSimple<<5|simpleFalse)
}

func appendNull(b []byte) []byte { return append(b, majorSimple<<5|simpleNull) }

// appendNumber writes f in the shortest form that reads back as exactly f:
// an integer when f is integral and exact in an int64 (and not -0), else a
// single-precision float when that is exact, else a double.
func appendNumber(b []byte, f float64) []byte {
	if f == math.Trunc(f) && math.Abs(f) < 1<<53 && !(f == 0 && math.Signbit(f)) {
		return appendInt(b, int64(f))
	}
	if f32 := float32(f); float64(f32) == f || math.IsNaN(f) {
		b = append(b, majorSimple<<5|infoFloat32)
		return binary.BigEndian.AppendUint32(b, math.Float32bits(f32))
	}
	b = append(b, majorSimple<<5|infoFloat64)
	return binary.BigEndian.AppendUint64(b, math.Float64bits(f))
}

// appendFloat64 always writes a double (used where readers expect a float).
func appendFloat64(b []byte, f float64) []byte {
	b = append(b, majorSimple<<5|infoFloat64)
	return binary.BigEndian.AppendUint64(b, math.Float64bits(f))
}

// appendValue writes a reading's value as one item: null for KindNone (a
// sum only), a float in the shortest exact form, or with compact as
// appendCompactNumber writes it (batch rows).
func appendValue(b []byte, r *Reading, compact bool) []byte {
	switch r.Kind {
	case KindFloat:
		if compact {
			return appendCompactNumber(b, r.Value)
		}
		return appendNumber(b, r.Value)
	case KindString:
		return appendText(b, r.Str)
	case KindBool:
		return appendBool(b, r.Bool)
	case KindData:
		return appendBytes(b, r.Data)
	}
	return appendNull(b)
}

// --- reader ---------------------------------------------------------------

// reader walks a CBOR byte slice. Every method checks bounds; on error the
// reader's state is unspecified and the caller stops.
type reader struct {
	b   []byte
	off int
}

// head reads an item's initial byte and argument. For indefinite lengths
// indef is true and arg is 0.
func (r *reader) head() (major byte, info byte, arg uint64, indef bool, err error) {
	if r.off >= len(r.b) {
		return 0, 0, 0, false, errCBOR
	}
	ib := r.b[r.off]
	r.off++
	major, info = ib>>5, ib&0x1f
	switch {
	case info < 24:
		return major, info, uint64(info), false, nil
	case info <= 27:
		n := 1 << (info - 24)
		if len(r.b)-r.off < n {
			return 0, 0, 0, false, errCBOR
		}
		p := r.b[r.off : r.off+n]
		r.off += n
		switch n {
		case 1:
			arg = uint64(p[0])
		case 2:
			arg = uint64(binary.BigEndian.Uint16(p))
		case 4:
			arg = uint64(binary.BigEndian.Uint32(p))
		default:
			arg = binary.BigEndian.Uint64(p)
		}
		return major, info, arg, false, nil
	case info == infoIndef:
		if major == majorUint || major == majorNeg || major == majorTag {
			return 0, 0, 0, false, errCBOR
		}
		return major, info, 0, true, nil
	}
	return 0, 0, 0, false, errCBOR // 28..30 reserved
}

// peekBreak reports (and consumes) a break byte, ending an indefinite item.
func (r *reader) peekBreak() bool {
	if r.off < len(r.b) && r.b[r.off] == 0xff {
		r.off++
		return true
	}
	return false
}

func (r *reader) done() bool { return r.off >= len(r.b) }

// containerLen reads an array or map head. n is -1 for indefinite length.
// A definite length larger than the remaining input is refused, so callers
// may size allocations from it.
func (r *reader) containerLen(want byte) (int, error) {
	major, _, arg, indef, err := r.head()
	if err != nil {
		return 0, err
	}
	if major != want {
		return 0, errType
	}
	if indef {
		return -1, nil
	}
	per := uint64(1)
	if want == majorMap {
		per = 2
	}
	if arg > uint64(len(r.b)-r.off)/per {
		return 0, errCBOR
	}
	return int(arg), nil
}

var errType = errors.New("wrong CBOR type")

// errTooLong: a string over the limit its field allows.
var errTooLong = errors.New("string too long")

// str reads a text (text=true) or byte string and returns a slice of the
// input (or a fresh buffer for indefinite-length strings).
func (r *reader) str(text bool) ([]byte, error) { return r.strMax(text, -1) }

// strMax is str refusing (errTooLong) a string over max bytes (max < 0:
// no limit beyond the input) before it builds anything of it, so a
// declared length costs nothing until it is known to be acceptable.
func (r *reader) strMax(text bool, max int) ([]byte, error) {
	want := byte(majorBytes)
	if text {
		want = majorText
	}
	major, _, arg, indef, err := r.head()
	if err != nil {
		return nil, err
	}
	if major != want {
		return nil, errType
	}
	var out []byte
	if !indef {
		if arg > uint64(len(r.b)-r.off) {
			return nil, errCBOR
		}
		if max >= 0 && arg > uint64(max) {
			return nil, errTooLong
		}
		out = r.b[r.off : r.off+int(arg)]
		r.off += int(arg)
	} else {
		for !r.peekBreak() {
			m, _, n, ind, err := r.head()
			if err != nil {
				return nil, err
			}
			if m != want || ind || n > uint64(len(r.b)-r.off) {
				return nil, errCBOR
			}
			if max >= 0 && n > uint64(max-len(out)) {
				return nil, errTooLong
			}
			out = append(out, r.b[r.off:r.off+int(n)]...)
			r.off += int(n)
		}
	}
	if text && !utf8.Valid(out) {
		return nil, errCBOR
	}
	return out, nil
}

// key reads a map key: an integer label or a text label.
func (r *reader) key() (label int64, text []byte, isText bool, err error) {
	if r.off >= len(r.b) {
		return 0, nil, false, errCBOR
	}
	switch r.b[r.off] >> 5 {
	case majorUint, majorNeg:
		v, err := r.int()
		return v, nil, false, err
	case majorText:
		t, err := r.str(true)
		return 0, t, true, err
	}
	return 0, nil, false, errType
}

// int reads an integer that fits an int64.
func (r *reader) int() (int64, error) {
	major, _, arg, _, err := r.head()
	if err != nil {
		return 0, err
	}
	switch major {
	case majorUint:
		if arg > math.MaxInt64 {
			return 0, errRange
		}
		return int64(arg), nil
	case majorNeg:
		if arg > math.MaxInt64 {
			return 0, errRange
		}
		return -1 - int64(arg), nil
	}
	return 0, errType
}

var errRange = errors.New("number out of range")

// uint reads an unsigned integer.
func (r *reader) uint() (uint64, error) {
	major, _, arg, _, err := r.head()
	if err != nil {
		return 0, err
	}
	if major != majorUint {
		return 0, errType
	}
	return arg, nil
}

// number reads any CBOR integer or float as a float64. Tag 4 (decimal
// fraction, [exponent, mantissa] with a small exponent) is accepted when
// decimal is set.
func (r *reader) number(decimal bool) (float64, error) {
	if r.off >= len(r.b) {
		return 0, errCBOR
	}
	switch r.b[r.off] >> 5 {
	case majorUint, majorNeg:
		v, err := r.int()
		return float64(v), err
	case majorTag:
		if !decimal {
			return 0, errType
		}
		_, _, tag, _, err := r.head()
		if err != nil {
			return 0, err
		}
		if tag != 4 {
			return 0, errType
		}
		n, err := r.containerLen(majorArray)
		if err != nil || n != 2 {
			return 0, errCBOR
		}
		exp, err := r.int()
		if err != nil {
			return 0, err
		}
		mant, err := r.int()
		if err != nil {
			return 0, err
		}
		if exp > 0 || exp < -int64(len(pow10))+1 || mant >= 1<<53 || mant <= -(1<<53) {
			return 0, errRange
		}
		return float64(mant) / pow10[-exp], nil
	case majorSimple:
		_, info, arg, _, err := r.head()
		if err != nil {
			return 0, err
		}
		switch info {
		case infoFloat16:
			return halfToFloat(uint16(arg)), nil
		case infoFloat32:
			return float64(math.Float32frombits(uint32(arg))), nil
		case infoFloat64:
			return math.Float64frombits(arg), nil
		}
	}
	return 0, errType
}

var pow10 = [...]float64{1, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9}

// bool reads true or false.
func (r *reader) bool() (bool, error) {
	major, info, _, _, err := r.head()
	if err != nil {
		return false, err
	}
	if major == majorSimple && info == simpleTrue {
		return true, nil
	}
	if major == majorSimple && info == simpleFalse {
		return false, nil
	}
	return false, errType
}

// isNull reports and consumes a null.
func (r *reader) isNull() bool {
	if r.off < len(r.b) && r.b[r.off] == majorSimple<<5|simpleNull {
		r.off++
		return true
	}
	return false
}

// skip passes over one complete data item of any type.
func (r *reader) skip(depth int) error {
	if depth > maxDepth {
		return errCBOR
	}
	major, _, arg, indef, err := r.head()
	if err != nil {
		return err
	}
	switch major {
	case majorUint, majorNeg, majorSimple:
		if major == majorSimple && indef {
			return errCBOR // a stray break
		}
		return nil
	case majorBytes, majorText:
		if !indef {
			if arg > uint64(len(r.b)-r.off) {
				return errCBOR
			}
			r.off += int(arg)
			return nil
		}
		for !r.peekBreak() {
			m, _, n, ind, err := r.head()
			if err != nil || m != major || ind || n > uint64(len(r.b)-r.off) {
				return errCBOR
			}
			r.off += int(n)
		}
		return nil
	case majorTag:
		return r.skip(depth + 1)
	case majorArray, majorMap:
		per := uint64(1)
		if major == majorMap {
			per = 2
		}
		if indef {
			for !r.peekBreak() {
				for i := uint64(0); i < per; i++ {
					if err := r.skip(depth + 1); err != nil {
						return err
					}
				}
			}
			return nil
		}
		if arg > uint64(len(r.b)-r.off)/per {
			return errCBOR
		}
		for i := uint64(0); i < arg*per; i++ {
			if err := r.skip(depth + 1); err != nil {
				return err
			}
		}
		return nil
	}
	return errCBOR
}

// halfToFloat converts an IEEE 754 half-precision value.
func halfToFloat(h uint16) float64 {
	sign := 1.0
	if h&0x8000 != 0 {
		sign = -1
	}
	exp := int(h>>10) & 0x1f
	mant := float64(h & 0x3ff)
	switch exp {
	case 0:
		return sign * math.Ldexp(mant, -24)
	case 31:
		if mant == 0 {
			return math.Inf(int(sign))
		}
		return math.NaN()
	}
	return sign * math.Ldexp(mant+1024, exp-25)
}
