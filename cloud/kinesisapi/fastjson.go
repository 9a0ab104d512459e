package kinesisapi

import (
	"bytes"
	"encoding/base64"
	"unicode/utf8"
)

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
	ok := p.object(func(key []byte) (bit int, ok bool) {
		switch string(key) {
		case "StreamName":
			return 1, p.strPtr(&req.StreamName)
		case "StreamARN":
			return 2, p.strPtr(&req.StreamARN)
		case "Records":
			req.Records, ok = p.records()
			return 4, ok
		}
		return 0, false
	})
	return req, ok && p.end()
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

// strPtr reads a string, or null, into *dst.
func (p *scan) strPtr(dst **string) bool {
	if p.null() {
		return true
	}
	s, ok := p.str()
	if !ok {
		return false
	}
	v := string(s)
	*dst = &v
	return true
}

// object reads a JSON object. For each member it reads the key and the
// colon and calls member, which reads the value and reports the key's
// bit (a distinct power of two, to refuse repeated keys; 0 refuses the
// key) and whether the value was valid.
func (p *scan) object(member func(key []byte) (bit int, ok bool)) bool {
	if !p.byte('{') {
		return false
	}
	if p.peek() == '}' {
		p.i++
		return true
	}
	seen := 0
	for {
		key, ok := p.str()
		if !ok || !p.byte(':') {
			return false
		}
		bit, ok := member(key)
		if !ok || bit == 0 || seen&bit != 0 {
			return false
		}
		seen |= bit
		switch p.next() {
		case ',':
		case '}':
			return true
		default:
			return false
		}
	}
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
	var e putEntryJSON
	member := func(key []byte) (int, bool) {
		switch string(key) {
		case "PartitionKey":
			return 1, p.strPtr(&e.PartitionKey)
		case "ExplicitHashKey":
			return 2, p.strPtr(&e.ExplicitHashKey)
		case "Data":
			return 4, p.base64(&e.Data, &arena)
		}
		return 0, false
	}
	for {
		e = putEntryJSON{}
		if !p.object(member) {
			return nil, false
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

// base64 reads a base64 string, or null, into *dst, decoding it into
// *arena (a new one when it is full).
func (p *scan) base64(dst **[]byte, arena *[]byte) bool {
	if p.null() {
		return true
	}
	s, ok := p.raw()
	if !ok || bytes.IndexByte(s, '\n') >= 0 || bytes.IndexByte(s, '\r') >= 0 {
		return false
	}
	a := *arena
	if n := base64.StdEncoding.DecodedLen(len(s)); a == nil || cap(a)-len(a) < n {
		a = make([]byte, 0, max(64<<10, n))
	}
	start := len(a)
	n, err := base64.StdEncoding.Decode(a[start:cap(a)], s)
	if err != nil {
		return false
	}
	a = a[:start+n]
	*arena = a
	d := a[start : start+n : start+n]
	*dst = &d
	return true
}
