//go:build !unix

package devicecreds

import "os"

// lock does nothing here: concurrent device commands may lose a change.
func lock(string) (func(), error) { return func() {}, nil }

func inode(os.FileInfo) any { return nil }
