package queue

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/tributary-iot/tributary/internal/boltfile"
	"github.com/tributary-iot/tributary/protocol"
)

// pageSize is the bbolt page size of files this package creates (fixed,
// so quota arithmetic is the same on every host).
const pageSize = 4096

var (
	bucketMeta    = []byte("meta")
	bucketEntries = []byte("entries")
	bucketDedupe  = []byte("dedupe")
	bucketDead    = []byte("deadletters")

	keyFormat = []byte("format")
	keyEpoch  = []byte("epoch")
	keySalt   = []byte("salt")
	keyState  = []byte("state")
)

const formatVersion = 1

// state is the meta bucket's "state" record: the counters that must
// survive restarts, written in every commit as big-endian uint64s.
type state struct {
	next       uint64 // next seq to assign (seqs start at 1)
	appended   uint64 // readings stored, ever
	duplicates uint64 // readings dropped as redeliveries, ever
	dropped    uint64 // readings deleted by DropOldest, ever
	acked      uint64 // readings deleted by Ack, ever
	corrupt    uint64 // damaged entries moved to the dead letters, ever
	dlNext     uint64 // next dead-letter key
}

const stateSize = 7 * 8

func (s *state) encode(b []byte) []byte {
	for _, v := range [...]uint64{s.next, s.appended, s.duplicates, s.dropped, s.acked, s.corrupt, s.dlNext} {
		b = binary.BigEndian.AppendUint64(b, v)
	}
	return b
}

// maxSeq bounds the seqs and dead-letter keys of a state record: a record
// beyond it is damaged (at a million readings a second, 2⁶² takes
// 146,000 years), and the bound leaves room for every later increment.
const maxSeq = 1 << 62

func (s *state) decode(b []byte) bool {
	if len(b) != stateSize {
		return false
	}
	for i, p := range [...]*uint64{&s.next, &s.appended, &s.duplicates, &s.dropped, &s.acked, &s.corrupt, &s.dlNext} {
		*p = binary.BigEndian.Uint64(b[8*i:])
	}
	return s.next >= 1 && s.dlNext >= 1 && s.next <= maxSeq && s.dlNext <= maxSeq
}

// decodeMeta checks the meta bucket's records and returns the epoch, the
// dedupe salt and the state.
func decodeMeta(format, epoch, salt, st []byte) (uint64, uint64, state, error) {
	var s state
	if len(format) != 8 || binary.BigEndian.Uint64(format) != formatVersion {
		return 0, 0, s, fmt.Errorf("unknown format %x (this version reads format %d)", format, formatVersion)
	}
	if len(epoch) != 8 || binary.BigEndian.Uint64(epoch) == 0 {
		return 0, 0, s, errors.New("bad epoch")
	}
	if len(salt) != 8 {
		return 0, 0, s, errors.New("bad dedupe salt")
	}
	if !s.decode(st) {
		return 0, 0, s, errors.New("bad state record")
	}
	return binary.BigEndian.Uint64(epoch), binary.BigEndian.Uint64(salt), s, nil
}

// AppendResult reports what one Append did.
type AppendResult struct {
	Stored     int // readings stored (given seqs First..Last)
	Duplicates int // readings dropped because their natural key was seen
	// Dropped is how many of the oldest stored readings were deleted
	// (DropOldest) to make room for this Append. Summed over all results it
	// equals the growth of Stats.Dropped.
	Dropped     int
	First, Last uint64 // seq range of the stored readings; 0, 0 if none
}

// Stats is a snapshot of the queue's state and lifetime counters.
type Stats struct {
	Depth          int64 // readings stored
	Bytes          int64 // encoded bytes of the stored readings
	FileBytes      int64 // size of the database file
	OldestReceived int64 // µs: Received of the oldest stored reading, 0 if empty
	// Lifetime counters (persisted across restarts), except Commits which
	// counts the commits of this process.
	Appended, Duplicates, Dropped, Acked, Commits uint64
	Corrupt                                       uint64 // damaged entries quarantined
	DeadLetters                                   int    // dead letters kept
	Blocked                                       bool   // appends wait for space (Block policy)
}

// Queue is a durable FIFO of readings in one bbolt file. It is safe for
// concurrent use. See the package documentation.
type Queue struct {
	path  string
	opts  Options
	lim   limits
	log   *slog.Logger
	epoch uint64
	salt  uint64

	dbMu sync.RWMutex // RLock: a read transaction; Lock: swapping db, or a write tx that must see every freed page
	db   *bolt.DB
	ps   int

	appends   chan *request
	ctrl      chan *request
	closing   chan struct{}
	done      chan struct{} // closed when the writer has exited
	closeOnce sync.Once
	closeErr  error
	notify    chan struct{}

	head, tail atomic.Uint64
	blocked    atomic.Bool

	statsMu sync.Mutex
	stats   Stats

	w writer // owned by the writer goroutine (and Open before it starts)

	quarantined *Quarantined // what Open moved aside, if anything
}

// Open opens the queue in the file at path, creating it if needed. An
// existing file is checked page by page before use; a damaged one gives an
// error wrapping ErrCorrupt. A new file gets a new random nonzero epoch.
//
// With Options.OnCorrupt Quarantine a damaged file is moved aside instead
// (see Quarantine) and Open returns a new queue; Quarantined says so.
func Open(path string, o Options) (*Queue, error) { return openOrQuarantine(path, o) }

func open(path string, o Options) (*Queue, error) {
	o, lim, err := o.withDefaults()
	if err != nil {
		return nil, err
	}
	q := &Queue{
		path: path, opts: o, lim: lim,
		log:     o.Logger.With("component", "queue", "path", path),
		appends: make(chan *request, pendingRequests),
		ctrl:    make(chan *request, pendingRequests),
		closing: make(chan struct{}),
		done:    make(chan struct{}),
		notify:  make(chan struct{}, 1),
	}
	if q.opts.DedupeWindow > 0 && lim.dedupeWindow < q.opts.DedupeWindow {
		q.log.Info("dedupe window capped by the quota", "asked", q.opts.DedupeWindow, "window", lim.dedupeWindow)
	}
	_ = os.Remove(path + compactSuffix) // an interrupted compaction
	if q.db, err = q.openVerifiedDB(); err != nil {
		return nil, err
	}
	q.ps = q.db.Info().PageSize
	if err := q.load(); err != nil {
		_ = q.db.Close()
		return nil, err
	}
	if fs := q.fileSize(); lim.quota > 0 && fs > lim.quota {
		q.log.Warn("database file is larger than the quota; compacting", "file_bytes", fs, "quota", lim.quota)
		if err := q.compactNow(); err != nil {
			q.log.Error("compaction failed; the file stays over the quota until readings are acknowledged or dropped", "err", err)
			q.w.overQuota = true
		}
	}
	q.publish()
	go q.run()
	return q, nil
}

// openDB opens and locks the file and opens bbolt on it.
func (q *Queue) openDB() (*bolt.DB, error) {
	f, err := q.lockedFile()
	if err != nil {
		return nil, err
	}
	return boltOpen(q.path, f, q.lim)
}

// openVerifiedDB is openDB that first checks an existing file page by
// page (boltfile.Verify), before bbolt maps it.
func (q *Queue) openVerifiedDB() (*bolt.DB, error) {
	f, err := q.lockedFile()
	if err != nil {
		return nil, err
	}
	if err := q.verify(f); err != nil {
		_ = f.Close()
		return nil, err
	}
	return boltOpen(q.path, f, q.lim)
}

// lockedFile opens the file, creating it if needed, and locks it.
func (q *Queue) lockedFile() (*os.File, error) {
	f, err := os.OpenFile(q.path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("queue: %w", err)
	}
	if err := lockFile(f); err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("%w: %s: %v", ErrLocked, q.path, err)
	}
	return f, nil
}

// verify checks an existing file; a damaged one gives ErrCorrupt, except
// an incomplete new file, which is emptied.
func (q *Queue) verify(f *os.File) error {
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("queue: %w", err)
	}
	if fi.Size() == 0 {
		return nil
	}
	err = boltfile.Verify(f, fi.Size())
	if err == nil {
		return nil
	}
	// bbolt creates a file by writing its first four pages at once;
	// anything shorter never held an acknowledged reading.
	if fi.Size() >= 4*pageSize {
		return fmt.Errorf("%w: %s: %v (move the file aside to start an empty queue; its readings are lost)", ErrCorrupt, q.path, err)
	}
	q.log.Warn("discarding an incomplete new database file", "bytes", fi.Size(), "err", err)
	if err := f.Truncate(0); err != nil {
		return fmt.Errorf("queue: %w", err)
	}
	return nil
}

// boltOpen opens bbolt on the locked, verified file f. A panic inside
// bbolt (its consistency checks panic on the rare damage the verifier
// does not model) becomes an error.
func boltOpen(path string, f *os.File, lim limits) (db *bolt.DB, err error) {
	defer func() {
		if r := recover(); r != nil {
			_ = f.Close()
			db, err = nil, fmt.Errorf("%w: %s: %v", ErrCorrupt, path, r)
		}
	}()
	db, err = bolt.Open(path, 0o600, &bolt.Options{
		Timeout:         time.Second,
		NoFreelistSync:  true,
		FreelistType:    bolt.FreelistMapType,
		PageSize:        pageSize,
		MaxSize:         int(lim.appendLimit),
		InitialMmapSize: lim.mmapSize,
		OpenFile:        func(string, int, os.FileMode) (*os.File, error) { return f, nil },
	})
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrCorrupt, path, err)
	}
	db.AllocSize = lim.allocSize
	return db, nil
}

func randomNonzero() uint64 {
	var b [8]byte
	for {
		_, _ = rand.Read(b[:])
		if v := binary.BigEndian.Uint64(b[:]); v != 0 {
			return v
		}
	}
}

func u64(v uint64) []byte { return binary.BigEndian.AppendUint64(nil, v) }

// load initialises a new file or reads an existing one's state, and
// rebuilds what is kept in memory: depth and bytes, head, dedupe hashes,
// dead-letter counts.
func (q *Queue) load() error {
	corrupt := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s: %s", ErrCorrupt, q.path, fmt.Sprintf(format, args...))
	}
	var fresh bool
	err := q.db.View(func(tx *bolt.Tx) error {
		if tx.Bucket(bucketMeta) != nil {
			return nil
		}
		fresh = true
		return tx.ForEach(func([]byte, *bolt.Bucket) error {
			return corrupt("not a tributary queue file (it has other buckets)")
		})
	})
	if err != nil {
		return err
	}
	if fresh {
		err := q.db.Update(func(tx *bolt.Tx) error {
			m, err := tx.CreateBucket(bucketMeta)
			if err != nil {
				return err
			}
			st := state{next: 1, dlNext: 1}
			for _, kv := range [][2][]byte{
				{keyFormat, u64(formatVersion)}, {keyEpoch, u64(randomNonzero())},
				{keySalt, u64(randomNonzero())}, {keyState, st.encode(nil)},
			} {
				if err := m.Put(kv[0], kv[1]); err != nil {
					return err
				}
			}
			for _, b := range [][]byte{bucketEntries, bucketDedupe, bucketDead} {
				if _, err := tx.CreateBucket(b); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("queue: initialise %s: %w", q.path, err)
		}
	}
	w := &q.w
	w.dedupe = newHashSet(q.lim.dedupeWindow)
	return q.db.View(func(tx *bolt.Tx) error {
		m := tx.Bucket(bucketMeta)
		e, d, dl := tx.Bucket(bucketEntries), tx.Bucket(bucketDedupe), tx.Bucket(bucketDead)
		if m == nil || e == nil || d == nil || dl == nil {
			return corrupt("a bucket is missing")
		}
		var err error
		if q.epoch, q.salt, w.st, err = decodeMeta(m.Get(keyFormat), m.Get(keyEpoch), m.Get(keySalt), m.Get(keyState)); err != nil {
			return corrupt("%v", err)
		}

		c := e.Cursor()
		var last uint64
		for k, v := c.First(); k != nil; k, v = c.Next() {
			if len(k) != 8 || v == nil {
				return corrupt("bad entry key %x", k)
			}
			if w.depth == 0 {
				q.head.Store(binary.BigEndian.Uint64(k))
				w.oldestRecv, _ = decodeReceived(v)
			}
			last = binary.BigEndian.Uint64(k)
			w.depth++
			w.bytes += int64(len(v))
		}
		if last >= w.st.next {
			return corrupt("entry %d at or beyond the next sequence number %d", last, w.st.next)
		}
		q.tail.Store(w.st.next - 1)

		c = d.Cursor()
		for k, v := c.First(); k != nil; k, v = c.Next() {
			if len(k) != 8 || len(v) == 0 || len(v)%8 != 0 {
				return corrupt("bad dedupe record %x", k)
			}
			for i := 0; i < len(v) && q.lim.dedupeWindow > 0; i += 8 {
				w.dedupe.add(binary.BigEndian.Uint64(v[i:]))
			}
			w.dedupeCount += len(v) / 8
		}

		c = dl.Cursor()
		for k, v := c.First(); k != nil; k, v = c.Next() {
			if len(k) != 8 || v == nil || binary.BigEndian.Uint64(k) >= w.st.dlNext {
				return corrupt("bad dead-letter key %x", k)
			}
			w.dlCount++
			w.dlBytes += int64(len(v))
		}
		return nil
	})
}

func (q *Queue) fileSize() int64 {
	fi, err := os.Stat(q.path)
	if err != nil {
		return 0
	}
	return fi.Size()
}

// Epoch identifies this queue file: a new file gets a new random epoch, so
// (epoch, seq) names a reading uniquely across file replacements.
func (q *Queue) Epoch() uint64 { return q.epoch }

// Head returns the oldest stored seq, 0 if the queue is empty.
func (q *Queue) Head() uint64 { return q.head.Load() }

// Tail returns the last seq assigned (0 if none ever was).
func (q *Queue) Tail() uint64 { return q.tail.Load() }

// Notify returns a channel that receives after each commit that stored
// readings. Sends never block and coalesce: one receive may stand for many
// commits, so read until Read returns nothing.
func (q *Queue) Notify() <-chan struct{} { return q.notify }

// Stats returns a snapshot of the queue's state and counters.
func (q *Queue) Stats() Stats {
	q.statsMu.Lock()
	s := q.stats
	q.statsMu.Unlock()
	s.FileBytes = q.fileSize()
	s.Blocked = q.blocked.Load()
	return s
}

// Append stores rs durably: it returns after the commit holding them is
// fsynced, or with an error, in which case none of them is stored (an
// Append is atomic). Readings must pass protocol.Reading.Validate. Readings
// whose natural key is in the dedupe window, or repeats one earlier in rs,
// are dropped and counted as Duplicates.
//
// Append waits while the writer is saturated (backpressure: at most
// MaxBatch readings being committed plus 256 Appends queued) and, under
// the Block policy, while the quota is used up, until acknowledgements
// free space, ctx is done, or the queue is closed. If ctx ends first, the
// readings are not stored.
func (q *Queue) Append(ctx context.Context, rs []protocol.Reading) (AppendResult, error) {
	r, err := q.prepare(ctx, rs)
	if r == nil || err != nil {
		return AppendResult{}, err
	}
	return q.submitAppend(ctx, r)
}

// TryAppend is Append that fails with ErrFull at once instead of waiting
// for space when the quota is used up (Block policy). It still waits for
// its commit, and for room in the writer's queue.
func (q *Queue) TryAppend(ctx context.Context, rs []protocol.Reading) (AppendResult, error) {
	if q.opts.Policy == Block && q.blocked.Load() {
		return AppendResult{}, ErrFull
	}
	r, err := q.prepare(ctx, rs)
	if r == nil || err != nil {
		return AppendResult{}, err
	}
	r.try = true
	return q.submitAppend(ctx, r)
}

// prepare validates, encodes and hashes rs on the caller's goroutine; it
// returns a nil request (and no error, unless the queue is closed) for no
// readings.
func (q *Queue) prepare(ctx context.Context, rs []protocol.Reading) (*request, error) {
	if len(rs) == 0 {
		select {
		case <-q.closing:
			return nil, ErrClosed
		default:
			return nil, nil
		}
	}
	r := &request{op: opAppend, ctx: ctx, n: len(rs), done: make(chan struct{})}
	size := 0
	for i := range rs {
		size += 40 + len(rs[i].Device) + len(rs[i].Name) + len(rs[i].Unit) + len(rs[i].Str) + len(rs[i].Data)
	}
	r.enc = make([]byte, 0, size)
	meta := make([]uint64, 2*len(rs))
	r.hashes, r.ends = meta[:len(rs):len(rs)], meta[len(rs):]
	for i := range rs {
		if err := rs[i].Validate(); err != nil {
			return nil, fmt.Errorf("queue: reading %d: %w", i, err)
		}
		var err error
		if r.enc, err = appendEntry(r.enc, &rs[i]); err != nil {
			return nil, fmt.Errorf("queue: reading %d: %v", i, err)
		}
		r.ends[i] = uint64(len(r.enc))
		r.hashes[i] = keyHash(q.salt, &rs[i])
	}
	if int64(len(r.enc)+24*len(rs)) > q.lim.maxAppendBytes {
		return nil, fmt.Errorf("%w: %d readings take %d bytes; one Append may take at most %d (a quarter of MaxBytes)",
			ErrTooLarge, len(rs), len(r.enc)+24*len(rs), q.lim.maxAppendBytes)
	}
	return r, nil
}

func (q *Queue) submitAppend(ctx context.Context, r *request) (AppendResult, error) {
	if err := q.submit(ctx, q.appends, r); err != nil {
		return AppendResult{}, err
	}
	return r.res, nil
}

// Ack deletes the readings first..last. Entries already gone are skipped,
// so Ack is idempotent. It returns once the deletion is durable; it shares
// commits with appends.
func (q *Queue) Ack(ctx context.Context, first, last uint64) error {
	if first == 0 || last < first {
		return fmt.Errorf("queue: ack [%d, %d]: not a range of sequence numbers", first, last)
	}
	return q.submit(ctx, q.ctrl, &request{op: opAck, ctx: ctx, first: first, last: last, done: make(chan struct{})})
}

// Compact rewrites the file without its free pages (bbolt.Compact into a
// temporary file beside it, fsync, rename, reopen), so the file shrinks to
// what is stored. It needs free disk space for the copy, blocks reads and
// commits while it runs, and is safe against a crash at any point.
func (q *Queue) Compact(ctx context.Context) error {
	return q.submit(ctx, q.ctrl, &request{op: opCompact, ctx: ctx, done: make(chan struct{})})
}

// submit hands r to the writer and waits for its outcome.
func (q *Queue) submit(ctx context.Context, ch chan *request, r *request) error {
	select {
	case <-q.closing:
		return ErrClosed
	default:
	}
	select {
	case ch <- r:
	case <-q.closing:
		return ErrClosed
	case <-ctx.Done():
		return ctx.Err()
	}
	closed := func() error {
		select {
		case <-r.done:
			return r.err
		default:
			return ErrClosed // sent after the writer's last drain
		}
	}
	select {
	case <-r.done:
		return r.err
	case <-q.done:
		return closed()
	case <-ctx.Done():
		if r.state.CompareAndSwap(stPending, stCancelled) {
			return ctx.Err()
		}
		// The writer has taken r into a commit: its outcome comes soon.
		select {
		case <-r.done:
			return r.err
		case <-q.done:
			return closed()
		}
	}
}

// view runs fn in a read transaction.
func (q *Queue) view(fn func(*bolt.Tx) error) error {
	q.dbMu.RLock()
	defer q.dbMu.RUnlock()
	if q.db == nil {
		return ErrClosed
	}
	return q.db.View(fn)
}

var decoders = sync.Pool{New: func() any { return new(decoder) }}

// Read returns the contiguous run of stored readings that starts at the
// first seq >= from: first is its seq, and out (appended to dst[:0]) holds
// the readings first, first+1, ... up to a gap or a limit: at most
// maxReadings readings and maxBytes encoded bytes (<= 0: no limit), but
// always at least one reading if any is stored. out is empty (and first 0)
// if nothing is stored at or after from.
//
// A stored entry that fails its checksum or decoding is moved to the dead
// letters (reason "corrupt queue entry ...", counted in Stats.Corrupt) and
// skipped, so one damaged record never stalls the uplink.
func (q *Queue) Read(from uint64, maxReadings, maxBytes int, dst []protocol.Reading) (first uint64, out []protocol.Reading, err error) {
	out = dst[:0]
	d := decoders.Get().(*decoder)
	defer decoders.Put(d)
	for range 1000 {
		var bad uint64
		var badErr error
		first = 0
		out = out[:0]
		err = q.view(func(tx *bolt.Tx) error {
			var key [8]byte
			binary.BigEndian.PutUint64(key[:], from)
			c := tx.Bucket(bucketEntries).Cursor()
			size := 0
			var next uint64
			for k, v := c.Seek(key[:]); k != nil; k, v = c.Next() {
				s := binary.BigEndian.Uint64(k)
				if first != 0 && s != next || maxReadings > 0 && len(out) >= maxReadings ||
					maxBytes > 0 && len(out) > 0 && size+len(v) > maxBytes {
					break
				}
				out = append(out, protocol.Reading{})
				if err := d.decodeEntry(v, &out[len(out)-1]); err != nil {
					out = out[:len(out)-1]
					if len(out) == 0 {
						bad, badErr = s, err
					}
					break
				}
				if first == 0 {
					first = s
				}
				size += len(v)
				next = s + 1
			}
			return nil
		})
		if err != nil || bad == 0 {
			return first, out, err
		}
		if err := q.quarantine(bad, badErr); err != nil {
			return 0, out[:0], err
		}
	}
	return 0, out[:0], fmt.Errorf("%w: too many damaged entries after seq %d", ErrCorrupt, from)
}

func (q *Queue) quarantine(seq uint64, why error) error {
	return q.submit(context.Background(), q.ctrl,
		&request{op: opQuarantine, ctx: context.Background(), first: seq, why: why, done: make(chan struct{})})
}

// Close stops the writer (a commit in progress completes; appends still
// waiting fail with ErrClosed) and closes the file. It is idempotent.
func (q *Queue) Close() error {
	q.closeOnce.Do(func() {
		close(q.closing)
		<-q.done
		q.dbMu.Lock()
		defer q.dbMu.Unlock()
		if q.db != nil {
			q.closeErr = q.db.Close()
			q.db = nil
		}
		if q.closeErr != nil {
			q.closeErr = fmt.Errorf("queue: close: %w", q.closeErr)
		}
	})
	return q.closeErr
}

var errBroken = errors.New("queue: database unavailable after a failed compaction")
