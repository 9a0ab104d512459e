//go:build unix

package queue

import (
	"os"
	"syscall"
)

// lockFile takes an exclusive, non-blocking flock on f. bbolt flocks the
// same descriptor again at Open, which succeeds because the lock belongs to
// this open file description.
func lockFile(f *os.File) error {
	return syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
