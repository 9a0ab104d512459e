// Package auth issues, stores and verifies the gateways' bearer tokens
// and the admin users' passwords.
//
// Each gateway has at most one active token: Issue creates it (and refuses
// when one exists, so a working gateway is never locked out by accident),
// Rotate replaces it, Revoke deletes it. A token is "trib_" and the
// base64url encoding of an 8-byte id and a 256-bit secret (see
// ParseToken); the file keeps the id and SHA-256 of the secret, so it
// holds nothing a gateway could authenticate with, and Verify compares
// hashes in constant time. (A plain hash suffices: the secret is 256
// random bits, so there is nothing to brute-force.)
//
// Tokens live in a bbolt file (tokens.db in the cloud's data folder),
// bucket "tokens", key the gateway id. A Store opens the file only for
// the length of one operation, so `tributary-cloud token issue` can change
// it while the server runs; Watch notices the change (size or modification
// time) and reloads. Verify reads an in-memory snapshot only: it
// takes no lock and does no I/O.
//
// Admin users (Users, users.db, bucket "users") log in to the admin
// listener with a name and password. Passwords are kept as argon2id PHC
// strings (RFC 9106; m=19456 KiB, t=2, p=1, 16-byte salt, 32-byte key:
// OWASP's recommendation), never in clear; Verify costs one derivation
// whether or not the name exists, compares in constant time, and runs at
// most DefaultMaxHashing at once. The file is shared with the `user`
// command the same way as tokens.db.
package auth

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/tributary-iot/tributary/protocol"
)

// Errors.
var (
	ErrMalformed = errors.New("auth: malformed token")
	ErrExists    = errors.New("auth: the gateway already has a token")
	ErrNoToken   = errors.New("auth: the gateway has no token")
	ErrLocked    = errors.New("auth: the token file is locked by another process")
)

// DefaultLockTimeout bounds the wait for a file lock another process holds.
const DefaultLockTimeout = 5 * time.Second

var bucketName = []byte("tokens")

// Options configure a Store. Zero fields take defaults.
type Options struct {
	Logger *slog.Logger // default: discard
	// LockTimeout bounds the wait for the file while another process
	// writes it (default 5s).
	LockTimeout time.Duration
	Rand        io.Reader        // default crypto/rand
	Now         func() time.Time // default time.Now
}

// Info describes an active token (never the token itself).
type Info struct {
	Gateway string
	ID      ID
	Created time.Time
}

// Store holds the tokens. It is safe for concurrent use.
type Store struct {
	f    *boltFile
	opts Options
	log  *slog.Logger
	snap atomic.Pointer[snapshot]
}

type snapshot struct {
	byID  map[ID]entry
	infos []Info // sorted by gateway
}

type entry struct {
	gateway string
	hash    [sha256.Size]byte
}

// withDefaults fills in opts' zero fields.
func (opts Options) withDefaults() Options {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.LockTimeout <= 0 {
		opts.LockTimeout = DefaultLockTimeout
	}
	if opts.Rand == nil {
		opts.Rand = defaultRand
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return opts
}

// Open opens (creating if need be) the token file at path and loads it.
func Open(path string, opts Options) (*Store, error) {
	opts = opts.withDefaults()
	s := &Store{opts: opts, log: opts.Logger,
		f: &boltFile{path: path, bucket: bucketName, timeout: opts.LockTimeout, fix: "move it aside, then issue every gateway a new token"}}
	s.snap.Store(&snapshot{byID: map[ID]entry{}})
	s.f.mu.Lock()
	defer s.f.mu.Unlock()
	if created, err := s.f.ensure(); created || err != nil {
		return s, err
	}
	if err := s.reloadLocked(); err != nil {
		return nil, err
	}
	return s, nil
}

// Verify returns the gateway a token belongs to. Malformed, unknown and
// revoked tokens are not ok.
func (s *Store) Verify(token string) (gateway string, ok bool) {
	id, sec, err := ParseToken(token)
	if err != nil {
		return "", false
	}
	e, found := s.snap.Load().byID[id]
	if !found || !matches(&sec, &e.hash) {
		return "", false
	}
	return e.gateway, true
}

// List returns the active tokens, sorted by gateway.
func (s *Store) List() []Info { return slices.Clone(s.snap.Load().infos) }

// Issue creates a token for a gateway that has none and returns it: the
// only time it is ever visible. It fails with ErrExists when the gateway
// already has one (use Rotate).
func (s *Store) Issue(gateway string) (string, error) { return s.put(gateway, false) }

// Rotate replaces a gateway's token with a new one, which it returns; the
// old token stops working at once (in other processes, at their next
// reload). It fails with ErrNoToken when the gateway has none.
func (s *Store) Rotate(gateway string) (string, error) { return s.put(gateway, true) }

func (s *Store) put(gateway string, replace bool) (string, error) {
	if err := protocol.CheckDeviceID(gateway); err != nil {
		return "", fmt.Errorf("auth: gateway id: %w", err)
	}
	id, sec, err := newToken(s.opts.Rand)
	if err != nil {
		return "", err
	}
	val := encodeEntry(id, sec.hash(), s.opts.Now())
	err = s.f.write(func(b *bolt.Bucket) error {
		old := b.Get([]byte(gateway))
		switch {
		case old != nil && !replace:
			return fmt.Errorf("%w: %s (rotate it to replace it)", ErrExists, gateway)
		case old == nil && replace:
			return fmt.Errorf("%w: %s (issue one first)", ErrNoToken, gateway)
		}
		return b.Put([]byte(gateway), val)
	}, s.reloadLocked)
	if err != nil {
		return "", err
	}
	s.log.Info("token issued", "gateway", gateway, "token_id", id.String(), "rotated", replace)
	return formatToken(id, &sec), nil
}

// Revoke deletes a gateway's token (ErrNoToken if it has none).
func (s *Store) Revoke(gateway string) error {
	err := s.f.write(func(b *bolt.Bucket) error {
		if b.Get([]byte(gateway)) == nil {
			return fmt.Errorf("%w: %s", ErrNoToken, gateway)
		}
		return b.Delete([]byte(gateway))
	}, s.reloadLocked)
	if err == nil {
		s.log.Info("token revoked", "gateway", gateway)
	}
	return err
}

// Reload reads the file again if it changed since the last load.
func (s *Store) Reload() error { return s.f.reloadIfChanged(s.reloadLocked) }

// Watch reloads the file every interval when it changed, until ctx is
// done; changes made by other processes (the token command) take effect
// within one interval. Errors are logged, and the last good tokens stay in
// force. It returns nil when ctx ends.
func (s *Store) Watch(ctx context.Context, every time.Duration) error {
	return watch(ctx, every, s.log, "tokens", s.Reload)
}

// reloadLocked loads the whole file into a new snapshot. s.f.mu is held.
func (s *Store) reloadLocked() error {
	snap := &snapshot{byID: map[ID]entry{}}
	err := s.f.load(func(k, v []byte) {
		gw := string(k)
		id, hash, created, err := decodeEntry(v)
		if err != nil {
			s.log.Error("ignoring a corrupt token record; issue the gateway a new token", "gateway", gw, "err", err)
			return
		}
		snap.byID[id] = entry{gateway: gw, hash: hash}
		snap.infos = append(snap.infos, Info{Gateway: gw, ID: id, Created: created})
	})
	if err != nil {
		return err
	}
	slices.SortFunc(snap.infos, func(a, b Info) int { return strings.Compare(a.Gateway, b.Gateway) })
	s.snap.Store(snap)
	return nil
}

// Record layout: version 1, id (8), SHA-256 of the secret (32), created
// (int64 Unix nanoseconds, big endian).
const recordVersion = 1

func encodeEntry(id ID, hash [sha256.Size]byte, created time.Time) []byte {
	v := make([]byte, 0, 1+idBytes+sha256.Size+8)
	v = append(v, recordVersion)
	v = append(v, id[:]...)
	v = append(v, hash[:]...)
	return binary.BigEndian.AppendUint64(v, uint64(created.UnixNano()))
}

func decodeEntry(v []byte) (id ID, hash [sha256.Size]byte, created time.Time, err error) {
	if len(v) != 1+idBytes+sha256.Size+8 || v[0] != recordVersion {
		return id, hash, created, fmt.Errorf("auth: token record of %d bytes, version %d", len(v), firstByte(v))
	}
	copy(id[:], v[1:])
	copy(hash[:], v[1+idBytes:])
	created = time.Unix(0, int64(binary.BigEndian.Uint64(v[1+idBytes+sha256.Size:])))
	if bytes.Equal(hash[:], make([]byte, sha256.Size)) {
		return id, hash, created, errors.New("auth: empty hash")
	}
	return id, hash, created, nil
}

func firstByte(v []byte) int {
	if len(v) == 0 {
		return -1
	}
	return int(v[0])
}
