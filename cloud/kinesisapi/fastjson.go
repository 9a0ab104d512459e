package kinesisapi

import (
	"bytes"
	"encoding/base64"
	"unicode/utf8"
)

// putRecordsReq is the PutRecords request.
type putRecordsReq struct {
	streamRef
	Records []putEntryJSON
}

// decodePutRecords decodes the PutRecords request, the one large request
// (up to 500 records and 5 MiB), in a single pass without reflection:
// every Data blob is base64-decoded straight into one arena. It handles
// exactly the JSON that SDKs send (the three top-level members and the
// three entry members, in any order, strings without escapes, nulls,
// whitespace); for anything else it reports false and the caller falls
// back to encoding/json, which then gives the same result or the error.
// FuzzDecodePutRecords checks it against encoding/json.
func decodePutRecords(b []byte) (putRecordsReq, bool) {
	var req putRecordsReq
	p := &scan{b: b}
	if !p.byte('{') {
		return req, false
	}
	seen := 0
	if p.peek() == '}' {
		p.i++
		return req, p.end()
	}
	for {
		key, ok := p.str()
		if !ok || !p.byte(':') {
			return req, false
		}
		var bit int
		switch string(key) {
		case "StreamName":
			bit = 1
			req.StreamName, ok = p.strPtr()
		case "StreamARN":
			bit = 2
			req.StreamARN, ok = p.strPtr()
		case "Records":
			bit = 4
			req.Records, ok = p.records()
		default:
			return req, false
		}
		if !ok || seen&bit != 0 {
			return req, false
		}
		seen |= bit
		switch p.next() {
		case ',':
		case '}':
			return req, p.end()
		default:
			return req, false
		}
	}
}

type scan struct {
	b []byte
	i int
}

func (p *scan) ws() {
	for p.i < len(p.b) {
		switch p.b[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
		default:
			return
		}
	}
}

func (p *scan) peek() byte {
	p.ws()
	if p.i < len(p.b) {
		return p.b[p.i]
	}
	return 0
}

func (p *scan) next() byte {
	c := p.peek()
	if c != 0 {
		p.i++
	}
	return c
}

func (p *scan) byte(c byte) bool { return p.next() == c }

func (p *scan) end() bool {
	p.ws()
	return p.i == len(p.b)
}

// null consumes a JSON null if one is next.
func (p *scan) null() bool {
	if p.peek() == 'n' && bytes.HasPrefix(p.b[p.i:], []byte("null")) {
		p.i += 4
		return true
	}
	return false
}

// str reads a string without escapes or control characters, valid UTF-8.
func (p *scan) str() ([]byte, bool) {
	s, ok := p.raw()
	if !ok {
		return nil, false
	}
	for _, c := range s {
		if c < 0x20 {
			return nil, false
		}
	}
	return s, utf8.Valid(s)
}

// raw reads a string without escapes, unchecked otherwise (for base64,
// whose decoder rejects every other byte but CR and LF, checked here).
func (p *scan) raw() ([]byte, bool) {
	if !p.byte('"') {
		return nil, false
	}
	n := bytes.IndexByte(p.b[p.i:], '"')
	if n < 0 {
		return nil, false
	}
	s := p.b[p.i : p.i+n]
	p.i += n + 1
	if bytes.IndexByte(s, '\\') >= 0 {
		return nil, false
	}
	return s, true
}

func (p *scan) strPtr() (*string, bool) {
	if p.null() {
		return nil, true
	}
	s, ok := p.str()
	if !ok {
		return nil, false
	}
	v := string(s)
	return &v, true
}

func (p *scan) records() ([]putEntryJSON, bool) {
	if p.null() {
		return nil, true
	}
	if !p.byte('[') {
		return nil, false
	}
	out := make([]putEntryJSON, 0, 16)
	if p.peek() == ']' {
		p.i++
		return out, true
	}
	var arena []byte
	for {
		var e putEntryJSON
		if !p.byte('{') {
			return nil, false
		}
		seen := 0
		if p.peek() == '}' {
			p.i++
		} else {
			for {
				key, ok := p.str()
				if !ok || !p.byte(':') {
					return nil, false
				}
				var bit int
				switch string(key) {
				case "PartitionKey":
					bit = 1
					e.PartitionKey, ok = p.strPtr()
				case "ExplicitHashKey":
					bit = 2
					e.ExplicitHashKey, ok = p.strPtr()
				case "Data":
					bit = 4
					if p.null() {
						break
					}
					var s []byte
					if s, ok = p.raw(); !ok || bytes.IndexByte(s, '\n') >= 0 || bytes.IndexByte(s, '\r') >= 0 {
						return nil, false
					}
					if arena == nil || cap(arena)-len(arena) < base64.StdEncoding.DecodedLen(len(s)) {
						arena = make([]byte, 0, max(64<<10, base64.StdEncoding.DecodedLen(len(s))))
					}
					start := len(arena)
					n, err := base64.StdEncoding.Decode(arena[start:cap(arena)], s)
					if err != nil {
						return nil, false
					}
					arena = arena[:start+n]
					d := arena[start : start+n : start+n]
					e.Data = &d
				default:
					return nil, false
				}
				if !ok || seen&bit != 0 {
					return nil, false
				}
				seen |= bit
				c := p.next()
				if c == '}' {
					break
				}
				if c != ',' {
					return nil, false
				}
			}
		}
		out = append(out, e)
		switch p.next() {
		case ',':
		case ']':
			return out, true
		default:
			return nil, false
		}
	}
}
