// Package shardstoretest opens shard stores for tests: in a temporary
// folder, closed at cleanup, on a clock the test moves.
package shardstoretest

import (
	"path/filepath"
	"testing"

	"github.com/tributary-iot/tributary/cloud/shardstore"
)

// Open opens a store in t.TempDir() and closes it at cleanup. The trimmer
// is off unless opts.TrimInterval is set.
func Open(t testing.TB, opts shardstore.Options) *shardstore.Store {
	t.Helper()
	return OpenAt(t, filepath.Join(t.TempDir(), "streams.db"), opts)
}

// OpenAt is Open with the file at path.
func OpenAt(t testing.TB, path string, opts shardstore.Options) *shardstore.Store {
	t.Helper()
	if opts.TrimInterval == 0 {
		opts.TrimInterval = -1
	}
	s, err := shardstore.Open(path, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}
