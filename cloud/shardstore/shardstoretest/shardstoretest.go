// Package shardstoretest opens shard stores for tests: in a temporary
// folder, closed at cleanup, on a clock the test moves.
package shardstoretest

import (
	"path/filepath"
	"sync"
	"testing"
	"time"

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

// Clock is a clock for Options.Now that moves only when told. It is safe
// for concurrent use.
type Clock struct {
	mu sync.Mutex
	t  time.Time
}

// NewClock returns a clock set to t.
func NewClock(t time.Time) *Clock { return &Clock{t: t} }

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Advance moves the clock forward by d.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}
