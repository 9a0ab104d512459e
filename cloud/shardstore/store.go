package shardstore

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/tributary-iot/tributary/internal/boltfile"
)

// Store is an embedded stream store with the Kinesis data model in one
// bbolt file. It is safe for concurrent use. See the package documentation.
type Store struct {
	path string
	opts Options
	log  *slog.Logger
	db   *bolt.DB
	thr  Throughput

	mu      sync.RWMutex           // guards streams (the map; values are immutable)
	streams map[string]*streamMeta // published metadata

	rtMu sync.Mutex
	rt   map[rtKey]*shardRuntime

	next   atomic.Uint64 // published store-wide position counter (next to assign)
	lastTs atomic.Int64  // published arrival time of the last commit, ms

	w writerState // owned by the writer goroutine

	puts       chan *putReq
	ctrl       chan *ctrlReq
	closing    chan struct{}
	writerDone chan struct{}
	trimDone   chan struct{}
	closeOnce  sync.Once
	closeErr   error
}

// writerState is the writer goroutine's own copy of the counters.
type writerState struct {
	next   uint64
	lastTs int64
	batch  []*putReq
	keys   []byte
	bkts   map[rtKey]*bolt.Bucket

	onDemand map[uint64]*onDemand // capacity of ON_DEMAND streams, by stream id

	trimChanges []trimChange
}

// Open opens (creating if needed) the store in the bbolt file at path and
// starts its writer and trimmer. Close it when done.
func Open(path string, opts Options) (*Store, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	db, err := boltfile.Open(path, bolt.Options{
		Timeout:         250 * time.Millisecond,
		NoFreelistSync:  true,
		FreelistType:    bolt.FreelistMapType,
		InitialMmapSize: 64 << 20,
	}, "move the file aside, or restore a backup, to start again; the records in it are lost")
	switch {
	case errors.Is(err, boltfile.ErrInUse):
		return nil, fmt.Errorf("%w: %s", ErrLocked, path)
	case errors.Is(err, boltfile.ErrCorrupt):
		return nil, fmt.Errorf("%w: %w", ErrCorrupt, err)
	case err != nil:
		return nil, fmt.Errorf("shardstore: %w", err)
	}
	s := &Store{
		path:       path,
		opts:       opts,
		log:        opts.Logger,
		db:         db,
		thr:        opts.Throughput,
		streams:    make(map[string]*streamMeta),
		rt:         make(map[rtKey]*shardRuntime),
		puts:       make(chan *putReq, pendingRequests),
		ctrl:       make(chan *ctrlReq, 16),
		closing:    make(chan struct{}),
		writerDone: make(chan struct{}),
		trimDone:   make(chan struct{}),
	}
	s.w.bkts = make(map[rtKey]*bolt.Bucket)
	s.w.onDemand = make(map[uint64]*onDemand)
	if err := s.load(); err != nil {
		db.Close()
		return nil, err
	}
	go s.run()
	go s.trimmer()
	return s, nil
}

func (s *Store) load() error {
	return s.db.Update(func(tx *bolt.Tx) error {
		meta, err := tx.CreateBucketIfNotExists(bucketMeta)
		if err != nil {
			return err
		}
		if v := meta.Get(keyFormat); v == nil {
			if err := meta.Put(keyFormat, u64key(formatVersion)); err != nil {
				return err
			}
			if err := meta.Put(keyState, encodeState(1, 0)); err != nil {
				return err
			}
		} else if len(v) != 8 || binary.BigEndian.Uint64(v) != formatVersion {
			return fmt.Errorf("%w: %s has format %x, this build reads format %d", ErrCorrupt, s.path, v, formatVersion)
		}
		next, lastTs, ok := decodeState(meta.Get(keyState))
		if !ok {
			return fmt.Errorf("%w: %s: bad state record", ErrCorrupt, s.path)
		}
		streams, err := tx.CreateBucketIfNotExists(bucketStreams)
		if err != nil {
			return err
		}
		records, err := tx.CreateBucketIfNotExists(bucketRecords)
		if err != nil {
			return err
		}
		err = streams.ForEach(func(k, v []byte) error {
			m, err := decodeStream(v)
			if err == nil && m.Name != string(k) {
				err = fmt.Errorf("stream %q stored under the name %q", m.Name, k)
			}
			if err != nil {
				return fmt.Errorf("%w: %s: stream %q: bad metadata: %w", ErrCorrupt, s.path, k, err)
			}
			sb := records.Bucket(u64key(m.ID))
			if sb == nil {
				return fmt.Errorf("%w: %s: stream %q has no records bucket", ErrCorrupt, s.path, k)
			}
			for _, sh := range m.Shards {
				if sb.Bucket(u32key(sh.Index)) == nil {
					return fmt.Errorf("%w: %s: stream %q shard %d has no records bucket", ErrCorrupt, s.path, k, sh.Index)
				}
			}
			s.streams[m.Name] = m
			return nil
		})
		if err != nil {
			return err
		}
		s.w.next, s.w.lastTs = next, lastTs
		s.next.Store(next)
		s.lastTs.Store(lastTs)
		return nil
	})
}

func encodeState(next uint64, lastTs int64) []byte {
	b := make([]byte, 0, 16)
	b = binary.BigEndian.AppendUint64(b, next)
	return binary.BigEndian.AppendUint64(b, uint64(lastTs))
}

func decodeState(b []byte) (next uint64, lastTs int64, ok bool) {
	if len(b) != 16 {
		return 0, 0, false
	}
	return binary.BigEndian.Uint64(b), int64(binary.BigEndian.Uint64(b[8:])), true
}

// Close stops the trimmer and the writer (pending calls fail with
// ErrClosed) and closes the file. It is idempotent.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		close(s.closing)
		<-s.writerDone
		<-s.trimDone
		s.closeErr = s.db.Close()
	})
	return s.closeErr
}

// Path is the database file.
func (s *Store) Path() string { return s.path }

func (s *Store) nowMs() int64 { return s.opts.Now().UnixMilli() }

func (s *Store) stream(name string) *streamMeta {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.streams[name]
}

func (s *Store) publishStream(name string, m *streamMeta) {
	s.mu.Lock()
	if m == nil {
		delete(s.streams, name)
	} else {
		s.streams[name] = m
	}
	s.mu.Unlock()
}

var streamNameRE = regexp.MustCompile(`^[a-zA-Z0-9_.-]{1,128}$`)

// ValidStreamName reports whether name follows the Kinesis rules:
// 1–128 characters of [a-zA-Z0-9_.-].
func ValidStreamName(name string) bool { return streamNameRE.MatchString(name) }

func streamNotFound(name string) error {
	return errorf(ErrStreamNotFound, "stream %s not found", name)
}

// ShardInfo describes one shard.
type ShardInfo struct {
	ShardID               string
	ParentShardID         string // "" if none
	AdjacentParentShardID string // "" if none (set on the child of a merge)
	StartingHashKey       HashKey
	EndingHashKey         HashKey
	// StartingSequenceNumber is at or below the first record's;
	// EndingSequenceNumber ("" while open) at or above the last one's.
	StartingSequenceNumber string
	EndingSequenceNumber   string
	Created                time.Time
	Closed                 time.Time // zero while open
}

// Open reports whether the shard still takes records.
func (i ShardInfo) Open() bool { return i.EndingSequenceNumber == "" }

// StreamInfo describes a stream at one moment.
type StreamInfo struct {
	Name           string
	ID             uint64 // incarnation: differs between a stream and a later one of the same name
	Created        time.Time
	RetentionHours int
	Mode           StreamMode
	// TrimHorizon is the oldest arrival time still readable: now minus the
	// retention period, or the creation time if later.
	TrimHorizon time.Time
	// Shards are all shards within retention (open ones, and closed ones
	// that closed after the trim horizon), by shard index.
	Shards     []ShardInfo
	OpenShards int
}

func shardInfo(m *shardMeta) ShardInfo {
	in := ShardInfo{
		ShardID:                ShardID(m.Index),
		StartingHashKey:        m.Start,
		EndingHashKey:          m.End,
		StartingSequenceNumber: seqString(m.First, m.Index),
		Created:                time.UnixMilli(m.Created),
	}
	if m.Parent >= 0 {
		in.ParentShardID = ShardID(uint32(m.Parent))
	}
	if m.Adjacent >= 0 {
		in.AdjacentParentShardID = ShardID(uint32(m.Adjacent))
	}
	if m.Closed {
		in.EndingSequenceNumber = seqString(m.Last, m.Index)
		in.Closed = time.UnixMilli(m.ClosedAt)
	}
	return in
}

// DescribeStream describes the stream name.
func (s *Store) DescribeStream(name string) (StreamInfo, error) {
	m := s.stream(name)
	if m == nil {
		return StreamInfo{}, streamNotFound(name)
	}
	horizon := m.horizonMs(s.nowMs())
	in := StreamInfo{
		Name:           m.Name,
		ID:             m.ID,
		Created:        time.UnixMilli(m.Created),
		RetentionHours: m.RetentionHours,
		Mode:           m.mode(),
		TrimHorizon:    time.UnixMilli(horizon),
		OpenShards:     len(m.open),
	}
	for i := range m.Shards {
		sh := &m.Shards[i]
		if sh.Closed && sh.ClosedAt < horizon {
			continue // expired; the trimmer removes it
		}
		in.Shards = append(in.Shards, shardInfo(sh))
	}
	return in, nil
}

// ListStreams returns the names of all streams, sorted.
func (s *Store) ListStreams() []string {
	s.mu.RLock()
	out := make([]string, 0, len(s.streams))
	for n := range s.streams {
		out = append(out, n)
	}
	s.mu.RUnlock()
	sort.Strings(out)
	return out
}

func (s *Store) openShardTotal() int {
	n := 0
	for _, m := range s.streams {
		n += len(m.open)
	}
	return n
}

// CreateStream creates a stream of shardCount shards that split the hash
// key space evenly (shard i starts at i·floor(2^128/shardCount); the last
// one ends at 2^128−1), ids shardId-000000000000 upwards, retention 24 h,
// in provisioned mode. The stream is ACTIVE at once.
func (s *Store) CreateStream(ctx context.Context, name string, shardCount int) error {
	return s.CreateStreamMode(ctx, name, shardCount, Provisioned)
}

// CreateStreamMode is CreateStream in the given capacity mode; an
// ON_DEMAND stream with shardCount 0 gets OnDemandShards.
func (s *Store) CreateStreamMode(ctx context.Context, name string, shardCount int, mode StreamMode) error {
	switch {
	case mode == OnDemand && shardCount == 0:
		shardCount = OnDemandShards
	case mode != Provisioned && mode != OnDemand:
		return invalidf("stream mode %q: want PROVISIONED or ON_DEMAND", mode)
	}
	if !ValidStreamName(name) {
		return invalidf("stream name %q must be 1-128 characters of [a-zA-Z0-9_.-]", name)
	}
	if shardCount < 1 {
		return invalidf("shard count %d must be at least 1", shardCount)
	}
	if shardCount > s.opts.MaxShards {
		return errorf(ErrLimitExceeded, "shard count %d exceeds the store's shard limit %d", shardCount, s.opts.MaxShards)
	}
	return s.do(ctx, func(tx *bolt.Tx) (func(), error) {
		if s.streams[name] != nil {
			return nil, errorf(ErrStreamExists, "stream %s already exists", name)
		}
		if len(s.streams) >= s.opts.MaxStreams {
			return nil, errorf(ErrLimitExceeded, "the store holds %d streams, its limit", s.opts.MaxStreams)
		}
		if open := s.openShardTotal(); open+shardCount > s.opts.MaxShards {
			return nil, errorf(ErrLimitExceeded, "creating %d shards would exceed the shard limit %d (open shards now: %d)", shardCount, s.opts.MaxShards, open)
		}
		now := s.nowMs()
		id := s.w.next
		next := id + 1
		m := &streamMeta{Name: name, ID: id, Created: now, RetentionHours: DefaultRetentionHours, NextShard: uint32(shardCount)}
		if mode == OnDemand {
			m.Mode = OnDemand
		}
		starts := uniformStarts(shardCount)
		for i := range shardCount {
			end := MaxHashKey
			if i+1 < shardCount {
				end = starts[i+1].sub1()
			}
			m.Shards = append(m.Shards, shardMeta{Index: uint32(i), Start: starts[i], End: end, Parent: -1, Adjacent: -1, First: next, Created: now})
		}
		m.derive()
		sb, err := tx.Bucket(bucketRecords).CreateBucket(u64key(id))
		if err != nil {
			return nil, err
		}
		for i := range shardCount {
			if _, err := sb.CreateBucket(u32key(uint32(i))); err != nil {
				return nil, err
			}
		}
		if err := s.saveStream(tx, m, next); err != nil {
			return nil, err
		}
		return func() {
			s.setNext(next)
			s.publishStream(name, m)
			s.log.Info("stream created", "stream", name, "shards", shardCount, "mode", mode)
		}, nil
	})
}

// saveStream writes m's metadata and the counter into tx.
func (s *Store) saveStream(tx *bolt.Tx, m *streamMeta, next uint64) error {
	enc, err := m.encode()
	if err != nil {
		return err
	}
	if err := tx.Bucket(bucketStreams).Put([]byte(m.Name), enc); err != nil {
		return err
	}
	return tx.Bucket(bucketMeta).Put(keyState, encodeState(next, s.w.lastTs))
}

func (s *Store) setNext(next uint64) {
	s.w.next = next
	s.next.Store(next)
}

// DeleteStream deletes the stream and all its records at once.
func (s *Store) DeleteStream(ctx context.Context, name string) error {
	return s.do(ctx, func(tx *bolt.Tx) (func(), error) {
		m := s.streams[name]
		if m == nil {
			return nil, streamNotFound(name)
		}
		if err := tx.Bucket(bucketRecords).DeleteBucket(u64key(m.ID)); err != nil {
			return nil, err
		}
		if err := tx.Bucket(bucketStreams).Delete([]byte(name)); err != nil {
			return nil, err
		}
		return func() {
			s.publishStream(name, nil)
			s.dropRuntime(m.ID, nil)
			delete(s.w.onDemand, m.ID)
			s.log.Info("stream deleted", "stream", name)
		}, nil
	})
}

// IncreaseRetention raises the stream's retention period to hours
// (24..8760, not below the current one).
func (s *Store) IncreaseRetention(ctx context.Context, name string, hours int) error {
	return s.setRetention(ctx, name, hours, true)
}

// DecreaseRetention lowers the stream's retention period to hours
// (24..8760, not above the current one). Records older than the new period
// become unreadable at once; the trimmer deletes them.
func (s *Store) DecreaseRetention(ctx context.Context, name string, hours int) error {
	return s.setRetention(ctx, name, hours, false)
}

func (s *Store) setRetention(ctx context.Context, name string, hours int, increase bool) error {
	if hours < MinRetentionHours {
		return invalidf("minimum allowed retention period is %d hours; requested retention period (%d hours) is too short", MinRetentionHours, hours)
	}
	if hours > MaxRetentionHours {
		return invalidf("maximum allowed retention period is %d hours; requested retention period (%d hours) is too long", MaxRetentionHours, hours)
	}
	return s.do(ctx, func(tx *bolt.Tx) (func(), error) {
		m := s.streams[name]
		if m == nil {
			return nil, streamNotFound(name)
		}
		if increase && hours < m.RetentionHours {
			return nil, invalidf("requested retention period (%d hours) for stream %s can not be shorter than existing retention period (%d hours); use DecreaseStreamRetentionPeriod", hours, name, m.RetentionHours)
		}
		if !increase && hours > m.RetentionHours {
			return nil, invalidf("requested retention period (%d hours) for stream %s can not be longer than existing retention period (%d hours); use IncreaseStreamRetentionPeriod", hours, name, m.RetentionHours)
		}
		c := m.clone()
		c.RetentionHours = hours
		if err := s.saveStream(tx, c, s.w.next); err != nil {
			return nil, err
		}
		return func() { s.publishStream(name, c) }, nil
	})
}
