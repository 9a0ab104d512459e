package protocol

import (
	"encoding/base64"
	"errors"
	"math"
	"unicode/utf8"
)

// SenML JSON (RFC 8428 section 5): an array of objects with text labels.

// decodeJSONPack decodes a SenML JSON pack and appends its readings to dst.
func decodeJSONPack(dst []Reading, b []byte, opts *DecodeOptions) ([]Reading, packInfo, error) {
	var p packDecoder
	if err := p.init(dst, b, opts); err != nil {
		return dst, packInfo{}, err
	}
	if !utf8.Valid(b) {
		return p.fail(senmlErr(-1, "", ErrSyntax, "JSON text is not valid UTF-8"))
	}
	s := jscan{b: b}
	if !s.eat('[') {
		return p.fail(senmlErr(-1, "", ErrSyntax, "a SenML JSON pack is an array of objects"))
	}
	stream := p.opts.stream
	i := 0
	if !s.eat(']') {
		for ; ; i++ {
			raw, err := p.next(i)
			if err == nil {
				err = decodeJSONRecord(&s, i, raw, stream)
			}
			if err == nil {
				err = p.resolve(i)
			}
			if err != nil {
				return p.fail(err)
			}
			if s.eat(']') {
				i++
				break
			}
			if !s.eat(',') {
				return p.fail(senmlErr(-1, "", ErrSyntax, "expected ',' or ']' at byte %d", s.off))
			}
		}
	}
	if s.ws(); s.off < len(s.b) {
		return p.fail(senmlErr(-1, "", ErrSyntax, "data after the end of the pack at byte %d", s.off))
	}
	if i == 0 {
		return p.fail(errNoRecords())
	}
	return p.finish()
}

func decodeJSONRecord(s *jscan, i int, raw *rawRecord, stream bool) error {
	if !s.eat('{') {
		return senmlErr(i, "", ErrSyntax, "a record is a JSON object (byte %d)", s.off)
	}
	if s.eat('}') {
		return nil
	}
	for {
		kb, err := s.rawString()
		if err != nil {
			return senmlErr(i, "", ErrSyntax, "expected a label string at byte %d", s.off)
		}
		if !s.eat(':') {
			return senmlErr(i, "", ErrSyntax, "expected ':' at byte %d", s.off)
		}
		label, known := jsonLabels[string(kb)]
		if !known {
			if err := decodeJSONExtension(s, i, raw, string(kb), stream); err != nil {
				return err
			}
		} else if err := decodeJSONField(s, i, raw, label, string(kb)); err != nil {
			return err
		}
		if s.eat('}') {
			return nil
		}
		if !s.eat(',') {
			return senmlErr(i, "", ErrSyntax, "expected ',' or '}' at byte %d", s.off)
		}
	}
}

// decodeJSONField reads the value of a known label into raw.
func decodeJSONField(s *jscan, i int, raw *rawRecord, label int, key string) error {
	if !raw.mark(label) {
		return senmlErr(i, key, ErrDuplicateLabel, "")
	}
	var err error
	switch typeOf(label) {
	case typeText, typeBytes:
		return decodeJSONString(s, i, raw, label, key)
	case typeBool:
		v, null, lerr := s.literal()
		switch {
		case errors.Is(lerr, errJSON):
			err = lerr
		case lerr != nil || null:
			err = errType
		default:
			raw.vb = v
		}
	default:
		var f float64
		if f, err = s.number(); err != nil {
			break
		}
		if label != labelBver {
			raw.setNumber(label, f)
		} else if f != math.Trunc(f) || math.Abs(f) > 1<<53 {
			return senmlErr(i, key, ErrType, "bver must be an integer")
		} else {
			raw.bver = int64(f)
		}
	}
	return jsonFieldErr(s, i, label, key, err)
}

// decodeJSONString reads a text label, or vd as base64url text.
func decodeJSONString(s *jscan, i int, raw *rawRecord, label int, key string) error {
	if c := s.peek(); c != '"' {
		err := s.skip(0)
		if err == nil {
			err = errType
		}
		return jsonFieldErr(s, i, label, key, err)
	}
	v, err := s.rawString()
	if err != nil {
		return jsonFieldErr(s, i, label, key, err)
	}
	if len(v) > MaxStringValueBytes {
		return senmlErr(i, key, ErrTooLarge, "%d bytes, limit %d", len(v), MaxStringValueBytes)
	}
	if label != labelVd {
		raw.setText(label, v)
		return nil
	}
	d, err := decodeBase64URL(string(v))
	if err != nil {
		return senmlErr(i, key, ErrType, "vd is not base64url: %w", err)
	}
	raw.vd = d
	return nil
}

// jsonFieldErr turns a scanner error into the error for label.
func jsonFieldErr(s *jscan, i, label int, key string, err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, errType):
		return senmlErr(i, key, ErrType, "want %s", typeOf(label))
	case errors.Is(err, errBadNumber):
		return senmlErr(i, key, ErrBadNumber, "")
	}
	return senmlErr(i, key, ErrSyntax, "malformed value at byte %d", s.off)
}

// decodeJSONExtension reads an unknown label: a stream record label, or one
// that is skipped unless it must be understood.
func decodeJSONExtension(s *jscan, i int, raw *rawRecord, key string, stream bool) error {
	if stream && isStreamLabel(key) {
		if !decodeJSONStreamLabel(s, raw, key) {
			return senmlErr(i, key, ErrType, "extension label has the wrong type")
		}
		return nil
	}
	if err := unknownExtension(i, key); err != nil {
		return err
	}
	if err := s.skip(0); err != nil {
		return senmlErr(i, key, ErrSyntax, "malformed value at byte %d", s.off)
	}
	return nil
}

// decodeJSONStreamLabel reads gw (text), rt (number) or fl (an integer
// 0-255), reporting false when the value has another type.
func decodeJSONStreamLabel(s *jscan, raw *rawRecord, key string) bool {
	if key == labelGw {
		v, err := s.rawString()
		if err != nil {
			return false
		}
		raw.gw, raw.has = string(v), raw.has|bitGw
		return true
	}
	v, err := s.number()
	switch {
	case err != nil:
		return false
	case key == labelRt:
		raw.rt, raw.has = v, raw.has|bitRt
	case v < 0 || v >= 256 || v != math.Trunc(v):
		return false
	default:
		raw.fl, raw.has = uint64(v), raw.has|bitFl
	}
	return true
}

// decodeBase64URL accepts base64url without padding (RFC 8428 section 5)
// and, leniently, with padding.
func decodeBase64URL(s string) ([]byte, error) {
	d, err := base64.RawURLEncoding.DecodeString(s)
	if err == nil {
		return d, nil
	}
	if d, err2 := base64.URLEncoding.DecodeString(s); err2 == nil {
		return d, nil
	}
	return nil, err
}

// AppendSenMLJSON encodes readings as a SenML JSON pack and appends it to
// dst, with the same time layout as AppendSenMLCBOR.
func AppendSenMLJSON(dst []byte, rs []Reading, o *EncodeOptions) []byte {
	if o == nil {
		o = &EncodeOptions{}
	}
	bt, useBt := packTimes(rs)
	dst = append(dst, '[')
	for i := range rs {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = appendJSONRecord(dst, &rs[i], i == 0, bt, useBt, o)
	}
	return append(dst, ']')
}

// EncodeSenMLJSON is AppendSenMLJSON into a new slice.
func EncodeSenMLJSON(rs []Reading, o *EncodeOptions) []byte {
	return AppendSenMLJSON(nil, rs, o)
}

// appendJSONRecord encodes one record of a pack.
func appendJSONRecord(dst []byte, r *Reading, first bool, bt int64, useBt bool, o *EncodeOptions) []byte {
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
	if first && o.BaseName != "" {
		key("bn")
		dst = appendJSONString(dst, o.BaseName)
	}
	if first && useBt {
		key("bt")
		dst = appendJSONNumber(dst, secondsFromMicros(bt))
	}
	if first && o.stream && o.gateway != "" {
		key(labelGw)
		dst = appendJSONString(dst, o.gateway)
	}
	key("n")
	dst = appendJSONString(dst, r.Name)
	if r.Unit != "" {
		key("u")
		dst = appendJSONString(dst, r.Unit)
	}
	if label, ok := valueLabel(r.Kind); ok {
		key(labelNames[label+6])
	}
	switch r.Kind {
	case KindFloat:
		dst = appendJSONNumber(dst, r.Value)
	case KindString:
		dst = appendJSONString(dst, r.Str)
	case KindBool:
		dst = appendJSONBool(dst, r.Bool)
	case KindData:
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
			dst = appendJSONNumber(dst, secondsFromMicros(r.Time))
		}
	}
	if o.stream {
		key(labelRt)
		dst = appendJSONNumber(dst, secondsFromMicros(r.Received))
		if r.Flags != 0 {
			key(labelFl)
			dst = appendJSONNumber(dst, float64(r.Flags))
		}
	}
	return append(dst, '}')
}
