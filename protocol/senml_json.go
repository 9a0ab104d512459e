package protocol

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
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
	dec := json.NewDecoder(bytes.NewReader(b))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('[') {
		return fail(senmlErr(-1, "", ErrSyntax, "a SenML JSON pack is an array of objects"))
	}
	res := resolver{opts: opts}
	var raw rawRecord
	i := 0
	for ; dec.More(); i++ {
		if i >= max {
			return fail(senmlErr(i, "", ErrTooMany, "limit %d records per pack", max))
		}
		raw = rawRecord{}
		if err := decodeJSONRecord(dec, i, &raw, opts.stream); err != nil {
			return fail(err)
		}
		if i == 0 {
			info.firstBn = raw.bn
		}
		if dst, err = res.apply(i, &raw, dst); err != nil {
			return fail(err)
		}
	}
	if tok, err := dec.Token(); err != nil || tok != json.Delim(']') {
		return fail(senmlErr(-1, "", ErrSyntax, "the pack array is not closed properly"))
	}
	if _, err := dec.Token(); err != io.EOF {
		return fail(senmlErr(-1, "", ErrSyntax, "data after the end of the pack"))
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

func decodeJSONRecord(dec *json.Decoder, i int, raw *rawRecord, stream bool) error {
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return senmlErr(i, "", ErrSyntax, "a record is a JSON object")
	}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return senmlErr(i, "", ErrSyntax, "%v", cleanJSONErr(err))
		}
		key, ok := tok.(string)
		if !ok {
			return senmlErr(i, "", ErrSyntax, "object key is not a string")
		}
		label, known := jsonLabels[key]
		if !known {
			if err := decodeJSONExtension(dec, i, raw, key, stream); err != nil {
				return err
			}
			continue
		}
		b := bit(label)
		if raw.has&b != 0 {
			return senmlErr(i, key, ErrDuplicateLabel, "")
		}
		raw.has |= b
		tok, err = dec.Token()
		if err != nil {
			return senmlErr(i, key, ErrSyntax, "%v", cleanJSONErr(err))
		}
		if d, isDelim := tok.(json.Delim); isDelim {
			return senmlErr(i, key, ErrType, "want %s, got %s", labelType(label), delimKind(d))
		}
		typeErr := senmlErr(i, key, ErrType, "want %s", labelType(label))
		switch label {
		case labelBn, labelBu, labelN, labelU, labelVs, labelVd:
			s, ok := tok.(string)
			if !ok {
				return typeErr
			}
			if len(s) > MaxStringValueBytes {
				return senmlErr(i, key, ErrTooLarge, "%d bytes, limit %d", len(s), MaxStringValueBytes)
			}
			switch label {
			case labelBn:
				raw.bn = s
			case labelBu:
				raw.bu = s
			case labelN:
				raw.n = s
			case labelU:
				raw.u = s
			case labelVs:
				raw.vs = s
			case labelVd:
				d, err := decodeBase64URL(s)
				if err != nil {
					return senmlErr(i, key, ErrType, "vd is not base64url: %v", err)
				}
				raw.vd = d
			}
		case labelVb:
			v, ok := tok.(bool)
			if !ok {
				return typeErr
			}
			raw.vb = v
		default:
			f, ok := tok.(float64)
			if !ok {
				return typeErr
			}
			if !finite(f) {
				return senmlErr(i, key, ErrBadNumber, "")
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
	}
	if tok, err := dec.Token(); err != nil || tok != json.Delim('}') {
		return senmlErr(i, "", ErrSyntax, "record object is not closed properly")
	}
	return nil
}

func decodeJSONExtension(dec *json.Decoder, i int, raw *rawRecord, key string, stream bool) error {
	if stream {
		switch key {
		case LabelGateway, LabelReceived, LabelFlags:
			tok, err := dec.Token()
			if err != nil {
				return senmlErr(i, key, ErrSyntax, "%v", cleanJSONErr(err))
			}
			switch v := tok.(type) {
			case string:
				if key == LabelGateway {
					raw.gw, raw.has = v, raw.has|bitGw
					return nil
				}
			case float64:
				if key == LabelReceived && finite(v) {
					raw.rt, raw.has = v, raw.has|bitRt
					return nil
				}
				if key == LabelFlags && v >= 0 && v < 256 && v == math.Trunc(v) {
					raw.fl, raw.has = uint64(v), raw.has|bitFl
					return nil
				}
			}
			return senmlErr(i, key, ErrType, "extension label has the wrong type")
		}
	}
	if len(key) > 0 && key[len(key)-1] == '_' {
		return senmlErr(i, key, ErrMustUnderstand, "this receiver does not implement the extension")
	}
	var skip json.RawMessage
	if err := dec.Decode(&skip); err != nil {
		return senmlErr(i, key, ErrSyntax, "%v", cleanJSONErr(err))
	}
	return nil
}

func delimKind(d json.Delim) string {
	if d == '{' {
		return "an object"
	}
	return "an array"
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

func cleanJSONErr(err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return errors.New("unexpected end of JSON")
	}
	return err
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
