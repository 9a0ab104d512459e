package auth

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/tributary-iot/tributary/internal/boltfile"
)

// boltFile is a bbolt file with one bucket, opened only for the length of
// one operation so that a command (token issue, user add) can change it
// while a server runs; the server notices the change (size or
// modification time) and reloads. Both the gateway tokens and the admin
// users live in one.
type boltFile struct {
	path    string
	bucket  []byte
	fix     string // what to do with a damaged file (boltfile.Open's advice)
	timeout time.Duration

	mu    sync.Mutex // serialises file access and reloads in this process
	stamp fileStamp
}

// ensure creates the file (with its bucket) if it is missing. It reports
// whether it did.
func (f *boltFile) ensure() (bool, error) {
	if _, err := os.Stat(f.path); !errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	return true, f.update(func(*bolt.Bucket) error { return nil })
}

// update runs fn in a read-write transaction on the bucket. f.mu is held.
func (f *boltFile) update(fn func(*bolt.Bucket) error) error {
	db, err := f.open(false)
	if err != nil {
		return err
	}
	err = db.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(f.bucket)
		if err != nil {
			return err
		}
		return fn(b)
	})
	if cerr := db.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("auth: closing %s: %w", f.path, cerr)
	}
	return err
}

func (f *boltFile) open(readOnly bool) (*bolt.DB, error) {
	db, err := boltfile.Open(f.path, bolt.Options{Timeout: f.timeout, ReadOnly: readOnly}, f.fix)
	switch {
	case errors.Is(err, boltfile.ErrInUse):
		return nil, fmt.Errorf("%w: %s (waited %v)", ErrLocked, f.path, f.timeout)
	case err != nil:
		return nil, fmt.Errorf("auth: %w", err)
	}
	return db, nil
}

// load calls each for every record of the bucket, and remembers the
// file's stamp. The stamp is taken before reading, so a change that lands
// during the read is picked up by the next reload. f.mu is held.
func (f *boltFile) load(each func(k, v []byte)) error {
	st, err := stampOf(f.path)
	if err != nil {
		return fmt.Errorf("auth: %w", err)
	}
	db, err := f.open(true)
	if err != nil {
		return err
	}
	defer db.Close()
	err = db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(f.bucket)
		if b == nil {
			return nil
		}
		return b.ForEach(func(k, v []byte) error {
			each(k, v)
			return nil
		})
	})
	if err != nil {
		return fmt.Errorf("auth: reading %s: %w", f.path, err)
	}
	f.stamp = st
	if time.Since(time.Unix(0, st.mtime)) < racyWindow {
		// File times are coarse (a kernel tick): a write within the same
		// tick would leave the stamp unchanged. Until the file is older
		// than that, reload unconditionally (git's "racily clean" rule).
		f.stamp = fileStamp{}
	}
	return nil
}

// write runs fn in a read-write transaction on the bucket, then reload,
// holding f.mu.
func (f *boltFile) write(fn func(*bolt.Bucket) error, reload func() error) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.update(fn); err != nil {
		return err
	}
	return reload()
}

// reloadIfChanged calls reload, holding f.mu, if the file changed since
// the last load.
func (f *boltFile) reloadIfChanged(reload func() error) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if changed, err := f.changed(); !changed || err != nil {
		return err
	}
	return reload()
}

// changed reports whether the file changed since the last load. f.mu is
// held.
func (f *boltFile) changed() (bool, error) {
	st, err := stampOf(f.path)
	if err != nil {
		return false, fmt.Errorf("auth: %w", err)
	}
	return st != f.stamp, nil
}

// watch calls reload every interval until ctx is done. Errors are logged
// once per failing spell (what: "tokens", "users"); the last good
// contents stay in force. It returns nil when ctx ends.
func watch(ctx context.Context, every time.Duration, log *slog.Logger, what string, reload func() error) error {
	t := time.NewTicker(every)
	defer t.Stop()
	var failing bool
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		if err := reload(); err != nil {
			if !failing {
				log.Error("cannot reload "+what+"; the previous ones stay in force", "err", err)
			}
			failing = true
		} else if failing {
			log.Info(what + " reloaded")
			failing = false
		}
	}
}

// fileStamp tells whether a file changed.
type fileStamp struct{ size, mtime int64 }

// racyWindow: a file modified less than this long ago may change again
// without its stamp changing.
const racyWindow = 2 * time.Second

func stampOf(path string) (fileStamp, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return fileStamp{}, err
	}
	return fileStamp{size: fi.Size(), mtime: fi.ModTime().UnixNano()}, nil
}
