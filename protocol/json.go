package protocol

import (
	"errors"
	"math"
	"strconv"
	"unicode/utf16"
	"unicode/utf8"
)

// A small JSON (RFC 8259) reader and writer for SenML JSON packs, hand
// written for the same reasons as cbor.go.

// --- reader ---------------------------------------------------------------

// jscan is a small JSON (RFC 8259) scanner for SenML packs: it reads the
// values SenML uses without building a generic tree, and skips anything
// else (depth-limited). The input must be valid UTF-8 (checked up front).
type jscan struct {
	b   []byte
	off int
}

var errJSON = errors.New("malformed JSON")

func (s *jscan) ws() {
	for s.off < len(s.b) {
		switch s.b[s.off] {
		case ' ', '\t', '\r', '\n':
			s.off++
		default:
			return
		}
	}
}

// peek returns the next non-space byte, or 0 at the end.
func (s *jscan) peek() byte {
	s.ws()
	if s.off < len(s.b) {
		return s.b[s.off]
	}
	return 0
}

// eat consumes c if it is the next non-space byte.
func (s *jscan) eat(c byte) bool {
	if s.peek() == c {
		s.off++
		return true
	}
	return false
}

// rawString reads a string and returns its bytes when it has no escapes
// (a slice of the input), else the unescaped bytes in a new buffer.
func (s *jscan) rawString() ([]byte, error) {
	if !s.eat('"') {
		return nil, errType
	}
	start := s.off
	for s.off < len(s.b) {
		c := s.b[s.off]
		switch {
		case c == '"':
			out := s.b[start:s.off]
			s.off++
			return out, nil
		case c == '\\':
			return s.slowString(start)
		case c < 0x20:
			return nil, errJSON
		}
		s.off++
	}
	return nil, errJSON
}

func (s *jscan) slowString(start int) ([]byte, error) {
	out := append([]byte(nil), s.b[start:s.off]...)
	for s.off < len(s.b) {
		c := s.b[s.off]
		switch {
		case c == '"':
			s.off++
			return out, nil
		case c < 0x20:
			return nil, errJSON
		case c != '\\':
			out = append(out, c)
			s.off++
			continue
		}
		if s.off+1 >= len(s.b) {
			return nil, errJSON
		}
		e := s.b[s.off+1]
		s.off += 2
		switch e {
		case '"', '\\', '/':
			out = append(out, e)
		case 'b':
			out = append(out, '\b')
		case 'f':
			out = append(out, '\f')
		case 'n':
			out = append(out, '\n')
		case 'r':
			out = append(out, '\r')
		case 't':
			out = append(out, '\t')
		case 'u':
			r, ok := s.hex4()
			if !ok {
				return nil, errJSON
			}
			if utf16.IsSurrogate(r) {
				r2 := rune(utf8.RuneError)
				if s.off+1 < len(s.b) && s.b[s.off] == '\\' && s.b[s.off+1] == 'u' {
					save := s.off
					s.off += 2
					if lo, ok := s.hex4(); ok {
						if d := utf16.DecodeRune(r, lo); d != utf8.RuneError {
							r2 = d
						} else {
							s.off = save
						}
					} else {
						return nil, errJSON
					}
				}
				r = r2
			}
			out = utf8.AppendRune(out, r)
		default:
			return nil, errJSON
		}
	}
	return nil, errJSON
}

func (s *jscan) hex4() (rune, bool) {
	if len(s.b)-s.off < 4 {
		return 0, false
	}
	var r rune
	for _, c := range s.b[s.off : s.off+4] {
		switch {
		case c >= '0' && c <= '9':
			c -= '0'
		case c >= 'a' && c <= 'f':
			c -= 'a' - 10
		case c >= 'A' && c <= 'F':
			c -= 'A' - 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	s.off += 4
	return r, true
}

// number reads a JSON number.
func (s *jscan) number() (float64, error) {
	s.ws()
	start := s.off
	b := s.b
	i := s.off
	if i < len(b) && b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case i < len(b) && b[i] >= '1' && b[i] <= '9':
		i, _ = digits(b, i)
	default:
		if i == start && i < len(b) && (b[i] == '"' || b[i] == 't' || b[i] == 'f' || b[i] == 'n' || b[i] == '[' || b[i] == '{') {
			return 0, errType
		}
		return 0, errJSON
	}
	ok := true
	if i < len(b) && b[i] == '.' {
		i, ok = digits(b, i+1)
	}
	if ok && i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		i, ok = digits(b, i)
	}
	if !ok {
		return 0, errJSON
	}
	s.off = i
	f, err := strconv.ParseFloat(string(b[start:i]), 64)
	if err != nil {
		return 0, errBadNumber // out of float64 range
	}
	return f, nil
}

// digits returns the index of the first non-digit in b at or after i, and
// whether there was at least one digit.
func digits(b []byte, i int) (end int, ok bool) {
	start := i
	for i < len(b) && b[i] >= '0' && b[i] <= '9' {
		i++
	}
	return i, i > start
}

// literal reads true, false or null.
func (s *jscan) literal() (v bool, null bool, err error) {
	s.ws()
	rest := s.b[s.off:]
	switch {
	case len(rest) >= 4 && string(rest[:4]) == "true":
		s.off += 4
		return true, false, nil
	case len(rest) >= 5 && string(rest[:5]) == "false":
		s.off += 5
		return false, false, nil
	case len(rest) >= 4 && string(rest[:4]) == "null":
		s.off += 4
		return false, true, nil
	}
	if len(rest) > 0 && (rest[0] == '"' || rest[0] == '-' || rest[0] >= '0' && rest[0] <= '9' || rest[0] == '[' || rest[0] == '{') {
		return false, false, errType
	}
	return false, false, errJSON
}

// skip passes over one complete value of any type.
func (s *jscan) skip(depth int) error {
	if depth > maxDepth {
		return errJSON
	}
	switch c := s.peek(); {
	case c == '"':
		_, err := s.rawString()
		return err
	case c == '{' || c == '[':
		s.off++
		close := byte('}')
		if c == '[' {
			close = ']'
		}
		if s.eat(close) {
			return nil
		}
		for {
			if c == '{' {
				if _, err := s.rawString(); err != nil {
					return errJSON
				}
				if !s.eat(':') {
					return errJSON
				}
			}
			if err := s.skip(depth + 1); err != nil {
				return err
			}
			if s.eat(close) {
				return nil
			}
			if !s.eat(',') {
				return errJSON
			}
		}
	case c == 't' || c == 'f' || c == 'n':
		_, _, err := s.literal()
		return err
	default:
		_, err := s.number()
		if errors.Is(err, errType) {
			return errJSON
		}
		return err
	}
}

// --- writer ---------------------------------------------------------------

// appendJSONNumber writes f in the shortest form that parses back to f.
func appendJSONNumber(b []byte, f float64) []byte {
	if f == math.Trunc(f) && math.Abs(f) < 1e21 {
		return strconv.AppendFloat(b, f, 'f', -1, 64)
	}
	return strconv.AppendFloat(b, f, 'g', -1, 64)
}

// appendJSONBool writes true or false.
func appendJSONBool(b []byte, v bool) []byte {
	if v {
		return append(b, "true"...)
	}
	return append(b, "false"...)
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
