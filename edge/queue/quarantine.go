package queue

import (
	"cmp"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"time"
)

// OnCorrupt says what Open does with a damaged database file.
type OnCorrupt string

const (
	// Refuse: Open fails with an error wrapping ErrCorrupt; a person
	// decides (the default).
	Refuse OnCorrupt = "refuse"
	// Quarantine: Open renames the damaged file aside (DamagedSuffix and
	// a UTC timestamp; it is never deleted), logs it, and starts a new
	// empty queue with a new epoch. For unattended gateways, which would
	// otherwise stop taking readings until someone comes.
	Quarantine OnCorrupt = "quarantine"
)

// DamagedSuffix follows the queue file's name in the name of a damaged
// file moved aside: queue.db.damaged-20261207T235900Z.
const DamagedSuffix = ".damaged-"

// Quarantined says what Open did with a damaged file (Quarantine).
type Quarantined struct {
	MovedTo string    // where the damaged file is now
	At      time.Time // when
	Err     error     // why it was found damaged (wraps ErrCorrupt)
}

// Quarantined returns what Open moved aside, or nil when it found the
// file sound (or made a new one).
func (q *Queue) Quarantined() *Quarantined { return q.quarantined }

// openOrQuarantine opens path; under Quarantine a damaged file is moved
// aside and a new queue started in its place.
func openOrQuarantine(path string, o Options) (*Queue, error) {
	q, err := open(path, o)
	if err == nil || o.OnCorrupt != Quarantine || !errors.Is(err, ErrCorrupt) {
		return q, err
	}
	at := time.Now().UTC()
	moved, merr := moveAside(path, at)
	if merr != nil {
		return nil, fmt.Errorf("%w; moving it aside (on_corrupt: quarantine) failed: %v", err, merr)
	}
	log := cmp.Or(o.Logger, slog.New(slog.DiscardHandler))
	log.Error("damaged queue file moved aside; starting a new, empty queue with a new epoch: the readings in it that the cloud had not acknowledged are not sent "+
		"(inspect the file, then delete it to clear the health alert)", "component", "queue", "path", path, "moved_to", moved, "err", err)
	q, oerr := open(path, o)
	if oerr != nil {
		return nil, oerr
	}
	q.quarantined = &Quarantined{MovedTo: moved, At: at, Err: err}
	return q, nil
}

// moveAside renames path to a name of its own next to it, and syncs the
// folder so that the rename survives a power cut.
func moveAside(path string, at time.Time) (string, error) {
	base := path + DamagedSuffix + at.Format("20060102T150405Z")
	to := base
	for i := 2; ; i++ {
		if _, err := os.Lstat(to); errors.Is(err, os.ErrNotExist) {
			break
		}
		to = base + "-" + strconv.Itoa(i)
	}
	if err := os.Rename(path, to); err != nil {
		return "", err
	}
	if d, err := os.Open(filepath.Dir(path)); err == nil {
		_ = d.Sync()
		_ = d.Close()
	}
	return to, nil
}

// DamagedFiles lists the damaged files moved aside from the queue file at
// path (Quarantine) that are still there, oldest first.
func DamagedFiles(path string) ([]string, error) {
	files, err := filepath.Glob(globEscape(path) + DamagedSuffix + "*")
	slices.Sort(files) // the timestamps sort as text
	return files, err
}

// globEscape escapes the glob metacharacters of a path.
func globEscape(p string) string {
	out := make([]byte, 0, len(p))
	for i := 0; i < len(p); i++ {
		switch p[i] {
		case '*', '?', '[', '\\':
			out = append(out, '\\')
		}
		out = append(out, p[i])
	}
	return string(out)
}
