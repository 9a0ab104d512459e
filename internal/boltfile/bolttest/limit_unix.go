//go:build unix

package bolttest

import (
	"os/signal"
	"syscall"
)

// LimitFileSize makes every later write of this process past limit bytes
// of a file fail with EFBIG, as on a full disk (RLIMIT_FSIZE, with
// SIGXFSZ ignored so the write fails instead of killing the process).
// Call it in a child process of the test.
func LimitFileSize(limit uint64) error {
	signal.Ignore(syscall.SIGXFSZ)
	return syscall.Setrlimit(syscall.RLIMIT_FSIZE, &syscall.Rlimit{Cur: limit, Max: limit})
}
