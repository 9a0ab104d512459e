package auth

import (
	"bytes"
	"testing"
)

// FuzzParsePHC: a password hash from the file parses to an error on
// garbage or out-of-bounds parameters, never a panic, and what parses
// prints back to a string that parses to the same hash.
func FuzzParsePHC(f *testing.F) {
	f.Add("$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0c2FsdA$a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5")
	f.Add("$argon2id$v=19$m=4194304,t=2,p=1$c2FsdHNhbHRzYWx0c2FsdA$a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5")
	f.Add("$argon2i$v=19$m=19456,t=2,p=1$c2FsdA$a2V5")
	f.Add("$2a$10$abcdefghijklmnopqrstuv")
	f.Add("")
	f.Fuzz(func(t *testing.T, s string) {
		h, err := parsePHC(s)
		if err != nil {
			return
		}
		if h.memory > maxArgonMemoryKiB || h.time > maxArgonTime || h.threads > maxArgonThreads || h.time < 1 || h.threads < 1 {
			t.Fatalf("%q: parameters out of bounds accepted: %+v", s, h)
		}
		again, err := parsePHC(h.String())
		if err != nil || again.memory != h.memory || again.time != h.time || again.threads != h.threads ||
			!bytes.Equal(again.salt, h.salt) || !bytes.Equal(again.key, h.key) {
			t.Fatalf("%q prints as %q, which parses to %+v, %v", s, h.String(), again, err)
		}
	})
}
