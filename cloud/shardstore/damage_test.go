package shardstore_test

import (
	"errors"
	"path/filepath"
	"testing"

	"github.com/tributary-iot/tributary/cloud/shardstore"
	"github.com/tributary-iot/tributary/internal/boltfile/bolttest"
)

// A damaged store file is an error that names it and says what to do,
// never a crash.
func TestOpenDamagedFile(t *testing.T) {
	good := filepath.Join(t.TempDir(), "good.db")
	s := openAt(t, good, unlimited())
	mustCreate(t, s, "t", 4)
	for range 10 {
		mustPut(t, s, "t", entries("x", 200, 100))
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "streams.db")
	bolttest.Each(t, good, path, func(t *testing.T) {
		s, err := shardstore.Open(path, shardstore.Options{TrimInterval: -1})
		if err == nil {
			s.Close()
		}
		bolttest.CheckOpenError(t, err, path, "move the file aside")
		if !errors.Is(err, shardstore.ErrCorrupt) {
			t.Fatalf("%v does not wrap ErrCorrupt", err)
		}
	})
}
