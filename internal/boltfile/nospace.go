package boltfile

import (
	"errors"
	"strings"
	"syscall"
)

var noSpaceErrnos = []syscall.Errno{syscall.ENOSPC, syscall.EFBIG, syscall.EDQUOT}

// NoSpace reports whether err says the file cannot grow: the disk or the
// user's quota is full, or the file hit the process's size limit. bbolt
// flattens some of these into text ("file resize error: truncate ...:
// file too large"), so the text is checked too.
func NoSpace(err error) bool {
	if err == nil {
		return false
	}
	for _, e := range noSpaceErrnos {
		if errors.Is(err, e) || strings.Contains(err.Error(), e.Error()) {
			return true
		}
	}
	return false
}
