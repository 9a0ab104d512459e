package kinesisbackend

import (
	"bytes"
	"context"
	"crypto/md5"
	"errors"
	"fmt"
	"math/big"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/kinesis"

	"github.com/tributary-iot/tributary/internal/backoff"
)

// hashKey is a partition key's position in the 128-bit hash-key space,
// big-endian, so bytes.Compare orders it numerically.
type hashKey [16]byte

// hashPartitionKey is Kinesis's routing: MD5 of the key's UTF-8 bytes,
// read as an unsigned big-endian 128-bit integer.
func hashPartitionKey(key string) hashKey { return md5.Sum([]byte(key)) }

func parseHashKey(s string) (hashKey, error) {
	var h hashKey
	n, ok := new(big.Int).SetString(s, 10)
	if !ok || n.Sign() < 0 || n.BitLen() > 128 {
		return h, fmt.Errorf("kinesisbackend: bad hash key %q", s)
	}
	n.FillBytes(h[:])
	return h, nil
}

// shardRange is one open shard's hash-key range.
type shardRange struct {
	start, end hashKey
	id         string
}

// bucket is a token bucket holding one second's worth of a shard's write
// limits. A zero rate means that limit is off.
type bucket struct {
	recRate, byteRate float64 // per second, and the capacity
	recs, bytes       float64
	last              time.Time
}

func newBucket(recRate, byteRate int, now time.Time) *bucket {
	b := &bucket{recRate: float64(max(recRate, 0)), byteRate: float64(max(byteRate, 0)), last: now}
	b.recs, b.bytes = b.recRate, b.byteRate
	return b
}

func (b *bucket) refill(now time.Time) {
	dt := now.Sub(b.last).Seconds()
	if dt <= 0 {
		return
	}
	b.last = now
	b.recs = min(b.recRate, b.recs+dt*b.recRate)
	b.bytes = min(b.byteRate, b.bytes+dt*b.byteRate)
}

// take spends one record of size bytes if the bucket has it, or reports
// when it will. A record larger than the capacity needs a full bucket (and
// drives it negative).
func (b *bucket) take(now time.Time, size int) (bool, time.Time) {
	b.refill(now)
	needR, needB := min(1, b.recRate), min(float64(size), b.byteRate)
	if b.recs >= needR && b.bytes >= needB {
		if b.recRate > 0 {
			b.recs--
		}
		if b.byteRate > 0 {
			b.bytes -= float64(size)
		}
		return true, time.Time{}
	}
	var wait float64
	if b.recs < needR {
		wait = (needR - b.recs) / b.recRate
	}
	if b.bytes < needB {
		wait = max(wait, (needB-b.bytes)/b.byteRate)
	}
	return false, now.Add(time.Duration(wait*float64(time.Second)) + time.Millisecond)
}

// drain empties the bucket: the shard just said it is full (another
// producer, or Kinesis counting differently).
func (b *bucket) drain(now time.Time) {
	b.refill(now)
	b.recs = min(b.recs, 0)
	b.bytes = min(b.bytes, 0)
}

// gate is a backoff: after n consecutive failures nothing passes until
// blockedUntil.
type gate struct {
	fails        int
	blockedUntil time.Time
	failedAt     time.Time // the round that last counted a failure
}

// fail counts a failure in the round that started at round (once per
// round, however many entries failed in it) and blocks for the backoff.
func (g *gate) fail(round, now time.Time, base, maxD time.Duration) {
	if !g.failedAt.Equal(round) {
		g.failedAt = round
		g.fails++
	}
	d := base << min(g.fails-1, 30)
	if d <= 0 || d > maxD {
		d = maxD
	}
	// Jitter: somewhere in [d/2, d], so producers that throttled together
	// do not come back together.
	d = backoff.Equal.Apply(d)
	if until := now.Add(d); until.After(g.blockedUntil) {
		g.blockedUntil = until
	}
}

func (g *gate) ok(round time.Time) {
	if !g.failedAt.Equal(round) {
		g.fails = 0
	}
}

// shardState is what Put knows of one shard: its bucket and backoff.
type shardState struct {
	id     string
	bucket *bucket // nil: no client-side limit (unknown shard)
	gate   gate
}

// streamState is shared by the Puts to one stream.
type streamState struct {
	name string
	cfg  Config

	mu      sync.Mutex
	ranges  []shardRange // open shards by start; nil until mapped
	shards  map[string]*shardState
	unknown *shardState // keys no range covers, or before mapping
	gate    gate        // stream-wide backoff after whole-call failures

	listing  bool
	stale    bool
	nextList time.Time

	counts map[string]*shardCounts // by shard id: what Put saw, for ShardMetrics
}

func newStreamState(name string, cfg Config) *streamState {
	return &streamState{
		name:    name,
		cfg:     cfg,
		shards:  make(map[string]*shardState),
		unknown: &shardState{},
		counts:  make(map[string]*shardCounts),
	}
}

// route returns the shard state of hash key h. Callers hold st.mu.
func (st *streamState) route(h hashKey) *shardState {
	i := sort.Search(len(st.ranges), func(i int) bool { return bytes.Compare(st.ranges[i].start[:], h[:]) > 0 }) - 1
	if i < 0 || bytes.Compare(h[:], st.ranges[i].end[:]) > 0 {
		return st.unknown
	}
	return st.shards[st.ranges[i].id]
}

// admit reports whether an entry of size bytes for shard sh may be sent
// now (spending its tokens), or when it may. Callers hold st.mu.
func (st *streamState) admit(sh *shardState, now time.Time, size int) (bool, time.Time) {
	if now.Before(st.gate.blockedUntil) {
		return false, st.gate.blockedUntil
	}
	if now.Before(sh.gate.blockedUntil) {
		return false, sh.gate.blockedUntil
	}
	if sh.bucket == nil {
		return true, time.Time{}
	}
	return sh.bucket.take(now, size)
}

// shardFor returns the state for a ShardId Kinesis named, or nil. Callers
// hold st.mu.
func (st *streamState) shardFor(id string) *shardState { return st.shards[id] }

// install replaces the shard map, keeping the buckets and backoff of shards
// that are still open. Callers hold st.mu.
func (st *streamState) install(ranges []shardRange, now time.Time) {
	shards := make(map[string]*shardState, len(ranges))
	for _, r := range ranges {
		sh := st.shards[r.id]
		if sh == nil {
			sh = &shardState{id: r.id}
			if st.cfg.ShardRecordsPerSec > 0 || st.cfg.ShardBytesPerSec > 0 {
				sh.bucket = newBucket(st.cfg.ShardRecordsPerSec, st.cfg.ShardBytesPerSec, now)
			}
		}
		shards[r.id] = sh
	}
	st.ranges, st.shards, st.stale = ranges, shards, false
	for id := range st.counts {
		if shards[id] == nil {
			delete(st.counts, id) // closed: its children count from now on
		}
	}
}

// Intervals between ListShards calls for one stream.
const (
	relistAfter     = 5 * time.Second // after a success, when the map goes stale again
	relistAfterFail = time.Minute     // after a failure
	maxListPages    = 100
)

// refresh lists the stream's shards if it has no map yet or the map went
// stale, at most once per interval, and by one caller at a time (the
// others go on with what they have).
func (st *streamState) refresh(ctx context.Context, b *Backend) {
	now := time.Now()
	st.mu.Lock()
	need := (st.ranges == nil || st.stale) && !st.listing && !now.Before(st.nextList)
	if need {
		st.listing = true
	}
	st.mu.Unlock()
	if !need {
		return
	}
	lctx, cancel := context.WithTimeout(ctx, b.cfg.RequestTimeout)
	ranges, err := b.listShards(lctx, st.name)
	cancel()
	now = time.Now()
	st.mu.Lock()
	defer st.mu.Unlock()
	st.listing = false
	if err != nil {
		st.nextList = now.Add(relistAfterFail)
		if ctx.Err() == nil {
			b.log.Warn("kinesisbackend: cannot list shards; backing off stream-wide instead of per shard",
				"stream", st.name, "err", err)
		}
		return
	}
	st.nextList = now.Add(relistAfter)
	st.install(ranges, now)
	b.log.Debug("kinesisbackend: shard map", "stream", st.name, "open_shards", len(ranges))
}

// listShards returns the open shards of stream, sorted by hash-key range.
func (b *Backend) listShards(ctx context.Context, stream string) ([]shardRange, error) {
	name, arn := streamRef(stream)
	in := &kinesis.ListShardsInput{StreamName: name, StreamARN: arn}
	var ranges []shardRange
	for page := 0; ; page++ {
		if page == maxListPages {
			return nil, fmt.Errorf("kinesisbackend: ListShards %s: more than %d pages", stream, maxListPages)
		}
		out, err := b.client.ListShards(ctx, in)
		if err != nil {
			return nil, fmt.Errorf("kinesisbackend: ListShards %s: %w", stream, err)
		}
		for _, s := range out.Shards {
			if s.ShardId == nil || s.HashKeyRange == nil || s.HashKeyRange.StartingHashKey == nil || s.HashKeyRange.EndingHashKey == nil {
				continue
			}
			if s.SequenceNumberRange != nil && s.SequenceNumberRange.EndingSequenceNumber != nil {
				continue // closed: a parent of a split or merge
			}
			start, err1 := parseHashKey(*s.HashKeyRange.StartingHashKey)
			end, err2 := parseHashKey(*s.HashKeyRange.EndingHashKey)
			if err := errors.Join(err1, err2); err != nil {
				return nil, fmt.Errorf("kinesisbackend: ListShards %s: shard %s: %w", stream, *s.ShardId, err)
			}
			ranges = append(ranges, shardRange{start: start, end: end, id: *s.ShardId})
		}
		if out.NextToken == nil || *out.NextToken == "" {
			break
		}
		in = &kinesis.ListShardsInput{NextToken: out.NextToken}
	}
	if len(ranges) == 0 {
		return nil, fmt.Errorf("kinesisbackend: ListShards %s: no open shards", stream)
	}
	sort.Slice(ranges, func(i, j int) bool { return bytes.Compare(ranges[i].start[:], ranges[j].start[:]) < 0 })
	return ranges, nil
}

// shardIDInMessage finds the "shardId-…" a throttling message names
// ("Rate exceeded for shard shardId-000000000001 in stream s under account
// 123.").
func shardIDInMessage(msg string) string {
	i := strings.Index(msg, "shardId-")
	if i < 0 {
		return ""
	}
	j := i
	for j < len(msg) {
		c := msg[j]
		if c == '-' || c == '_' || c == '.' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' {
			j++
			continue
		}
		break
	}
	return strings.TrimRight(msg[i:j], ".")
}
