package devicecreds

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"

	"golang.org/x/crypto/argon2"
)

// Params are argon2id's cost parameters.
type Params struct {
	Memory  uint32 // KiB
	Time    uint32 // passes
	Threads uint8  // lanes
}

// DefaultParams are OWASP's recommended minimum for argon2id (m=19 MiB,
// t=2, p=1).
var DefaultParams = Params{Memory: 19 * 1024, Time: 2, Threads: 1}

const (
	saltLen = 16
	keyLen  = 32
	// Bounds of the parameters accepted from a file, so that a hand-edited
	// hash cannot make one check take a gigabyte or a minute.
	maxMemory  = 256 * 1024 // KiB
	maxTime    = 16
	maxThreads = 16
)

// ErrBadHash: a stored hash is not an argon2id PHC string this package
// accepts.
var ErrBadHash = errors.New("devicecreds: not an argon2id hash")

// Hash returns the argon2id PHC string of password with a new random salt.
func Hash(password []byte, p Params) (string, error) {
	if err := p.check(); err != nil {
		return "", err
	}
	salt := make([]byte, saltLen)
	_, _ = rand.Read(salt) // never fails (crypto/rand)
	key := argon2.IDKey(password, salt, p.Time, p.Memory, p.Threads, keyLen)
	b64 := base64.RawStdEncoding.EncodeToString
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, p.Memory, p.Time, p.Threads, b64(salt), b64(key)), nil
}

func (p Params) check() error {
	if p.Threads < 1 || p.Threads > maxThreads || p.Time < 1 || p.Time > maxTime || p.Memory < 8*uint32(p.Threads) || p.Memory > maxMemory {
		return fmt.Errorf("%w: parameters m=%d,t=%d,p=%d out of bounds (m 8p..%d KiB, t 1..%d, p 1..%d)",
			ErrBadHash, p.Memory, p.Time, p.Threads, maxMemory, maxTime, maxThreads)
	}
	return nil
}

// hashed is a parsed PHC string.
type hashed struct {
	p         Params
	salt, key []byte
}

func parseHash(s string) (hashed, error) {
	var h hashed
	parts := strings.Split(s, "$")
	if len(parts) != 6 || parts[0] != "" || parts[1] != "argon2id" || parts[2] != fmt.Sprintf("v=%d", argon2.Version) {
		return h, ErrBadHash
	}
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &h.p.Memory, &h.p.Time, &h.p.Threads); err != nil {
		return h, fmt.Errorf("%w: parameters %q", ErrBadHash, parts[3])
	}
	if err := h.p.check(); err != nil {
		return h, err
	}
	var err error
	if h.salt, err = base64.RawStdEncoding.DecodeString(parts[4]); err != nil || len(h.salt) < 8 {
		return h, fmt.Errorf("%w: salt", ErrBadHash)
	}
	if h.key, err = base64.RawStdEncoding.DecodeString(parts[5]); err != nil || len(h.key) < 16 || len(h.key) > 64 {
		return h, fmt.Errorf("%w: key", ErrBadHash)
	}
	return h, nil
}

// Verify reports whether password matches the PHC string encoded (one
// argon2id derivation, compared in constant time).
func Verify(encoded string, password []byte) (bool, error) {
	h, err := parseHash(encoded)
	if err != nil {
		return false, err
	}
	key := argon2.IDKey(password, h.salt, h.p.Time, h.p.Memory, h.p.Threads, uint32(len(h.key)))
	return subtle.ConstantTimeCompare(key, h.key) == 1, nil
}

// NewPassword returns a new random password: 192 bits, base64url (32
// characters).
func NewPassword() string {
	b := make([]byte, 24)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}
