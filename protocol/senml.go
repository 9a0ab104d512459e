package protocol

import "time"

// The SenML model (RFC 8428) both encodings share: labels, options, the raw
// record a decoder fills, and the entry points. Resolution is in
// senml_resolve.go, the encodings in senml_cbor.go and senml_json.go.

// SenML labels (RFC 8428 section 4.3) and their CBOR integer labels (section 6).
const (
	labelBver = -1
	labelBn   = -2
	labelBt   = -3
	labelBu   = -4
	labelBv   = -5
	labelBs   = -6
	labelN    = 0
	labelU    = 1
	labelV    = 2
	labelVs   = 3
	labelVb   = 4
	labelS    = 5
	labelT    = 6
	labelUt   = 7
	labelVd   = 8
)

// Extension labels this project defines for stream records (text keys in
// both encodings; see README.md, "Stream records").
const (
	labelGw = "gw" // gateway id (first record, applies to the pack)
	labelRt = "rt" // gateway receive time, seconds since epoch
	labelFl = "fl" // Flags, when not zero
)

// senmlVersion is the SenML version this package implements (RFC 8428).
const senmlVersion = 10

// Format is a SenML encoding.
type Format uint8

const (
	FormatJSON Format = iota + 1
	FormatCBOR
)

func (f Format) String() string {
	switch f {
	case FormatJSON:
		return "senml+json"
	case FormatCBOR:
		return "senml+cbor"
	}
	return "unknown"
}

// DetectFormat tells JSON (first non-space byte '[') from CBOR (an array
// head, major type 4).
func DetectFormat(b []byte) (Format, error) {
	if len(b) == 0 {
		return 0, senmlErr(-1, "", ErrEmpty, "payload is empty")
	}
	if b[0]>>5 == majorArray {
		return FormatCBOR, nil
	}
	for _, c := range b {
		if c == ' ' || c == '\t' || c == '\r' || c == '\n' {
			continue
		}
		if c == '[' {
			return FormatJSON, nil
		}
		break
	}
	return 0, senmlErr(-1, "", ErrSyntax, "payload is neither a SenML JSON array (starts with '[') nor a SenML CBOR array (first byte 0x80-0x9f); first byte is 0x%02x", b[0])
}

// DecodeOptions control SenML decoding.
type DecodeOptions struct {
	// Device is set on every reading (the device id comes from the topic).
	Device string
	// Now is the receive time in µs since epoch: it resolves relative
	// times and becomes each reading's Received. Zero means time.Now().
	Now int64
	// Flags are OR'ed into every reading (e.g. FlagClockUnsynced).
	Flags Flags
	// MaxRecords limits the pack; zero means MaxPackRecords.
	MaxRecords int

	stream bool // decoding a stream record: honour gw/rt/fl
}

// EncodeOptions control SenML encoding.
type EncodeOptions struct {
	// BaseName is written as bn on the first record. Reading names are
	// written as they are, so a receiver resolves BaseName+Name.
	BaseName string

	// stream adds the extension labels of a stream record: gw on the first
	// record (from gateway), rt (Received) and fl (Flags, when set) on every
	// record.
	stream  bool
	gateway string
}

// DecodeSenML decodes a SenML pack in either encoding (see DetectFormat)
// into resolved readings.
func DecodeSenML(b []byte, opts DecodeOptions) ([]Reading, error) {
	return DecodeSenMLInto(nil, b, &opts)
}

// DecodeSenMLInto is DecodeSenML appending to dst (pass a reused slice to
// avoid allocations). On error dst is returned unchanged in length.
func DecodeSenMLInto(dst []Reading, b []byte, opts *DecodeOptions) ([]Reading, error) {
	f, err := DetectFormat(b)
	if err != nil {
		return dst, err
	}
	if f == FormatJSON {
		dst, _, err = decodeJSONPack(dst, b, opts)
	} else {
		dst, _, err = decodeCBORPack(dst, b, opts)
	}
	return dst, err
}

// rawRecord holds one record's fields as found, before resolution.
type rawRecord struct {
	has          uint32 // bit per label, see bit()
	bver         int64
	bn, bu, n, u string
	bt, bv, bs   float64
	v, s, t      float64
	vs           string
	vb           bool
	vd           []byte
	gw           string
	rt           float64
	fl           uint64
}

// bit maps a label to its presence bit.
func bit(label int) uint32 { return 1 << uint(label+8) }

const (
	bitGw = 1 << 20
	bitRt = 1 << 21
	bitFl = 1 << 22
)

// mark records that label is present, reporting false when it already was
// (a label may appear once per record).
func (raw *rawRecord) mark(label int) bool {
	b := bit(label)
	if raw.has&b != 0 {
		return false
	}
	raw.has |= b
	return true
}

// setText stores the value of a text label (see typeOf).
func (raw *rawRecord) setText(label int, s []byte) {
	switch label {
	case labelBn:
		raw.bn = string(s)
	case labelBu:
		raw.bu = string(s)
	case labelN:
		raw.n = string(s)
	case labelU:
		raw.u = string(s)
	case labelVs:
		raw.vs = string(s)
	}
}

// setNumber stores the value of a number label; ut is read and ignored.
func (raw *rawRecord) setNumber(label int, f float64) {
	switch label {
	case labelBt:
		raw.bt = f
	case labelBv:
		raw.bv = f
	case labelBs:
		raw.bs = f
	case labelV:
		raw.v = f
	case labelS:
		raw.s = f
	case labelT:
		raw.t = f
	}
}

// labelNames is indexed by CBOR label + 6.
var labelNames = [...]string{"bs", "bv", "bu", "bt", "bn", "bver", "n", "u", "v", "vs", "vb", "s", "t", "ut", "vd"}

// labelName returns the JSON name of a CBOR label, or false if unknown.
func labelName(l int64) (string, bool) {
	if l < labelBs || l > labelVd {
		return "", false
	}
	return labelNames[l+6], true
}

// valueLabel returns the label that carries a value of kind k; KindNone
// has none.
func valueLabel(k Kind) (int, bool) {
	switch k {
	case KindFloat:
		return labelV, true
	case KindString:
		return labelVs, true
	case KindBool:
		return labelVb, true
	case KindData:
		return labelVd, true
	}
	return 0, false
}

// jsonLabels maps JSON labels to CBOR labels.
var jsonLabels = map[string]int{
	"bver": labelBver, "bn": labelBn, "bt": labelBt, "bu": labelBu, "bv": labelBv, "bs": labelBs,
	"n": labelN, "u": labelU, "v": labelV, "vs": labelVs, "vb": labelVb, "s": labelS, "t": labelT,
	"ut": labelUt, "vd": labelVd,
}

// valueType is the type of a label's value.
type valueType uint8

const (
	typeNumber valueType = iota
	typeText
	typeBytes // CBOR byte string; base64url text in JSON
	typeBool
	typeInt
)

// labelTypes is indexed by CBOR label + 6, like labelNames.
var labelTypes = [...]valueType{
	typeNumber, typeNumber, typeText, typeNumber, typeText, typeInt, // bs bv bu bt bn bver
	typeText, typeText, typeNumber, typeText, typeBool, typeNumber, typeNumber, typeNumber, typeBytes, // n u v vs vb s t ut vd
}

// typeOf returns the type of a known label's value.
func typeOf(label int) valueType { return labelTypes[label+6] }

// String names the type for error messages ("want a number").
func (t valueType) String() string {
	switch t {
	case typeText:
		return "a text string"
	case typeBytes:
		return "a byte string"
	case typeBool:
		return "a boolean"
	case typeInt:
		return "an integer"
	}
	return "a number"
}

// isStreamLabel reports whether key is one of the stream record labels.
func isStreamLabel(key string) bool { return key == labelGw || key == labelRt || key == labelFl }

// unknownExtension refuses an unknown must-understand label (its name ends
// in '_', RFC 8428 section 4.4); other unknown labels are skipped.
func unknownExtension(i int, key string) error {
	if len(key) > 0 && key[len(key)-1] == '_' {
		return senmlErr(i, key, ErrMustUnderstand, "this receiver does not implement the extension")
	}
	return nil
}

// packInfo is what a decode learnt beyond the readings.
type packInfo struct {
	firstBn string // bn of the first record
	gw      string
}

// packDecoder carries what the two encodings' pack decoders share: the
// options, the record limit, the resolver, and where the pack's readings
// start in dst (so a failed decode leaves dst as it was).
type packDecoder struct {
	opts  *DecodeOptions
	max   int
	res   resolver
	raw   rawRecord
	dst   []Reading
	start int
}

// init checks the pack's size and fills in the option defaults.
func (p *packDecoder) init(dst []Reading, b []byte, opts *DecodeOptions) error {
	p.dst, p.start = dst, len(dst)
	if opts == nil {
		opts = &DecodeOptions{}
	}
	if len(b) > MaxPackBytes && !opts.stream {
		return senmlErr(-1, "", ErrTooLarge, "pack is %d bytes, limit %d", len(b), MaxPackBytes)
	}
	if opts.Now == 0 {
		o := *opts
		o.Now = time.Now().UnixMicro()
		opts = &o
	}
	p.opts, p.res.opts = opts, opts
	p.max = opts.MaxRecords
	if p.max <= 0 {
		p.max = MaxPackRecords
	}
	return nil
}

// next starts record i: it enforces the record limit and returns the raw
// record to fill.
func (p *packDecoder) next(i int) (*rawRecord, error) {
	if i >= p.max {
		return nil, p.tooMany(i)
	}
	p.raw = rawRecord{}
	return &p.raw, nil
}

// tooMany is the error for record i beyond the limit (out of line, so that
// next inlines).
func (p *packDecoder) tooMany(i int) error {
	return senmlErr(i, "", ErrTooMany, "limit %d records per pack", p.max)
}

// resolve resolves record i, once decoded, into readings.
func (p *packDecoder) resolve(i int) (err error) {
	p.dst, err = p.res.apply(i, &p.raw, p.dst)
	return err
}

// fail drops what the pack appended to dst and returns err.
func (p *packDecoder) fail(err error) ([]Reading, packInfo, error) {
	return p.dst[:p.start], packInfo{}, err
}

// finish ends a pack that held at least one record.
func (p *packDecoder) finish() ([]Reading, packInfo, error) {
	if len(p.dst) == p.start {
		return p.fail(senmlErr(-1, "", ErrEmpty, "no record carries a value"))
	}
	return p.dst, packInfo{firstBn: p.res.firstBn, gw: p.res.gw}, nil
}

// errNoRecords is the error for a pack without records.
func errNoRecords() error { return senmlErr(-1, "", ErrEmpty, "the pack holds no records") }

// packTimes decides the time layout of an encoded pack: bt is the first
// reading's time when every reading has a time, so each record carries a
// small offset t.
func packTimes(rs []Reading) (bt int64, useBt bool) {
	if len(rs) == 0 {
		return 0, false
	}
	for i := range rs {
		if rs[i].Time == 0 {
			return 0, false
		}
	}
	return rs[0].Time, true
}
