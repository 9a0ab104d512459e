package queue

import (
	"fmt"
	"os"
	"path/filepath"
	"time"

	bolt "go.etcd.io/bbolt"
)

const compactSuffix = ".compact"

// compactNow copies the live data into a new file and swaps it in. It runs
// on the writer goroutine (or in Open before it starts), with readers held
// off. Crash safety: the copy is fsynced before the rename and the
// directory after it, so the path names either the old file or the
// complete new one; a leftover temporary file is removed at Open.
func (q *Queue) compactNow() error {
	if q.db == nil {
		return errBroken
	}
	start, before := time.Now(), q.fileSize()
	q.dbMu.Lock()
	defer q.dbMu.Unlock()
	tmp := q.path + compactSuffix
	_ = os.Remove(tmp)
	dst, err := bolt.Open(tmp, 0o600, &bolt.Options{
		NoFreelistSync: true, FreelistType: bolt.FreelistMapType, NoSync: true,
		PageSize: q.ps, MaxSize: int(q.lim.ackLimit), InitialMmapSize: q.lim.mmapSize,
	})
	if err != nil {
		return fmt.Errorf("queue: compact: %w", err)
	}
	dst.AllocSize = q.lim.allocSize
	err = bolt.Compact(dst, q.db, 8<<20)
	if err == nil {
		err = dst.Sync() // NoSync skipped the per-commit fsyncs: one now
	}
	if cerr := dst.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("queue: compact: %w", err)
	}
	if err := q.db.Close(); err != nil {
		_ = os.Remove(tmp)
		q.db = nil
		q.db, _ = q.openDB()
		return fmt.Errorf("queue: compact: %w", err)
	}
	q.db = nil
	renameErr := os.Rename(tmp, q.path)
	if renameErr == nil {
		renameErr = syncDir(filepath.Dir(q.path))
	} else {
		_ = os.Remove(tmp)
	}
	db, err := q.openDB()
	if err != nil {
		q.log.Error("cannot reopen the database after compaction", "err", err)
		return fmt.Errorf("queue: compact: reopen: %w", err)
	}
	q.db = db
	if renameErr != nil {
		return fmt.Errorf("queue: compact: %w", renameErr)
	}
	q.log.Info("compacted", "bytes_before", before, "bytes_after", q.fileSize(), "took", time.Since(start))
	return nil
}
