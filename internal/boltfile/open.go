// Package boltfile opens bbolt files that may be damaged: it checks a
// file's structure before bbolt maps it, so a damaged file is an error
// that names the file instead of a crash.
package boltfile

import (
	"errors"
	"fmt"
	"os"
	"runtime/debug"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// Errors of Open; each error that wraps one names the file.
var (
	// ErrCorrupt: the file is damaged (or is not a bbolt file).
	ErrCorrupt = errors.New("boltfile: damaged database file")
	// ErrInUse: another process holds the file's lock.
	ErrInUse = errors.New("boltfile: the file is in use by another process")
)

// Open opens the bbolt file at path as bolt.Open(path, 0o600, &opts)
// does, but first takes the file's lock, waiting up to opts.Timeout (0:
// forever; then the error wraps ErrInUse), and checks an existing file
// with Verify. A damaged file, or a fault or panic inside bbolt while it
// opens the file, gives an error wrapping ErrCorrupt that ends with
// ifDamaged: what the user should do about it.
func Open(path string, opts bolt.Options, ifDamaged string) (db *bolt.DB, err error) {
	var f *os.File
	opts.OpenFile = func(name string, flag int, mode os.FileMode) (*os.File, error) {
		var err error
		f, err = openChecked(name, flag, mode, &opts)
		return f, err
	}
	defer func() {
		switch {
		case errors.Is(err, ErrCorrupt):
			err = fmt.Errorf("%w (%s)", err, ifDamaged)
		case errors.Is(err, berrors.ErrTimeout):
			err = fmt.Errorf("%w: %s (waited %v; is another process running with this data folder?)", ErrInUse, path, opts.Timeout)
		case err != nil:
			err = fmt.Errorf("boltfile: opening %s: %w", path, err)
		}
	}()
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			if f != nil {
				_ = f.Close()
			}
			db, err = nil, fmt.Errorf("%w: %s: %v", ErrCorrupt, path, r)
		}
	}()
	return bolt.Open(path, 0o600, &opts)
}

// openChecked opens and locks the file (bbolt locks the same descriptor
// again, which succeeds: the lock belongs to this open file description)
// and verifies it.
func openChecked(name string, flag int, mode os.FileMode, opts *bolt.Options) (*os.File, error) {
	f, err := os.OpenFile(name, flag, mode)
	if err != nil {
		return nil, err
	}
	fail := func(err error) (*os.File, error) {
		_ = f.Close()
		return nil, err
	}
	if err := lockFile(f, !opts.ReadOnly, opts.Timeout); err != nil {
		return fail(err)
	}
	fi, err := f.Stat()
	if err != nil {
		return fail(err)
	}
	if fi.Size() > 0 {
		if err := Verify(f, fi.Size()); err != nil {
			return fail(fmt.Errorf("%w: %s: %v", ErrCorrupt, name, err))
		}
	}
	return f, nil
}
