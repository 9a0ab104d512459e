// Package passhash hashes and verifies passwords with argon2id (RFC 9106),
// kept as PHC strings:
//
//	$argon2id$v=19$m=MEMORY_KIB,t=PASSES,p=LANES$SALT$KEY
//
// (SALT and KEY unpadded standard base64). A hash carries its own
// parameters, so raising DefaultParams later leaves existing passwords
// working. Parse bounds what it accepts from a file (MaxMemoryKiB,
// MaxTime, MaxThreads, salt and key lengths), so a damaged or hand-edited
// hash cannot make one check take a gigabyte or a minute.
//
// Only the format and the derivation live here. Policies stay with the
// callers: the cloud's admin users (cloud/auth: password length, a
// concurrency limit, the dummy hash for unknown names) and the gateway's
// device passwords (edge/devicecreds: a verification cache, per-address
// rate limits, a concurrency limit).
package passhash

import (
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"golang.org/x/crypto/argon2"
)

// Params are argon2id's cost parameters.
type Params struct {
	Memory  uint32 // KiB
	Time    uint32 // passes
	Threads uint8  // lanes
}

// DefaultParams are OWASP's recommended minimum for argon2id: 19 MiB of
// memory, 2 passes, 1 lane.
var DefaultParams = Params{Memory: 19 * 1024, Time: 2, Threads: 1}

const (
	// SaltLen and KeyLen are the lengths, in bytes, of the salt and key
	// of a new hash.
	SaltLen = 16
	KeyLen  = 32

	// Bounds on the parameters accepted (from New's caller or a file):
	// Memory from 8×Threads to MaxMemoryKiB, Time from 1 to MaxTime,
	// Threads from 1 to MaxThreads.
	MaxMemoryKiB = 256 * 1024
	MaxTime      = 16
	MaxThreads   = 16

	// Bounds on the salt and key lengths Parse accepts, in bytes.
	minSalt, maxSalt = 8, 64
	minKey, maxKey   = 16, 64
)

// ErrMalformed: a string is not an argon2id PHC string this package
// accepts (wrong format, parameters out of bounds, bad salt or key).
var ErrMalformed = errors.New("passhash: not an argon2id hash")

// Check says what is wrong with p, or nil when it is within bounds.
func (p Params) Check() error {
	if p.Threads < 1 || p.Threads > MaxThreads || p.Time < 1 || p.Time > MaxTime ||
		p.Memory < 8*uint32(p.Threads) || p.Memory > MaxMemoryKiB {
		return fmt.Errorf("%w: parameters m=%d,t=%d,p=%d out of bounds (m 8p..%d KiB, t 1..%d, p 1..%d)",
			ErrMalformed, p.Memory, p.Time, p.Threads, MaxMemoryKiB, MaxTime, MaxThreads)
	}
	return nil
}

// String describes the algorithm and parameters, as in
// "argon2id m=19456,t=2,p=1".
func (p Params) String() string {
	return fmt.Sprintf("argon2id m=%d,t=%d,p=%d", p.Memory, p.Time, p.Threads)
}

// Hash is a parsed (or new) argon2id hash.
type Hash struct {
	Params
	Salt, Key []byte
}

// New hashes password with p and a SaltLen-byte salt read from rand
// (crypto/rand.Reader unless a test needs otherwise).
func New(password []byte, p Params, rand io.Reader) (Hash, error) {
	if err := p.Check(); err != nil {
		return Hash{}, err
	}
	h := Hash{Params: p, Salt: make([]byte, SaltLen)}
	if _, err := io.ReadFull(rand, h.Salt); err != nil {
		return Hash{}, fmt.Errorf("passhash: random salt: %w", err)
	}
	h.Key = h.derive(password, KeyLen)
	return h, nil
}

func (h Hash) derive(password []byte, n int) []byte {
	return argon2.IDKey(password, h.Salt, h.Time, h.Memory, h.Threads, uint32(n))
}

// Verify reports whether password matches h: one argon2id derivation,
// compared in constant time.
func (h Hash) Verify(password []byte) bool {
	return subtle.ConstantTimeCompare(h.derive(password, len(h.Key)), h.Key) == 1
}

// String is the PHC string.
func (h Hash) String() string {
	b64 := base64.RawStdEncoding.EncodeToString
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, h.Memory, h.Time, h.Threads,
		b64(h.Salt), b64(h.Key))
}

// Parse reads a PHC string, $argon2id$v=19$m=M,t=T,p=P$SALT$KEY,
// refusing (ErrMalformed) any other format, parameters beyond the bounds,
// a salt of other than 8 to 64 bytes or a key of other than 16 to 64.
func Parse(s string) (Hash, error) {
	parts := strings.Split(s, "$")
	if len(parts) != 6 || parts[0] != "" || parts[1] != "argon2id" || parts[2] != "v="+strconv.Itoa(argon2.Version) {
		return Hash{}, fmt.Errorf("%w: want $argon2id$v=%d$m=..,t=..,p=..$SALT$KEY", ErrMalformed, argon2.Version)
	}
	var h Hash
	var err error
	if h.Params, err = parseParams(parts[3]); err != nil {
		return Hash{}, err
	}
	dec := base64.RawStdEncoding.Strict().DecodeString
	if h.Salt, err = dec(parts[4]); err != nil || len(h.Salt) < minSalt || len(h.Salt) > maxSalt {
		return Hash{}, fmt.Errorf("%w: bad salt (want %d to %d bytes, unpadded base64)", ErrMalformed, minSalt, maxSalt)
	}
	if h.Key, err = dec(parts[5]); err != nil || len(h.Key) < minKey || len(h.Key) > maxKey {
		return Hash{}, fmt.Errorf("%w: bad key (want %d to %d bytes, unpadded base64)", ErrMalformed, minKey, maxKey)
	}
	return h, nil
}

// parseParams reads "m=M,t=T,p=P" (in this order, decimal) and checks the
// bounds.
func parseParams(s string) (Params, error) {
	var v [3]uint64
	kvs := strings.Split(s, ",")
	if len(kvs) != len(v) {
		return Params{}, fmt.Errorf("%w: parameters %.40q: want m=..,t=..,p=..", ErrMalformed, s)
	}
	for i, name := range []string{"m", "t", "p"} {
		k, val, _ := strings.Cut(kvs[i], "=")
		n, err := strconv.ParseUint(val, 10, 32)
		if k != name || err != nil {
			return Params{}, fmt.Errorf("%w: parameters %.40q: want m=..,t=..,p=.. (decimal)", ErrMalformed, s)
		}
		v[i] = n
	}
	if v[2] > MaxThreads {
		return Params{}, fmt.Errorf("%w: parameter p=%d out of bounds (1..%d)", ErrMalformed, v[2], MaxThreads)
	}
	p := Params{Memory: uint32(v[0]), Time: uint32(v[1]), Threads: uint8(v[2])}
	if err := p.Check(); err != nil {
		return Params{}, err
	}
	return p, nil
}
