package boltfile_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/tributary-iot/tributary/internal/boltfile"
	"github.com/tributary-iot/tributary/internal/boltfile/bolttest"
)

const advice = "move it aside"

// sample is a file of several levels: nested buckets over many pages,
// with and without a persisted freelist.
func sample(t testing.TB, noFreelistSync bool) []byte {
	t.Helper()
	path := filepath.Join(t.TempDir(), "sample.db")
	db, err := bolt.Open(path, 0o600, &bolt.Options{NoFreelistSync: noFreelistSync})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 20 {
		err := db.Update(func(tx *bolt.Tx) error {
			b, err := tx.CreateBucketIfNotExists([]byte("outer"))
			if err != nil {
				return err
			}
			n, err := b.CreateBucketIfNotExists(fmt.Appendf(nil, "inner-%d", i%3))
			if err != nil {
				return err
			}
			for j := range 40 {
				if err := n.Put(fmt.Appendf(nil, "k-%04d-%04d", i, j), make([]byte, 100+j)); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// open writes data to a file and opens it; whatever opens must read.
func open(t *testing.T, data []byte, noFreelistSync bool) (string, error) {
	path := filepath.Join(t.TempDir(), "damaged.db")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	db, err := boltfile.Open(path, bolt.Options{Timeout: time.Second, NoFreelistSync: noFreelistSync}, advice)
	if err != nil {
		return path, err
	}
	defer db.Close()
	_ = db.View(func(tx *bolt.Tx) error {
		return tx.ForEach(func(name []byte, b *bolt.Bucket) error {
			return b.ForEachBucket(func(k []byte) error {
				return b.Bucket(k).ForEach(func(k, v []byte) error { return nil })
			})
		})
	})
	return path, nil
}

func TestOpenDamaged(t *testing.T) {
	for _, nofl := range []bool{false, true} {
		for _, d := range bolttest.Damages(sample(t, nofl)) {
			t.Run(fmt.Sprintf("%s/nofreelistsync=%v", d.Name, nofl), func(t *testing.T) {
				path, err := open(t, d.Data, nofl)
				bolttest.CheckOpenError(t, err, path, advice)
			})
		}
	}
}

func TestOpenIntact(t *testing.T) {
	for _, nofl := range []bool{false, true} {
		if _, err := open(t, sample(t, nofl), nofl); err != nil {
			t.Fatal(err)
		}
	}
	db, err := boltfile.Open(filepath.Join(t.TempDir(), "new.db"), bolt.Options{}, advice)
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
}

func TestOpenLocked(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.db")
	db, err := boltfile.Open(path, bolt.Options{}, advice)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, ro := range []bool{false, true} {
		_, err := boltfile.Open(path, bolt.Options{Timeout: 100 * time.Millisecond, ReadOnly: ro}, advice)
		if !errors.Is(err, boltfile.ErrInUse) || !strings.Contains(err.Error(), path) {
			t.Errorf("read-only %v: err = %v, want ErrInUse naming the file", ro, err)
		}
	}
}

// FuzzOpen damages a real file (patch bytes at an offset, or truncate
// when the patch is empty) and opens it: an error or a working file,
// never a crash.
func FuzzOpen(f *testing.F) {
	base := sample(f, true)
	f.Add(uint32(0), []byte{0xff}, true)           // meta 0 magic
	f.Add(uint32(4096+16+40), []byte{0x7f}, false) // meta 1 high water mark
	f.Add(uint32(2*4096), []byte{9, 9, 9}, true)   // a page id
	f.Add(uint32(3*4096+8), []byte{1}, false)      // page flags
	f.Add(uint32(4*4096+10), []byte{0xff}, true)   // element count
	f.Add(uint32(5*4096+20), []byte{0xee}, false)  // an element's position
	f.Add(uint32(len(base)/2), []byte{}, true)     // truncation
	f.Fuzz(func(t *testing.T, off uint32, patch []byte, nofl bool) {
		data := append([]byte(nil), base...)
		o := int(off) % len(data)
		if len(patch) == 0 {
			data = data[:o]
		} else {
			copy(data[o:], patch)
		}
		if _, err := open(t, data, nofl); err != nil && !errors.Is(err, boltfile.ErrCorrupt) {
			t.Fatalf("err = %v, want nil or ErrCorrupt", err)
		}
	})
}
