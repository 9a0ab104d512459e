package auth

import (
	"context"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
	"unicode/utf8"

	bolt "go.etcd.io/bbolt"
	"golang.org/x/crypto/argon2"
)

// Errors of the user store.
var (
	ErrUserExists = errors.New("auth: the user already exists")
	ErrNoUser     = errors.New("auth: no such user")
	ErrBadName    = errors.New("auth: bad user name")
	ErrWeak       = errors.New("auth: password too short")
)

// Password hashing: argon2id (RFC 9106) with OWASP's recommended
// parameters (19 MiB of memory, 2 passes, 1 lane), a 16-byte random salt
// per password and a 32-byte key, kept as a PHC string
// ($argon2id$v=19$m=19456,t=2,p=1$SALT$KEY, unpadded base64). A record
// carries its own parameters, so raising them later leaves existing
// passwords working.
const (
	ArgonMemoryKiB = 19 * 1024
	ArgonTime      = 2
	ArgonThreads   = 1
	saltLen        = 16
	keyLen         = 32

	// MinPasswordLen and MaxPasswordLen bound a password, in bytes.
	MinPasswordLen = 12
	MaxPasswordLen = 1024

	// Bounds on the parameters read from the file: a record asking for
	// more is refused as damaged rather than allowed to exhaust memory.
	maxArgonMemoryKiB = 1 << 20 // 1 GiB
	maxArgonTime      = 16
	maxArgonThreads   = 16

	// DefaultMaxHashing caps the password checks running at once (each
	// holds ArgonMemoryKiB); more wait.
	DefaultMaxHashing = 2
)

var usersBucket = []byte("users")

var userNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$`)

// CheckUserName says what is wrong with a user name: 1-64 characters of
// [A-Za-z0-9._@-], starting with a letter or digit.
func CheckUserName(name string) error {
	if !userNameRE.MatchString(name) {
		return fmt.Errorf("%w %q: want 1-64 characters of A-Z a-z 0-9 . _ @ -, starting with a letter or digit", ErrBadName, name)
	}
	return nil
}

// UserInfo describes a user (never the password or its hash).
type UserInfo struct {
	Name    string
	Created time.Time // when the password was set
	KDF     string    // the hash's algorithm and parameters: argon2id m=19456,t=2,p=1
}

// userRecord is a user's value in the file (JSON).
type userRecord struct {
	Hash    string    `json:"hash"` // PHC string
	Created time.Time `json:"created"`
}

// phc is a parsed argon2id PHC string.
type phc struct {
	memory, time uint32
	threads      uint8
	salt, key    []byte
}

// Users holds the admin users of tributary-cloud's admin listener: names
// and argon2id password hashes, in a bbolt file (users.db in the data
// folder, bucket "users", key the name, value JSON {hash, created}).
// Like Store, it opens the file only for one operation, so `tributary-cloud
// user add` works while the server runs; Watch picks the change up.
// Verify and Current read an in-memory snapshot.
type Users struct {
	f    *boltFile
	opts Options
	log  *slog.Logger
	snap atomic.Pointer[userSnapshot]
	sem  chan struct{} // password checks in progress
	// dummy is checked against for unknown names, so that the answer
	// takes as long as for a known one.
	dummy phc
}

type userSnapshot struct {
	byName map[string]phc
	infos  []UserInfo // sorted by name
}

// OpenUsers opens (creating if need be) the user file at path and loads
// it.
func OpenUsers(path string, opts Options) (*Users, error) {
	opts = opts.withDefaults()
	u := &Users{opts: opts, log: opts.Logger, sem: make(chan struct{}, DefaultMaxHashing),
		f: &boltFile{path: path, bucket: usersBucket, timeout: opts.LockTimeout, fix: "move it aside, then add the users again (tributary-cloud user add)"}}
	u.snap.Store(&userSnapshot{byName: map[string]phc{}})
	var err error
	if u.dummy, err = u.newHash("not a password: timing equaliser"); err != nil {
		return nil, err
	}
	u.f.mu.Lock()
	defer u.f.mu.Unlock()
	if created, err := u.f.ensure(); created || err != nil {
		return u, err
	}
	if err := u.reloadLocked(); err != nil {
		return nil, err
	}
	return u, nil
}

// Add creates a user (ErrUserExists if the name is taken).
func (u *Users) Add(name, password string) error { return u.set(name, password, false) }

// SetPassword replaces a user's password (ErrNoUser if there is none).
// Sessions opened with the old one end (Current turns false).
func (u *Users) SetPassword(name, password string) error { return u.set(name, password, true) }

func (u *Users) set(name, password string, replace bool) error {
	if err := CheckUserName(name); err != nil {
		return err
	}
	if err := checkPassword(password); err != nil {
		return err
	}
	h, err := u.newHash(password)
	if err != nil {
		return err
	}
	val, err := json.Marshal(userRecord{Hash: h.String(), Created: u.opts.Now().UTC()})
	if err != nil {
		return fmt.Errorf("auth: %w", err)
	}
	err = u.f.write(func(b *bolt.Bucket) error {
		old := b.Get([]byte(name))
		switch {
		case old != nil && !replace:
			return fmt.Errorf("%w: %s (user passwd changes a password)", ErrUserExists, name)
		case old == nil && replace:
			return fmt.Errorf("%w: %s (user add creates one)", ErrNoUser, name)
		}
		return b.Put([]byte(name), val)
	}, u.reloadLocked)
	if err == nil {
		u.log.Info("admin user saved", "user", name, "password_changed", replace)
	}
	return err
}

// Remove deletes a user (ErrNoUser if there is none); the user's sessions
// end.
func (u *Users) Remove(name string) error {
	err := u.f.write(func(b *bolt.Bucket) error {
		if b.Get([]byte(name)) == nil {
			return fmt.Errorf("%w: %s", ErrNoUser, name)
		}
		return b.Delete([]byte(name))
	}, u.reloadLocked)
	if err == nil {
		u.log.Info("admin user removed", "user", name)
	}
	return err
}

// List returns the users, sorted by name.
func (u *Users) List() []UserInfo { return slices.Clone(u.snap.Load().infos) }

// Len is the number of users.
func (u *Users) Len() int { return len(u.snap.Load().infos) }

// Verify checks a name and password. It costs one argon2id derivation
// whether or not the name exists, and compares keys in constant time. On
// success it returns the credential's id (derived from its salt): a
// session keeps it, and Current tells whether it still holds. At most
// DefaultMaxHashing checks run at once; Verify waits for a turn until ctx
// ends (then it returns ctx's error).
func (u *Users) Verify(ctx context.Context, name, password string) (credential string, err error) {
	select {
	case u.sem <- struct{}{}:
	case <-ctx.Done():
		return "", ctx.Err()
	}
	defer func() { <-u.sem }()
	h, known := u.snap.Load().byName[name]
	ref := h
	if !known {
		ref = u.dummy
	}
	if len(password) > MaxPasswordLen {
		password = password[:MaxPasswordLen]
		known = false
	}
	key := argon2.IDKey([]byte(password), ref.salt, ref.time, ref.memory, ref.threads, uint32(len(ref.key)))
	if subtle.ConstantTimeCompare(key, ref.key) != 1 || !known {
		return "", ErrNoUser
	}
	return credentialID(h), nil
}

// Current reports whether credential (from Verify) is still name's
// password: false once the user is removed or the password changed.
func (u *Users) Current(name, credential string) bool {
	h, ok := u.snap.Load().byName[name]
	return ok && subtle.ConstantTimeCompare([]byte(credentialID(h)), []byte(credential)) == 1
}

func credentialID(h phc) string { return base64.RawURLEncoding.EncodeToString(h.salt) }

// Reload reads the file again if it changed since the last load.
func (u *Users) Reload() error { return u.f.reloadIfChanged(u.reloadLocked) }

// Watch reloads the file every interval when it changed, until ctx is
// done (see Store.Watch).
func (u *Users) Watch(ctx context.Context, every time.Duration) error {
	return watch(ctx, every, u.log, "admin users", u.Reload)
}

func (u *Users) reloadLocked() error {
	snap := &userSnapshot{byName: map[string]phc{}}
	err := u.f.load(func(k, v []byte) {
		name := string(k)
		var rec userRecord
		err := json.Unmarshal(v, &rec)
		var h phc
		if err == nil {
			h, err = parsePHC(rec.Hash)
		}
		if err != nil {
			u.log.Error("ignoring a damaged admin user record; set the password again (tributary-cloud user passwd)", "user", name, "err", err)
			return
		}
		snap.byName[name] = h
		snap.infos = append(snap.infos, UserInfo{Name: name, Created: rec.Created, KDF: h.params()})
	})
	if err != nil {
		return err
	}
	slices.SortFunc(snap.infos, func(a, b UserInfo) int { return strings.Compare(a.Name, b.Name) })
	u.snap.Store(snap)
	return nil
}

func checkPassword(p string) error {
	switch {
	case len(p) < MinPasswordLen:
		return fmt.Errorf("%w: %d bytes, want at least %d", ErrWeak, len(p), MinPasswordLen)
	case len(p) > MaxPasswordLen:
		return fmt.Errorf("auth: password of %d bytes: want at most %d", len(p), MaxPasswordLen)
	case !utf8.ValidString(p):
		return errors.New("auth: password is not valid UTF-8")
	}
	return nil
}

func (u *Users) newHash(password string) (phc, error) {
	h := phc{memory: ArgonMemoryKiB, time: ArgonTime, threads: ArgonThreads, salt: make([]byte, saltLen)}
	if _, err := u.opts.Rand.Read(h.salt); err != nil {
		return h, fmt.Errorf("auth: random: %w", err)
	}
	h.key = argon2.IDKey([]byte(password), h.salt, h.time, h.memory, h.threads, keyLen)
	return h, nil
}

func (h phc) params() string {
	return fmt.Sprintf("argon2id m=%d,t=%d,p=%d", h.memory, h.time, h.threads)
}

// String is the PHC string format.
func (h phc) String() string {
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, h.memory, h.time, h.threads,
		base64.RawStdEncoding.EncodeToString(h.salt), base64.RawStdEncoding.EncodeToString(h.key))
}

// parsePHC reads $argon2id$v=19$m=M,t=T,p=P$SALT$KEY, refusing parameters
// beyond sane bounds.
func parsePHC(s string) (phc, error) {
	var h phc
	parts := strings.Split(s, "$")
	if len(parts) != 6 || parts[0] != "" || parts[1] != "argon2id" || parts[2] != "v="+strconv.Itoa(argon2.Version) {
		return h, errors.New("auth: password hash: want $argon2id$v=19$m=..,t=..,p=..$SALT$KEY")
	}
	var m, t, p uint64
	for _, kv := range strings.Split(parts[3], ",") {
		k, v, _ := strings.Cut(kv, "=")
		n, err := strconv.ParseUint(v, 10, 32)
		if err != nil {
			return h, fmt.Errorf("auth: password hash: parameter %q: %w", kv, err)
		}
		switch k {
		case "m":
			m = n
		case "t":
			t = n
		case "p":
			p = n
		default:
			return h, fmt.Errorf("auth: password hash: unknown parameter %q", k)
		}
	}
	if m < 8*p || m > maxArgonMemoryKiB || t < 1 || t > maxArgonTime || p < 1 || p > maxArgonThreads {
		return h, fmt.Errorf("auth: password hash: parameters m=%d,t=%d,p=%d out of bounds", m, t, p)
	}
	h.memory, h.time, h.threads = uint32(m), uint32(t), uint8(p)
	var err error
	if h.salt, err = base64.RawStdEncoding.Strict().DecodeString(parts[4]); err != nil || len(h.salt) < 8 || len(h.salt) > 64 {
		return h, errors.New("auth: password hash: bad salt")
	}
	if h.key, err = base64.RawStdEncoding.Strict().DecodeString(parts[5]); err != nil || len(h.key) < 16 || len(h.key) > 64 {
		return h, errors.New("auth: password hash: bad key")
	}
	return h, nil
}
