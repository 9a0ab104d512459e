package protocol

import (
	"encoding/base64"
	"math"
	"strconv"
	"unicode/utf8"
)

// AppendSenMLJSON decodes a SenML JSON pack (RFC 8428 section 5) and
// appends its readings to dst.
func AppendSenMLJSON(dst []Reading, b []byte, opts *DecodeOptions) ([]Reading, error) {
	dst, _, err := decodeJSONPack(dst, b, opts)
	return dst, err
}

func decodeJSONPack(dst []Reading, b []byte, opts *DecodeOptions) ([]Reading, packInfo, error) {
	var info packInfo
	opts, max, err := prepare(b, opts)
	if err != nil {
		return dst, info, err
	}
	start := len(dst)
	fail := func(err error) ([]Reading, packInfo, error) { return dst[:start], info, err }
	if !utf8.Valid(b) {
		return fail(senmlErr(-1, "", ErrSyntax, "JSON text is not valid UTF-8"))
	}
	s := jscan{b: b}
	if !s.eat('[') {
		return fail(senmlErr(-1, "", ErrSyntax, "a SenML JSON pack is an array of objects"))
	}
	res := resolver{opts: opts}
	var raw rawRecord
	i := 0
	if !s.eat(']') {
		for ; ; i++ {
			if i >= max {
				return fail(senmlErr(i, "", ErrTooMany, "limit %d records per pack", max))
			}
			raw = rawRecord{}
			if err := decodeJSONRecord(&s, i, &raw, opts.stream); err != nil {
				return fail(err)
			}
			if i == 0 {
				info.firstBn = raw.bn
			}
			if dst, err = res.apply(i, &raw, dst); err != nil {
				return fail(err)
			}
			if s.eat(']') {
				i++
				break
			}
			if !s.eat(',') {
				return fail(senmlErr(-1, "", ErrSyntax, "expected ',' or ']' at byte %d", s.off))
			}
		}
	}
	if s.ws(); s.off < len(s.b) {
		return fail(senmlErr(-1, "", ErrSyntax, "data after the end of the pack at byte %d", s.off))
	}
	if i == 0 {
		return fail(senmlErr(-1, "", ErrEmpty, "the pack holds no records"))
	}
	if len(dst) == start {
		return fail(senmlErr(-1, "", ErrEmpty, "no record carries a value"))
	}
	info.gw = res.gw
	return dst, info, nil
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

func decodeJSONField(s *jscan, i int, raw *rawRecord, label int, key string) error {
	b := bit(label)
	if raw.has&b != 0 {
		return senmlErr(i, key, ErrDuplicateLabel, "")
	}
	raw.has |= b
	fieldErr := func(err error) error {
		switch err {
		case errType:
			return senmlErr(i, key, ErrType, "want %s", labelType(label))
		case errBadNumber:
			return senmlErr(i, key, ErrBadNumber, "")
		}
		return senmlErr(i, key, ErrSyntax, "malformed value at byte %d", s.off)
	}
	switch label {
	case labelBn, labelBu, labelN, labelU, labelVs, labelVd:
		if c := s.peek(); c != '"' {
			if err := s.skip(0); err != nil {
				return fieldErr(err)
			}
			return fieldErr(errType)
		}
		v, err := s.rawString()
		if err != nil {
			return fieldErr(err)
		}
		if len(v) > MaxStringValueBytes {
			return senmlErr(i, key, ErrTooLarge, "%d bytes, limit %d", len(v), MaxStringValueBytes)
		}
		switch label {
		case labelBn:
			raw.bn = string(v)
		case labelBu:
			raw.bu = string(v)
		case labelN:
			raw.n = string(v)
		case labelU:
			raw.u = string(v)
		case labelVs:
			raw.vs = string(v)
		case labelVd:
			d, err := decodeBase64URL(string(v))
			if err != nil {
				return senmlErr(i, key, ErrType, "vd is not base64url: %v", err)
			}
			raw.vd = d
		}
	case labelVb:
		v, null, err := s.literal()
		if err != nil || null {
			if err == errJSON {
				return fieldErr(err)
			}
			return fieldErr(errType)
		}
		raw.vb = v
	default:
		f, err := s.number()
		if err != nil {
			return fieldErr(err)
		}
		switch label {
		case labelBver:
			if f != math.Trunc(f) || math.Abs(f) > 1<<53 {
				return senmlErr(i, key, ErrType, "bver must be an integer")
			}
			raw.bver = int64(f)
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
	return nil
}

func decodeJSONExtension(s *jscan, i int, raw *rawRecord, key string, stream bool) error {
	if stream {
		switch key {
		case LabelGateway:
			v, err := s.rawString()
			if err == nil {
				raw.gw, raw.has = string(v), raw.has|bitGw
				return nil
			}
		case LabelReceived:
			v, err := s.number()
			if err == nil {
				raw.rt, raw.has = v, raw.has|bitRt
				return nil
			}
		case LabelFlags:
			v, err := s.number()
			if err == nil && v >= 0 && v < 256 && v == math.Trunc(v) {
				raw.fl, raw.has = uint64(v), raw.has|bitFl
				return nil
			}
		}
		switch key {
		case LabelGateway, LabelReceived, LabelFlags:
			return senmlErr(i, key, ErrType, "extension label has the wrong type")
		}
	}
	if len(key) > 0 && key[len(key)-1] == '_' {
		return senmlErr(i, key, ErrMustUnderstand, "this receiver does not implement the extension")
	}
	if err := s.skip(0); err != nil {
		return senmlErr(i, key, ErrSyntax, "malformed value at byte %d", s.off)
	}
	return nil
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

// appendJSONNumber writes f in the shortest form that parses back to f.
func appendJSONNumber(b []byte, f float64) []byte {
	if f == math.Trunc(f) && math.Abs(f) < 1e21 {
		return strconv.AppendFloat(b, f, 'f', -1, 64)
	}
	return strconv.AppendFloat(b, f, 'g', -1, 64)
}

const hexDigits = "0123456789abcdef"

// appendJSONString writes s as a JSON string (RFC 8259), escaping what
// must be escaped and replacing invalid UTF-8.
func appendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				b = append(b, '\\', c)
			case c == '\n':
				b = append(b, '\\', 'n')
			case c == '\r':
				b = append(b, '\\', 'r')
			case c == '\t':
				b = append(b, '\\', 't')
			case c < 0x20:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			default:
				b = append(b, c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, `\ufffd`...)
		} else {
			b = append(b, s[i:i+size]...)
		}
		i += size
	}
	return append(b, '"')
}
