package protocol

import (
	"encoding/base64"
	"math"
	"time"
)

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

// Extension labels this project defines (text keys in both encodings).
const (
	LabelGateway  = "gw" // stream records: gateway id (first record, applies to the pack)
	LabelReceived = "rt" // stream records: gateway receive time, seconds since epoch
	LabelFlags    = "fl" // stream records: Flags, when not zero
)

// Media types of the two SenML encodings.
const (
	ContentTypeSenMLJSON = "application/senml+json"
	ContentTypeSenMLCBOR = "application/senml+cbor"
)

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

// labelNames is indexed by CBOR label + 6.
var labelNames = [...]string{"bs", "bv", "bu", "bt", "bn", "bver", "n", "u", "v", "vs", "vb", "s", "t", "ut", "vd"}

// labelName returns the JSON name of a CBOR label, or false if unknown.
func labelName(l int64) (string, bool) {
	if l < labelBs || l > labelVd {
		return "", false
	}
	return labelNames[l+6], true
}

// jsonLabels maps JSON labels to CBOR labels.
var jsonLabels = map[string]int{
	"bver": labelBver, "bn": labelBn, "bt": labelBt, "bu": labelBu, "bv": labelBv, "bs": labelBs,
	"n": labelN, "u": labelU, "v": labelV, "vs": labelVs, "vb": labelVb, "s": labelS, "t": labelT,
	"ut": labelUt, "vd": labelVd,
}

// resolver carries base fields from record to record (RFC 8428 section 4.6).
type resolver struct {
	opts     *DecodeOptions
	bn, bu   string
	bt       float64
	btUs     int64
	bv, bs   float64
	gw       string
	lastName string // the most recent resolved name, reused to avoid an allocation
}

func (res *resolver) apply(i int, raw *rawRecord, dst []Reading) ([]Reading, error) {
	o := res.opts
	if raw.has&bit(labelBver) != 0 {
		if raw.bver < 1 || raw.bver > SenMLVersion {
			return dst, senmlErr(i, "bver", ErrVersion, "version %d; this receiver implements SenML version %d (RFC 8428)", raw.bver, SenMLVersion)
		}
	}
	if raw.has&bit(labelBn) != 0 {
		res.bn = raw.bn
	}
	if raw.has&bit(labelBt) != 0 {
		res.bt = raw.bt
		res.btUs = MicrosFromSeconds(raw.bt)
	}
	if raw.has&bit(labelBu) != 0 {
		res.bu = raw.bu
	}
	if raw.has&bit(labelBv) != 0 {
		res.bv = raw.bv
	}
	if raw.has&bit(labelBs) != 0 {
		res.bs = raw.bs
	}
	if raw.has&bitGw != 0 {
		if i != 0 {
			return dst, senmlErr(i, LabelGateway, ErrBadRecord, "gateway label only allowed on the first record")
		}
		res.gw = raw.gw
	}

	values := 0
	for _, l := range [...]int{labelV, labelVs, labelVb, labelVd} {
		if raw.has&bit(l) != 0 {
			values++
		}
	}
	if values > 1 {
		return dst, senmlErr(i, "", ErrMultipleValues, "a record carries at most one of v, vs, vb, vd")
	}
	hasSum := raw.has&bit(labelS) != 0
	if values == 0 && !hasSum {
		// RFC 8428 lets a record carry only base fields (e.g. a lone bn).
		// A pack of such records yields no reading; a record with a name but
		// nothing to say is an error.
		if raw.has&(bit(labelN)|bit(labelU)|bit(labelT)) != 0 {
			return dst, senmlErr(i, "", ErrNoValue, "add one of v, vs, vb, vd or s")
		}
		return dst, nil
	}

	name := res.bn + raw.n
	if name == res.lastName {
		name = res.lastName
	}
	if !ValidName(name) {
		label := "n"
		if raw.n == "" {
			label = "bn"
		}
		if name == "" {
			return dst, senmlErr(i, label, ErrBadName, "resolved name is empty: set n or bn")
		}
		return dst, senmlErr(i, label, ErrBadName, "resolved name %q: use 1-%d characters from A-Z a-z 0-9 - : . / _, starting with a letter or digit", truncate(name), MaxNameBytes)
	}
	res.lastName = name
	r := Reading{Device: o.Device, Name: name, Unit: res.bu, Received: o.Now, Flags: o.Flags}
	if raw.has&bit(labelU) != 0 {
		r.Unit = raw.u
	}
	if len(r.Unit) > MaxUnitBytes {
		return dst, senmlErr(i, "u", ErrTooLarge, "unit is %d bytes, limit %d", len(r.Unit), MaxUnitBytes)
	}
	switch {
	case raw.has&bit(labelV) != 0:
		r.Kind, r.Value = KindFloat, res.bv+raw.v
		if !finite(r.Value) {
			return dst, senmlErr(i, "v", ErrBadNumber, "")
		}
	case raw.has&bit(labelVs) != 0:
		r.Kind, r.Str = KindString, raw.vs
	case raw.has&bit(labelVb) != 0:
		r.Kind, r.Bool = KindBool, raw.vb
	case raw.has&bit(labelVd) != 0:
		r.Kind, r.Data = KindData, raw.vd
	}
	if hasSum {
		r.HasSum, r.Sum = true, res.bs+raw.s
		if !finite(r.Sum) {
			return dst, senmlErr(i, "s", ErrBadNumber, "")
		}
	}

	// Time: bt + t, in µs. A resolved time below 2^28 s is relative to now.
	if math.Abs(res.bt) >= MaxTimeSeconds || math.Abs(raw.t) >= MaxTimeSeconds {
		return dst, senmlErr(i, "t", ErrBadNumber, "time out of range (|bt|, |t| < 2^32 s)")
	}
	t := res.btUs
	if raw.has&bit(labelT) != 0 {
		t += MicrosFromSeconds(raw.t)
	}
	const relLimit = RelativeTimeLimit * 1_000_000
	if t < relLimit {
		if o.stream {
			return dst, senmlErr(i, "t", ErrBadRecord, "stream record times are absolute")
		}
		t = o.Now + t
		r.Flags |= FlagReceiverTime
		if t < relLimit {
			return dst, senmlErr(i, "t", ErrBadNumber, "relative time resolves to before 2^28 s (1978)")
		}
	}
	if t >= MaxTimeMicros {
		return dst, senmlErr(i, "t", ErrBadNumber, "resolved time out of range")
	}
	r.Time = t

	if o.stream {
		if raw.has&bitRt == 0 {
			return dst, senmlErr(i, LabelReceived, ErrBadRecord, "every stream record carries rt")
		}
		if raw.fl > 0xff {
			return dst, senmlErr(i, LabelFlags, ErrBadRecord, "flags out of range")
		}
		if math.Abs(raw.rt) >= MaxTimeSeconds {
			return dst, senmlErr(i, LabelReceived, ErrBadNumber, "receive time out of range")
		}
		r.Received = MicrosFromSeconds(raw.rt)
		r.Flags = Flags(raw.fl)
	}
	return append(dst, r), nil
}

// DecodeSenML decodes a SenML pack in either encoding (see DetectFormat)
// into resolved readings.
func DecodeSenML(b []byte, opts DecodeOptions) ([]Reading, error) {
	return AppendSenML(nil, b, &opts)
}

// AppendSenML decodes a pack in either encoding and appends its readings to
// dst. On error dst is returned unchanged in length.
func AppendSenML(dst []Reading, b []byte, opts *DecodeOptions) ([]Reading, error) {
	f, err := DetectFormat(b)
	if err != nil {
		return dst, err
	}
	if f == FormatJSON {
		return AppendSenMLJSON(dst, b, opts)
	}
	return AppendSenMLCBOR(dst, b, opts)
}

func prepare(b []byte, opts *DecodeOptions) (*DecodeOptions, int, error) {
	if opts == nil {
		opts = &DecodeOptions{}
	}
	if len(b) > MaxPackBytes && !opts.stream {
		return opts, 0, senmlErr(-1, "", ErrTooLarge, "pack is %d bytes, limit %d", len(b), MaxPackBytes)
	}
	if opts.Now == 0 {
		o := *opts
		o.Now = time.Now().UnixMicro()
		opts = &o
	}
	max := opts.MaxRecords
	if max <= 0 {
		max = MaxPackRecords
	}
	return opts, max, nil
}

// AppendSenMLCBOR decodes a SenML-CBOR pack (RFC 8428 section 6: an array
// of maps with integer labels) and appends its readings to dst.
func AppendSenMLCBOR(dst []Reading, b []byte, opts *DecodeOptions) ([]Reading, error) {
	dst, _, err := decodeCBORPack(dst, b, opts)
	return dst, err
}

// packInfo is what a decode learnt beyond the readings.
type packInfo struct {
	firstBn string // bn of the first record
	gw      string
}

func decodeCBORPack(dst []Reading, b []byte, opts *DecodeOptions) ([]Reading, packInfo, error) {
	var info packInfo
	opts, max, err := prepare(b, opts)
	if err != nil {
		return dst, info, err
	}
	start := len(dst)
	fail := func(err error) ([]Reading, packInfo, error) { return dst[:start], info, err }
	r := reader{b: b}
	n, err := r.containerLen(majorArray)
	if err != nil {
		return fail(senmlErr(-1, "", ErrSyntax, "a SenML-CBOR pack is an array of maps"))
	}
	if n == 0 {
		return fail(senmlErr(-1, "", ErrEmpty, "the pack holds no records"))
	}
	res := resolver{opts: opts}
	var raw rawRecord
	for i := 0; n < 0 || i < n; i++ {
		if n < 0 && r.peekBreak() {
			if i == 0 {
				return fail(senmlErr(-1, "", ErrEmpty, "the pack holds no records"))
			}
			break
		}
		if i >= max {
			return fail(senmlErr(i, "", ErrTooMany, "limit %d records per pack", max))
		}
		raw = rawRecord{}
		if err := decodeCBORRecord(&r, i, &raw, opts.stream); err != nil {
			return fail(err)
		}
		if i == 0 {
			info.firstBn = raw.bn
		}
		if dst, err = res.apply(i, &raw, dst); err != nil {
			return fail(err)
		}
	}
	if !r.done() {
		return fail(senmlErr(-1, "", ErrSyntax, "%d bytes after the end of the pack", len(b)-r.off))
	}
	if len(dst) == start {
		return fail(senmlErr(-1, "", ErrEmpty, "no record carries a value"))
	}
	info.gw = res.gw
	return dst, info, nil
}

func decodeCBORRecord(r *reader, i int, raw *rawRecord, stream bool) error {
	n, err := r.containerLen(majorMap)
	if err != nil {
		return senmlErr(i, "", ErrSyntax, "a record is a CBOR map")
	}
	for k := 0; n < 0 || k < n; k++ {
		if n < 0 && r.peekBreak() {
			break
		}
		label, text, isText, err := r.key()
		if err != nil {
			return senmlErr(i, "", ErrSyntax, "map key is neither an integer label nor a text label")
		}
		if isText {
			if err := decodeCBORExtension(r, i, raw, string(text), stream); err != nil {
				return err
			}
			continue
		}
		name, known := labelName(label)
		if !known {
			if err := r.skip(0); err != nil {
				return senmlErr(i, "", ErrSyntax, "label %d: value is malformed", label)
			}
			continue
		}
		b := bit(int(label))
		if raw.has&b != 0 {
			return senmlErr(i, name, ErrDuplicateLabel, "")
		}
		raw.has |= b
		var s []byte
		switch label {
		case labelBver:
			raw.bver, err = r.int()
		case labelBn:
			s, err = r.str(true)
			raw.bn = string(s)
		case labelBu:
			s, err = r.str(true)
			raw.bu = string(s)
		case labelN:
			s, err = r.str(true)
			raw.n = string(s)
		case labelU:
			s, err = r.str(true)
			raw.u = string(s)
		case labelVs:
			s, err = r.str(true)
			raw.vs = string(s)
		case labelVd:
			s, err = r.str(false)
			raw.vd = append(make([]byte, 0, len(s)), s...)
		case labelVb:
			raw.vb, err = r.bool()
		case labelBt:
			raw.bt, err = number(r)
		case labelBv:
			raw.bv, err = number(r)
		case labelBs:
			raw.bs, err = number(r)
		case labelV:
			raw.v, err = number(r)
		case labelS:
			raw.s, err = number(r)
		case labelT:
			raw.t, err = number(r)
		case labelUt:
			_, err = number(r)
		}
		if err != nil {
			switch err {
			case errType:
				return senmlErr(i, name, ErrType, "want %s", labelType(int(label)))
			case errRange, errBadNumber:
				return senmlErr(i, name, ErrBadNumber, "")
			}
			return senmlErr(i, name, ErrSyntax, "value is malformed")
		}
		if len(s) > MaxStringValueBytes {
			return senmlErr(i, name, ErrTooLarge, "%d bytes, limit %d", len(s), MaxStringValueBytes)
		}
	}
	return nil
}

var errBadNumber = ErrBadNumber

// number reads a finite CBOR number.
func number(r *reader) (float64, error) {
	f, err := r.number(false)
	if err != nil {
		return 0, err
	}
	if !finite(f) {
		return 0, errBadNumber
	}
	return f, nil
}

func labelType(label int) string {
	switch label {
	case labelBn, labelBu, labelN, labelU, labelVs:
		return "a text string"
	case labelVd:
		return "a byte string"
	case labelVb:
		return "a boolean"
	case labelBver:
		return "an integer"
	}
	return "a number"
}

func decodeCBORExtension(r *reader, i int, raw *rawRecord, key string, stream bool) error {
	var err error
	if stream {
		switch key {
		case LabelGateway:
			var s []byte
			s, err = r.str(true)
			raw.gw, raw.has = string(s), raw.has|bitGw
		case LabelReceived:
			raw.rt, err = number(r)
			raw.has |= bitRt
		case LabelFlags:
			raw.fl, err = r.uint()
			raw.has |= bitFl
		default:
			goto generic
		}
		if err != nil {
			return senmlErr(i, key, ErrType, "extension label has the wrong type")
		}
		return nil
	}
generic:
	if len(key) > 0 && key[len(key)-1] == '_' {
		return senmlErr(i, key, ErrMustUnderstand, "this receiver does not implement the extension")
	}
	if err := r.skip(0); err != nil {
		return senmlErr(i, key, ErrSyntax, "value is malformed")
	}
	return nil
}

// EncodeOptions control SenML encoding.
type EncodeOptions struct {
	// BaseName is written as bn on the first record. Reading names are
	// written as they are, so a receiver resolves BaseName+Name.
	BaseName string
	// Stream adds the extension labels of a stream record: gw on the first
	// record (from Gateway), rt (Received) and fl (Flags, when set) on every
	// record.
	Stream  bool
	Gateway string
}

// packTimes decides the time layout: bt is the first reading's time when
// every reading has a time, so each record carries a small offset t.
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

// AppendSenMLCBORPack encodes readings as a SenML-CBOR pack. Times are
// written as bt (the first reading's time) plus a per-record offset t, so
// every resolved time is absolute; a reading with Time 0 gets no time (the
// receiver's clock applies), and then no bt is used.
func AppendSenMLCBORPack(dst []byte, rs []Reading, o *EncodeOptions) []byte {
	if o == nil {
		o = &EncodeOptions{}
	}
	bt, useBt := packTimes(rs)
	dst = appendHead(dst, majorArray, uint64(len(rs)))
	for i := range rs {
		dst = appendCBORRecord(dst, &rs[i], i == 0, bt, useBt, o)
	}
	return dst
}

// appendCBORRecord encodes one record of a pack.
func appendCBORRecord(dst []byte, r *Reading, first bool, bt int64, useBt bool, o *EncodeOptions) []byte {
	fields := 2 // n + value
	if r.Kind == KindNone {
		fields = 1
	}
	if r.Unit != "" {
		fields++
	}
	if r.HasSum {
		fields++
	}
	withT := r.Time != 0 && (!useBt || r.Time != bt)
	if withT {
		fields++
	}
	if first && o.BaseName != "" {
		fields++
	}
	if first && useBt {
		fields++
	}
	if o.Stream {
		fields++ // rt
		if first && o.Gateway != "" {
			fields++
		}
		if r.Flags != 0 {
			fields++
		}
	}
	dst = appendHead(dst, majorMap, uint64(fields))
	if first && o.BaseName != "" {
		dst = appendInt(dst, labelBn)
		dst = appendText(dst, o.BaseName)
	}
	if first && useBt {
		dst = appendInt(dst, labelBt)
		dst = appendFloat64(dst, SecondsFromMicros(bt))
	}
	if first && o.Stream && o.Gateway != "" {
		dst = appendText(dst, LabelGateway)
		dst = appendText(dst, o.Gateway)
	}
	dst = appendInt(dst, labelN)
	dst = appendText(dst, r.Name)
	if r.Unit != "" {
		dst = appendInt(dst, labelU)
		dst = appendText(dst, r.Unit)
	}
	switch r.Kind {
	case KindFloat:
		dst = appendInt(dst, labelV)
		dst = appendNumber(dst, r.Value)
	case KindString:
		dst = appendInt(dst, labelVs)
		dst = appendText(dst, r.Str)
	case KindBool:
		dst = appendInt(dst, labelVb)
		dst = appendBool(dst, r.Bool)
	case KindData:
		dst = appendInt(dst, labelVd)
		dst = appendBytes(dst, r.Data)
	}
	if r.HasSum {
		dst = appendInt(dst, labelS)
		dst = appendNumber(dst, r.Sum)
	}
	if withT {
		dst = appendInt(dst, labelT)
		if useBt {
			dst = appendNumber(dst, float64(r.Time-bt)/1e6)
		} else {
			dst = appendFloat64(dst, SecondsFromMicros(r.Time))
		}
	}
	if o.Stream {
		dst = appendText(dst, LabelReceived)
		dst = appendFloat64(dst, SecondsFromMicros(r.Received))
		if r.Flags != 0 {
			dst = appendText(dst, LabelFlags)
			dst = appendHead(dst, majorUint, uint64(r.Flags))
		}
	}
	return dst
}

// AppendSenMLJSONPack encodes readings as a SenML JSON pack, with the same
// time layout as AppendSenMLCBORPack.
func AppendSenMLJSONPack(dst []byte, rs []Reading, o *EncodeOptions) []byte {
	if o == nil {
		o = &EncodeOptions{}
	}
	bt, useBt := packTimes(rs)
	dst = append(dst, '[')
	for i := range rs {
		r := &rs[i]
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, '{')
		sep := false
		key := func(k string) {
			if sep {
				dst = append(dst, ',')
			}
			sep = true
			dst = append(dst, '"')
			dst = append(dst, k...)
			dst = append(dst, '"', ':')
		}
		if i == 0 && o.BaseName != "" {
			key("bn")
			dst = appendJSONString(dst, o.BaseName)
		}
		if i == 0 && useBt {
			key("bt")
			dst = appendJSONNumber(dst, SecondsFromMicros(bt))
		}
		if i == 0 && o.Stream && o.Gateway != "" {
			key(LabelGateway)
			dst = appendJSONString(dst, o.Gateway)
		}
		key("n")
		dst = appendJSONString(dst, r.Name)
		if r.Unit != "" {
			key("u")
			dst = appendJSONString(dst, r.Unit)
		}
		switch r.Kind {
		case KindFloat:
			key("v")
			dst = appendJSONNumber(dst, r.Value)
		case KindString:
			key("vs")
			dst = appendJSONString(dst, r.Str)
		case KindBool:
			key("vb")
			if r.Bool {
				dst = append(dst, "true"...)
			} else {
				dst = append(dst, "false"...)
			}
		case KindData:
			key("vd")
			dst = append(dst, '"')
			dst = base64.RawURLEncoding.AppendEncode(dst, r.Data)
			dst = append(dst, '"')
		}
		if r.HasSum {
			key("s")
			dst = appendJSONNumber(dst, r.Sum)
		}
		if r.Time != 0 && (!useBt || r.Time != bt) {
			key("t")
			if useBt {
				dst = appendJSONNumber(dst, float64(r.Time-bt)/1e6)
			} else {
				dst = appendJSONNumber(dst, SecondsFromMicros(r.Time))
			}
		}
		if o.Stream {
			key(LabelReceived)
			dst = appendJSONNumber(dst, SecondsFromMicros(r.Received))
			if r.Flags != 0 {
				key(LabelFlags)
				dst = appendJSONNumber(dst, float64(r.Flags))
			}
		}
		dst = append(dst, '}')
	}
	return append(dst, ']')
}

// EncodeSenMLCBOR is AppendSenMLCBORPack into a new slice.
func EncodeSenMLCBOR(rs []Reading, o *EncodeOptions) []byte {
	return AppendSenMLCBORPack(nil, rs, o)
}

// EncodeSenMLJSON is AppendSenMLJSONPack into a new slice.
func EncodeSenMLJSON(rs []Reading, o *EncodeOptions) []byte {
	return AppendSenMLJSONPack(nil, rs, o)
}
