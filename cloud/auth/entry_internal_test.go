package auth

import (
	"bytes"
	"crypto/sha256"
	"testing"
	"time"
)

// FuzzDecodeEntry: a token record from the file decodes to an error on
// garbage, never a panic, and what decodes encodes back to the same bytes.
func FuzzDecodeEntry(f *testing.F) {
	id := ID{1, 2, 3, 4, 5, 6, 7, 8}
	f.Add(encodeEntry(id, sha256.Sum256([]byte("secret")), time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC)))
	f.Add(encodeEntry(id, [sha256.Size]byte{}, time.Unix(0, 0))) // empty hash: refused
	f.Add([]byte{recordVersion})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, v []byte) {
		id, hash, created, err := decodeEntry(v)
		if err != nil {
			return
		}
		if hash == ([sha256.Size]byte{}) {
			t.Fatal("accepted an empty hash")
		}
		if got := encodeEntry(id, hash, created); !bytes.Equal(got, v) {
			t.Fatalf("%x decodes to a record that encodes as %x", v, got)
		}
	})
}
