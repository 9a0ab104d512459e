package auth

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
)

// Token format: TokenPrefix followed by the unpadded base64url encoding of
// 40 random bytes: an 8-byte id (public: listed, logged, used to look the
// token up) and a 32-byte (256-bit) secret. Only SHA-256 of the secret is
// stored. Example: trib_3q2-7wAAAAA... (59 characters).
const (
	TokenPrefix = "trib_"
	idBytes     = 8
	secretBytes = 32
	// TokenLen is the length of a token string: the prefix and 54
	// base64url characters for 40 bytes.
	TokenLen = len(TokenPrefix) + 54
)

// ID identifies a token without revealing it.
type ID [idBytes]byte

// String is the id in hex, as `token list` shows it.
func (id ID) String() string { return hex.EncodeToString(id[:]) }

// secret is a token's secret part; only its hash is kept.
type secret [secretBytes]byte

func (s *secret) hash() [sha256.Size]byte { return sha256.Sum256(s[:]) }

// ParseToken checks a token's format and splits it into its id and secret.
// It accepts exactly what newToken produces: the prefix, then 54 characters
// of unpadded base64url in canonical form.
func ParseToken(tok string) (ID, [secretBytes]byte, error) {
	var id ID
	var sec [secretBytes]byte
	if len(tok) != TokenLen {
		return id, sec, fmt.Errorf("%w: %d characters, want %d", ErrMalformed, len(tok), TokenLen)
	}
	if tok[:len(TokenPrefix)] != TokenPrefix {
		return id, sec, fmt.Errorf("%w: it does not start with %q", ErrMalformed, TokenPrefix)
	}
	var raw [idBytes + secretBytes]byte
	n, err := base64.RawURLEncoding.Strict().Decode(raw[:], []byte(tok[len(TokenPrefix):]))
	if err != nil || n != len(raw) {
		return id, sec, fmt.Errorf("%w: not base64url", ErrMalformed)
	}
	copy(id[:], raw[:idBytes])
	copy(sec[:], raw[idBytes:])
	return id, sec, nil
}

// formatToken is the inverse of ParseToken.
func formatToken(id ID, sec *secret) string {
	var raw [idBytes + secretBytes]byte
	copy(raw[:], id[:])
	copy(raw[idBytes:], sec[:])
	return TokenPrefix + base64.RawURLEncoding.EncodeToString(raw[:])
}

// newToken draws a fresh id and secret from r.
func newToken(r io.Reader) (ID, secret, error) {
	var id ID
	var sec secret
	if _, err := io.ReadFull(r, id[:]); err != nil {
		return id, sec, fmt.Errorf("auth: random: %w", err)
	}
	if _, err := io.ReadFull(r, sec[:]); err != nil {
		return id, sec, fmt.Errorf("auth: random: %w", err)
	}
	return id, sec, nil
}

// matches compares a presented secret with a stored hash in constant time.
func matches(sec *[secretBytes]byte, want *[sha256.Size]byte) bool {
	h := sha256.Sum256(sec[:])
	return subtle.ConstantTimeCompare(h[:], want[:]) == 1
}

var defaultRand io.Reader = rand.Reader
