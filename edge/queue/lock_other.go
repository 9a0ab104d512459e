//go:build !unix

package queue

import "os"

// lockFile is a no-op here: bbolt locks the file itself at Open.
func lockFile(*os.File) error { return nil }

func syncDir(string) error { return nil }
