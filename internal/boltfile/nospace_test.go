package boltfile_test

import (
	"errors"
	"fmt"
	"io/fs"
	"syscall"
	"testing"

	"github.com/tributary-iot/tributary/internal/boltfile"
)

func TestNoSpace(t *testing.T) {
	for _, c := range []struct {
		err  error
		want bool
	}{
		{&fs.PathError{Op: "write", Path: "x.db", Err: syscall.ENOSPC}, true},
		{fmt.Errorf("commit: %w", syscall.EDQUOT), true},
		{fmt.Errorf("file resize error: %s", &fs.PathError{Op: "truncate", Path: "x.db", Err: syscall.EFBIG}), true}, // bbolt's flattening
		{syscall.EIO, false},
		{errors.New("timeout"), false},
		{nil, false},
	} {
		if got := boltfile.NoSpace(c.err); got != c.want {
			t.Errorf("NoSpace(%v) = %v, want %v", c.err, got, c.want)
		}
	}
}
