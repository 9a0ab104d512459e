package auth

import (
	"bytes"
	"errors"
	"testing"
)

// FuzzParseToken: no panics; whatever parses formats back to the same
// string (the format is canonical); whatever fails wraps ErrMalformed.
func FuzzParseToken(f *testing.F) {
	id, sec, _ := newToken(bytes.NewReader(bytes.Repeat([]byte{0xa5, 0x3c, 0xff}, 20)))
	valid := formatToken(id, &sec)
	for _, s := range []string{valid, "", "trib_", "trib_" + valid[5:58] + "=", valid[:58] + "B",
		"Bearer " + valid, "trib-" + valid[5:], valid[:20] + "+" + valid[21:], valid[:20] + "/" + valid[21:]} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		id, raw, err := ParseToken(s)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v does not wrap ErrMalformed", err)
			}
			return
		}
		sec := secret(raw)
		if got := formatToken(id, &sec); got != s {
			t.Fatalf("ParseToken(%q) formats back as %q", s, got)
		}
	})
}

func TestParseTokenNonCanonical(t *testing.T) {
	id, sec, _ := newToken(bytes.NewReader(bytes.Repeat([]byte{0xff}, 40)))
	valid := formatToken(id, &sec)
	// The last base64 character holds 2 data bits and 4 padding bits:
	// any other padding bits are a different string for the same bytes.
	for _, c := range "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_" {
		s := valid[:len(valid)-1] + string(c)
		if _, _, err := ParseToken(s); err == nil && s != valid {
			id2, raw, _ := ParseToken(s)
			sec2 := secret(raw)
			if formatToken(id2, &sec2) != s {
				t.Errorf("non-canonical %q accepted", s)
			}
		}
	}
}
