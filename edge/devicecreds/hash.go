package devicecreds

import (
	"crypto/rand"
	"encoding/base64"

	"github.com/tributary-iot/tributary/internal/passhash"
)

// Params are argon2id's cost parameters (internal/passhash).
type Params = passhash.Params

// DefaultParams are OWASP's recommended minimum for argon2id (m=19 MiB,
// t=2, p=1).
var DefaultParams = passhash.DefaultParams

// ErrBadHash: a stored hash is not an argon2id PHC string this package
// accepts (passhash.ErrMalformed: the format, or parameters beyond
// passhash's bounds, so that a hand-edited hash cannot make one check take
// a gigabyte or a minute).
var ErrBadHash = passhash.ErrMalformed

// Hash returns the argon2id PHC string of password with a new random salt.
func Hash(password []byte, p Params) (string, error) {
	h, err := passhash.New(password, p, rand.Reader)
	if err != nil {
		return "", err
	}
	return h.String(), nil
}

// Verify reports whether password matches the PHC string encoded (one
// argon2id derivation, compared in constant time).
func Verify(encoded string, password []byte) (bool, error) {
	h, err := passhash.Parse(encoded)
	if err != nil {
		return false, err
	}
	return h.Verify(password), nil
}

// NewPassword returns a new random password: 192 bits, base64url (32
// characters).
func NewPassword() string {
	b := make([]byte, 24)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}
