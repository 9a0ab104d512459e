package shardstore

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"
)

// IteratorType says where a read starts, as Kinesis ShardIteratorType.
type IteratorType string

// Iterator types.
const (
	TrimHorizon         IteratorType = "TRIM_HORIZON"          // the oldest record within retention
	Latest              IteratorType = "LATEST"                // just after the newest record: only records stored later
	AtSequenceNumber    IteratorType = "AT_SEQUENCE_NUMBER"    // the record with that sequence number (or the next one)
	AfterSequenceNumber IteratorType = "AFTER_SEQUENCE_NUMBER" // just after that record
	AtTimestamp         IteratorType = "AT_TIMESTAMP"          // the first record that arrived at or after Timestamp
)

// Start is a starting point in a shard.
type Start struct {
	Type           IteratorType
	SequenceNumber string    // AT_ and AFTER_SEQUENCE_NUMBER
	Timestamp      time.Time // AT_TIMESTAMP
}

// Position is a point in a shard: the next read returns the shard's
// records from position Next on. It is a plain value that stays valid
// across restarts; the Kinesis API seals it into shard iterators.
type Position struct {
	Stream   string
	StreamID uint64 // the stream's incarnation (StreamInfo.ID)
	Shard    uint32 // shard index
	Next     uint64 // store-wide record position (see SequenceNumber)
}

// ShardID is the id of the position's shard.
func (p Position) ShardID() string { return ShardID(p.Shard) }

// MarshalBinary encodes p: stream id (8), shard (4), next (8), name.
func (p Position) MarshalBinary() ([]byte, error) {
	b := make([]byte, 0, 20+len(p.Stream))
	b = binary.BigEndian.AppendUint64(b, p.StreamID)
	b = binary.BigEndian.AppendUint32(b, p.Shard)
	b = binary.BigEndian.AppendUint64(b, p.Next)
	return append(b, p.Stream...), nil
}

// UnmarshalBinary decodes what MarshalBinary made.
func (p *Position) UnmarshalBinary(b []byte) error {
	if len(b) < 21 || len(b) > 20+MaxStreamNameLength || !ValidStreamName(string(b[20:])) {
		return invalidf("bad position encoding")
	}
	p.StreamID = binary.BigEndian.Uint64(b)
	p.Shard = binary.BigEndian.Uint32(b[8:])
	p.Next = binary.BigEndian.Uint64(b[12:])
	p.Stream = string(b[20:])
	return nil
}

// Record is one stored record.
type Record struct {
	SequenceNumber              string
	PartitionKey                string
	Data                        []byte
	ApproximateArrivalTimestamp time.Time // millisecond precision
}

// ChildShard is a child of a closed shard.
type ChildShard struct {
	ShardID         string
	ParentShards    []string // one parent (split) or two (merge)
	StartingHashKey HashKey
	EndingHashKey   HashKey
}

// ReadResult is what one Read returns.
type ReadResult struct {
	Records []Record
	// Next is where the following read continues (unchanged when nothing
	// was returned). Meaningless once EndOfShard is set.
	Next Position
	// MillisBehindLatest is how long ago the next unread record arrived:
	// 0 when the read reached the newest record.
	MillisBehindLatest int64
	// EndOfShard: the shard is closed and this read returned its last
	// records (or there were none left). ChildShards lists its children.
	EndOfShard  bool
	ChildShards []ChildShard
}

// Seek resolves a starting point in a shard to a Position. It fails with
// ErrStreamNotFound, ErrShardNotFound, or ErrInvalidArgument for a missing
// or foreign sequence number, a timestamp in the future or an unknown type.
func (s *Store) Seek(stream, shardID string, start Start) (Position, error) {
	m := s.stream(stream)
	if m == nil {
		return Position{}, streamNotFound(stream)
	}
	idx, ok := ParseShardID(shardID)
	var sh *shardMeta
	if ok {
		sh = m.shard(idx)
	}
	now := s.nowMs()
	if sh == nil || sh.Closed && sh.ClosedAt < m.horizonMs(now) {
		return Position{}, errorf(ErrShardNotFound, "shard %s in stream %s does not exist", shardID, stream)
	}
	p := Position{Stream: stream, StreamID: m.ID, Shard: sh.Index}
	switch start.Type {
	case TrimHorizon:
		p.Next = sh.First
	case Latest:
		p.Next = max(s.next.Load(), sh.First)
	case AtSequenceNumber, AfterSequenceNumber:
		if start.SequenceNumber == "" {
			return Position{}, invalidf("iterator type %s needs a starting sequence number", start.Type)
		}
		seq, err := ParseSequenceNumber(start.SequenceNumber)
		if err != nil {
			return Position{}, err
		}
		if seq.Shard != sh.Index {
			return Position{}, invalidf("invalid StartingSequenceNumber: it encodes %s, while it was used in a call to a shard with %s", ShardID(seq.Shard), shardID)
		}
		limit := s.next.Load() // positions issued so far are below this
		if sh.Closed {
			limit = sh.Last + 1
		}
		if seq.Position < sh.First || seq.Position >= limit {
			return Position{}, invalidf("StartingSequenceNumber %s used on shard %s in stream %s is invalid because it did not come from this stream", start.SequenceNumber, shardID, stream)
		}
		p.Next = seq.Position
		if start.Type == AfterSequenceNumber {
			p.Next++
		}
	case AtTimestamp:
		if start.Timestamp.IsZero() {
			return Position{}, invalidf("iterator type AT_TIMESTAMP needs a timestamp")
		}
		t := start.Timestamp.UnixMilli()
		if t > now {
			return Position{}, invalidf("the timestamp %d ms cannot be greater than the current time %d ms", t, now)
		}
		t = max(t, m.horizonMs(now))
		err := s.db.View(func(tx *bolt.Tx) error {
			b := s.shardBucket(tx, m.ID, sh.Index)
			if b == nil {
				return errorf(ErrShardNotFound, "shard %s in stream %s does not exist", shardID, stream)
			}
			k, _ := seekTime(b.Cursor(), sh.First, t)
			if k != nil {
				p.Next = binary.BigEndian.Uint64(k)
			} else {
				p.Next = max(s.next.Load(), sh.First)
			}
			return nil
		})
		if err != nil {
			return Position{}, err
		}
	default:
		return Position{}, invalidf("unknown iterator type %q (want TRIM_HORIZON, LATEST, AT_SEQUENCE_NUMBER, AFTER_SEQUENCE_NUMBER or AT_TIMESTAMP)", start.Type)
	}
	return p, nil
}

// span is a record found by Read, pointing into the transaction's pages.
type span struct {
	pos    uint64
	ts     int64
	pk, dt []byte
}

var spanPool = sync.Pool{New: func() any { return new([]span) }}

func (s *Store) shardBucket(tx *bolt.Tx, stream uint64, shard uint32) *bolt.Bucket {
	sb := tx.Bucket(bucketRecords).Bucket(u64key(stream))
	if sb == nil {
		return nil
	}
	return sb.Bucket(u32key(shard))
}

// seekTime returns the first record at or after position from whose
// arrival time is at or after t (arrival times rise with position within
// a shard), by binary search over positions with Seek.
func seekTime(c *bolt.Cursor, from uint64, t int64) (k, v []byte) {
	lk, _ := c.Last()
	if lk == nil {
		return nil, nil
	}
	lo, hi := from, binary.BigEndian.Uint64(lk)+1
	var key [8]byte
	for lo < hi {
		mid := lo + (hi-lo)/2
		binary.BigEndian.PutUint64(key[:], mid)
		k, v := c.Seek(key[:])
		if k == nil || recordTime(v) >= t {
			hi = mid
		} else {
			lo = binary.BigEndian.Uint64(k) + 1
		}
	}
	binary.BigEndian.PutUint64(key[:], lo)
	return c.Seek(key[:])
}

// recordName is the sequence number of the record at key k, for errors.
func recordName(k []byte, shard uint32) string {
	if len(k) != 8 {
		return fmt.Sprintf("at key %x", k)
	}
	return seqString(binary.BigEndian.Uint64(k), shard)
}

func recordTime(v []byte) int64 {
	if len(v) < recordHeader {
		return 0
	}
	return int64(binary.BigEndian.Uint64(v[4:12]))
}

// Read returns up to limit (1..MaxReadRecords) records from pos on, and
// at most MaxReadBytes of data (but always at least one record if any).
// Records older than the retention period are skipped. It fails with
// ErrThrottled when the shard's read limits are used up, ErrStreamNotFound
// when the stream was deleted (or re-created) since pos was taken,
// ErrShardNotFound when the shard expired.
func (s *Store) Read(ctx context.Context, pos Position, limit int) (ReadResult, error) {
	if err := ctx.Err(); err != nil {
		return ReadResult{}, err
	}
	if limit < 1 || limit > MaxReadRecords {
		return ReadResult{}, invalidf("limit %d must be in 1..%d", limit, MaxReadRecords)
	}
	m := s.stream(pos.Stream)
	if m == nil || m.ID != pos.StreamID {
		return ReadResult{}, streamNotFound(pos.Stream)
	}
	now := s.opts.Now()
	nowMs := now.UnixMilli()
	horizon := m.horizonMs(nowMs)
	sh := m.shard(pos.Shard)
	if sh == nil || sh.Closed && sh.ClosedAt < horizon {
		return ReadResult{}, errorf(ErrShardNotFound, "shard %s in stream %s does not exist", ShardID(pos.Shard), pos.Stream)
	}
	rt := s.runtime(m.ID, sh.Index)
	if !rt.admitRead(now.UnixNano(), &s.thr) {
		rt.c.readExceeded.Add(1)
		return ReadResult{}, errorf(ErrThrottled, "rate exceeded for shard %s in stream %s", ShardID(sh.Index), m.Name)
	}
	res := ReadResult{Next: pos}
	bytes := 0
	err := s.db.View(func(tx *bolt.Tx) error {
		b := s.shardBucket(tx, m.ID, sh.Index)
		if b == nil {
			return errorf(ErrShardNotFound, "shard %s in stream %s does not exist", ShardID(pos.Shard), pos.Stream)
		}
		c := b.Cursor()
		var key [8]byte
		binary.BigEndian.PutUint64(key[:], max(pos.Next, sh.First))
		k, v := c.Seek(key[:])
		if k != nil && recordTime(v) < horizon {
			k, v = seekTime(c, binary.BigEndian.Uint64(k), horizon)
		}
		// First pass: count and size, so the copies go to three arenas.
		n, dataBytes, pkBytes := 0, 0, 0
		sp := spanPool.Get().(*[]span)
		defer func() {
			clear(*sp)
			spanPool.Put(sp)
		}()
		spans := (*sp)[:0]
		for ; k != nil && n < limit; k, v = c.Next() {
			ts, pk, dt, ok := decodeRecord(v)
			if !ok || len(k) != 8 {
				return errorf(ErrCorrupt, "record %s of shard %s in stream %s is damaged", recordName(k, sh.Index), ShardID(sh.Index), m.Name)
			}
			if n > 0 && dataBytes+pkBytes+len(pk)+len(dt) > MaxReadBytes {
				break
			}
			spans = append(spans, span{binary.BigEndian.Uint64(k), ts, pk, dt})
			*sp = spans
			n++
			pkBytes += len(pk)
			dataBytes += len(dt)
		}
		// k, v is now the next unread record, if any.
		if k != nil {
			res.MillisBehindLatest = max(0, nowMs-recordTime(v))
		} else if sh.Closed {
			res.EndOfShard = true
		}
		if n == 0 {
			return nil
		}
		data := make([]byte, 0, dataBytes)
		var pks, seqs strings.Builder
		pks.Grow(pkBytes)
		seqs.Grow(n * seqDigits)
		var sb [seqDigits]byte
		for _, sp := range spans {
			data = append(data, sp.dt...)
			pks.Write(sp.pk)
			seqs.Write(SequenceNumber{sp.pos, sh.Index}.appendTo(sb[:0]))
		}
		pkStr, seqStr := pks.String(), seqs.String()
		res.Records = make([]Record, n)
		do, po := 0, 0
		for i, sp := range spans {
			rec := &res.Records[i]
			rec.Data = data[do : do+len(sp.dt) : do+len(sp.dt)]
			do += len(sp.dt)
			rec.PartitionKey = pkStr[po : po+len(sp.pk)]
			po += len(sp.pk)
			rec.SequenceNumber = seqStr[i*seqDigits : (i+1)*seqDigits]
			rec.ApproximateArrivalTimestamp = time.UnixMilli(sp.ts)
		}
		res.Next.Next = spans[n-1].pos + 1
		bytes = dataBytes + pkBytes
		return nil
	})
	if err != nil {
		if _, ok := errors.AsType[*Error](err); !ok {
			err = fmt.Errorf("shardstore: read: %w", err)
		}
		return ReadResult{}, err
	}
	rt.chargeRead(bytes, &s.thr)
	rt.c.reads.Add(1)
	rt.c.outBytes.Add(uint64(bytes))
	rt.c.outRecords.Add(uint64(len(res.Records)))
	age := int64(0) // CloudWatch's GetRecords.IteratorAgeMilliseconds: the last returned record's age
	if n := len(res.Records); n > 0 {
		age = max(0, nowMs-res.Records[n-1].ApproximateArrivalTimestamp.UnixMilli())
	}
	rt.c.iteratorAgeMs.Store(age)
	if res.EndOfShard {
		for _, c := range m.children(sh.Index) {
			cs := ChildShard{ShardID: ShardID(c.Index), StartingHashKey: c.Start, EndingHashKey: c.End}
			for _, p := range []int64{c.Parent, c.Adjacent} {
				if p >= 0 {
					cs.ParentShards = append(cs.ParentShards, ShardID(uint32(p)))
				}
			}
			res.ChildShards = append(res.ChildShards, cs)
		}
	}
	return res, nil
}
