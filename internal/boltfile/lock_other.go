//go:build !unix

package boltfile

import (
	"os"
	"time"
)

// lockFile does nothing here: bbolt takes its own lock right after the
// check.
func lockFile(*os.File, bool, time.Duration) error { return nil }
