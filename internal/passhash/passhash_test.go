package passhash_test

import (
	"bytes"
	"crypto/rand"
	"errors"
	"strings"
	"testing"

	"github.com/tributary-iot/tributary/internal/passhash"
)

var fast = passhash.Params{Memory: 64, Time: 1, Threads: 1}

// Hashes written before this package existed, by cloud/auth (users.db)
// and edge/devicecreds (devices.json), with DefaultParams: they still
// parse, verify their password, refuse another, and print back unchanged.
func TestOldHashesVerify(t *testing.T) {
	for _, tc := range []struct{ name, hash, password string }{
		{"cloud/auth", "$argon2id$v=19$m=19456,t=2,p=1$5Tj7mX7DEMhLWt0Uz8WLrA$VvAhlrpkx0BLBQ7t7PhLGs9uYDEKt7iVgLkaf3281IY",
			"correct horse battery staple"},
		{"edge/devicecreds", "$argon2id$v=19$m=19456,t=2,p=1$DOuFJkmJxsRWEH3/QWE3+w$jhMySrRsB4gQ12ULnSrMS4AJSm/e+DcasbNv1w4jIF0",
			"pw-dev-1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, err := passhash.Parse(tc.hash)
			if err != nil {
				t.Fatal(err)
			}
			if h.Params != passhash.DefaultParams {
				t.Errorf("params %v, want %v", h.Params, passhash.DefaultParams)
			}
			if !h.Verify([]byte(tc.password)) {
				t.Error("the password does not verify")
			}
			if h.Verify([]byte(tc.password + "x")) {
				t.Error("another password verifies")
			}
			if h.String() != tc.hash {
				t.Errorf("prints as %q", h.String())
			}
		})
	}
}

func TestNewVerify(t *testing.T) {
	h, err := passhash.New([]byte("s3cret"), fast, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if len(h.Salt) != passhash.SaltLen || len(h.Key) != passhash.KeyLen {
		t.Errorf("salt %d bytes, key %d", len(h.Salt), len(h.Key))
	}
	h2, _ := passhash.New([]byte("s3cret"), fast, rand.Reader)
	if bytes.Equal(h.Salt, h2.Salt) || h.String() == h2.String() {
		t.Error("two hashes of one password share a salt")
	}
	p, err := passhash.Parse(h.String())
	if err != nil {
		t.Fatal(err)
	}
	for pw, want := range map[string]bool{"s3cret": true, "s3cret ": false, "": false, "S3cret": false} {
		if p.Verify([]byte(pw)) != want {
			t.Errorf("Verify(%q) = %v, want %v", pw, !want, want)
		}
	}
	if got := p.Params.String(); got != "argon2id m=64,t=1,p=1" {
		t.Errorf("params %q", got)
	}
}

func TestNewRefuses(t *testing.T) {
	for _, p := range []passhash.Params{{}, {Memory: 7, Time: 1, Threads: 1}, {Memory: 64, Time: 0, Threads: 1},
		{Memory: 64, Time: 1, Threads: 0}, {Memory: passhash.MaxMemoryKiB + 1, Time: 1, Threads: 1},
		{Memory: 1024, Time: passhash.MaxTime + 1, Threads: 1}, {Memory: 1024, Time: 1, Threads: passhash.MaxThreads + 1}} {
		if _, err := passhash.New([]byte("x"), p, rand.Reader); !errors.Is(err, passhash.ErrMalformed) {
			t.Errorf("New with %+v: %v, want ErrMalformed", p, err)
		}
	}
	if _, err := passhash.New([]byte("x"), fast, strings.NewReader("short")); err == nil {
		t.Error("New with a failing random source: no error")
	}
}

func TestParseRefuses(t *testing.T) {
	const salt, key = "c2FsdHNhbHRzYWx0c2FsdA", "a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5"
	for _, s := range []string{
		"", "x", "$2a$10$abcdefghijklmnopqrstuv",
		"$argon2i$v=19$m=64,t=1,p=1$" + salt + "$" + key,
		"$argon2id$v=16$m=64,t=1,p=1$" + salt + "$" + key,
		"$argon2id$v=19$m=4194304,t=2,p=1$" + salt + "$" + key, // 4 GiB
		"$argon2id$v=19$m=64,t=17,p=1$" + salt + "$" + key,
		"$argon2id$v=19$m=64,t=1,p=300$" + salt + "$" + key,
		"$argon2id$v=19$m=64,t=1,p=0$" + salt + "$" + key,
		"$argon2id$v=19$m=7,t=1,p=1$" + salt + "$" + key,
		"$argon2id$v=19$t=1,m=64,p=1$" + salt + "$" + key,
		"$argon2id$v=19$m=64,t=1$" + salt + "$" + key,
		"$argon2id$v=19$m=64,t=1,p=1,x=2$" + salt + "$" + key,
		"$argon2id$v=19$m=+64,t=1,p=1$" + salt + "$" + key,
		"$argon2id$v=19$m=64,t=1,p=1$c2FsdA$" + key,     // 4-byte salt
		"$argon2id$v=19$m=64,t=1,p=1$" + salt + "$a2V5", // 3-byte key
		"$argon2id$v=19$m=64,t=1,p=1$" + salt + "==$" + key,
		"$argon2id$v=19$m=64,t=1,p=1$" + salt + "$" + key + "$",
	} {
		if _, err := passhash.Parse(s); !errors.Is(err, passhash.ErrMalformed) {
			t.Errorf("Parse(%q): %v, want ErrMalformed", s, err)
		}
	}
}

// FuzzParse: a hash from a file parses to an error on garbage or
// out-of-bounds parameters, never a panic, and what parses prints back to
// a string that parses to the same hash.
func FuzzParse(f *testing.F) {
	f.Add("$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0c2FsdA$a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5")
	f.Add("$argon2id$v=19$m=4194304,t=2,p=1$c2FsdHNhbHRzYWx0c2FsdA$a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5")
	f.Add("$argon2i$v=19$m=19456,t=2,p=1$c2FsdA$a2V5")
	f.Add("$2a$10$abcdefghijklmnopqrstuv")
	f.Add("")
	f.Fuzz(func(t *testing.T, s string) {
		h, err := passhash.Parse(s)
		if err != nil {
			if !errors.Is(err, passhash.ErrMalformed) {
				t.Fatalf("%q: error %v is not ErrMalformed", s, err)
			}
			return
		}
		if h.Check() != nil || len(h.Salt) < 8 || len(h.Salt) > 64 || len(h.Key) < 16 || len(h.Key) > 64 {
			t.Fatalf("%q: out of bounds accepted: %v, %d-byte salt, %d-byte key", s, h.Params, len(h.Salt), len(h.Key))
		}
		again, err := passhash.Parse(h.String())
		if err != nil || again.Params != h.Params || !bytes.Equal(again.Salt, h.Salt) || !bytes.Equal(again.Key, h.Key) {
			t.Fatalf("%q prints as %q, which parses to %+v, %v", s, h.String(), again, err)
		}
	})
}
