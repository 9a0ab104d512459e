package shardstore

import (
	"context"
	"encoding/binary"
	"hash/crc32"
	"unicode/utf8"
)

// PutEntry is one record to store.
type PutEntry struct {
	PartitionKey string // 1..256 characters; routes by MD5 unless ExplicitHashKey is set
	// ExplicitHashKey, if not "", is a decimal hash key in [0, 2^128−1]
	// that routes the record instead of MD5(PartitionKey).
	ExplicitHashKey string
	Data            []byte // at most MaxRecordBytes
}

// PutResult is the outcome of one entry. Err is nil when the record is
// durable, else it wraps ErrThrottled (the entry's shard is over its write
// limit; the other entries are unaffected).
type PutResult struct {
	ShardID        string
	SequenceNumber string
	Err            error
}

// record value layout: CRC-32C of the rest (4), arrival ms (8),
// uvarint partition key length, partition key, data.
const recordHeader = 12

// appendRecord appends a record value without its arrival time and CRC
// (sealRecord sets them when the record is committed).
func appendRecord(b []byte, partitionKey string, data []byte) []byte {
	b = append(b, make([]byte, recordHeader)...)
	b = binary.AppendUvarint(b, uint64(len(partitionKey)))
	b = append(b, partitionKey...)
	return append(b, data...)
}

// sealRecord stamps a record value with its arrival time and CRC.
func sealRecord(v []byte, ts int64) {
	binary.BigEndian.PutUint64(v[4:12], uint64(ts))
	binary.BigEndian.PutUint32(v[0:4], crc32.Checksum(v[4:], castagnoli))
}

// decodeRecord checks a stored record value's CRC and layout and splits
// it into its arrival time, partition key and data (pointing into v).
func decodeRecord(v []byte) (ts int64, pk, data []byte, ok bool) {
	if len(v) < recordHeader || crc32.Checksum(v[4:], castagnoli) != binary.BigEndian.Uint32(v) {
		return 0, nil, nil, false
	}
	pkLen, w := binary.Uvarint(v[recordHeader:])
	if w <= 0 || pkLen > uint64(len(v)-recordHeader-w) {
		return 0, nil, nil, false
	}
	body := v[recordHeader+w:]
	return recordTime(v), body[:pkLen], body[pkLen:], true
}

// Put stores entries in stream, each in the open shard whose hash key
// range covers MD5(PartitionKey) (or ExplicitHashKey), and returns when the
// stored ones are durable (committed and fsynced, shared with concurrent
// calls). Results are in entry order. Entries of one call that go to the
// same shard get rising sequence numbers in entry order and one arrival
// time.
//
// The call fails as a whole (nothing stored) on invalid input
// (ErrInvalidArgument: empty call, more than MaxPutEntries entries or
// MaxPutBytes bytes, bad partition or hash key, record over
// MaxRecordBytes), an unknown stream, a closed store, a cancelled context
// (only if the writer had not taken the call yet; after that Put waits for
// the commit) or a failed commit.
func (s *Store) Put(ctx context.Context, stream string, entries []PutEntry) ([]PutResult, error) {
	n := len(entries)
	if n == 0 {
		return nil, invalidf("a put needs at least one record")
	}
	if n > MaxPutEntries {
		return nil, invalidf("a put takes at most %d records, got %d", MaxPutEntries, n)
	}
	if s.stream(stream) == nil {
		return nil, streamNotFound(stream)
	}
	r := &putReq{
		ctx: ctx, stream: stream, n: n,
		hashes: make([]HashKey, n),
		vals:   make([][]byte, n),
		sizes:  make([]int, n),
		pos:    make([]uint64, n),
		shard:  make([]uint32, n),
		rts:    make([]*shardRuntime, n),
		errs:   make([]error, n),
		done:   make(chan struct{}),
	}
	total := 0
	for i := range entries {
		e := &entries[i]
		if e.PartitionKey == "" || len(e.PartitionKey) > 4*MaxPartitionKeyLength || utf8.RuneCountInString(e.PartitionKey) > MaxPartitionKeyLength {
			return nil, invalidf("record %d: partition key must be 1-%d characters", i, MaxPartitionKeyLength)
		}
		if len(e.Data) > MaxRecordBytes {
			return nil, invalidf("record %d: data is %d bytes, over the %d-byte limit", i, len(e.Data), MaxRecordBytes)
		}
		if e.ExplicitHashKey != "" {
			h, ok := parseU128(e.ExplicitHashKey)
			if !ok {
				return nil, invalidf("record %d: invalid ExplicitHashKey %q: it must be a decimal integer in [0, 2^128-1]", i, e.ExplicitHashKey)
			}
			r.hashes[i] = h
		} else {
			r.hashes[i] = HashPartitionKey(e.PartitionKey)
		}
		r.sizes[i] = len(e.PartitionKey) + len(e.Data)
		total += recordHeader + binary.MaxVarintLen16 + r.sizes[i]
	}
	if sum := sumSizes(r.sizes); sum > MaxPutBytes {
		return nil, invalidf("records size %d exceeds the %d-byte limit of one put", sum, MaxPutBytes)
	}
	arena := make([]byte, 0, total)
	for i := range entries {
		e := &entries[i]
		start := len(arena)
		arena = appendRecord(arena, e.PartitionKey, e.Data)
		r.vals[i] = arena[start:len(arena):len(arena)]
	}

	select {
	case s.puts <- r:
	case <-s.closing:
		return nil, ErrClosed
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	select {
	case <-r.done:
	case <-ctx.Done():
		if r.state.CompareAndSwap(stPending, stCancelled) {
			return nil, ctx.Err()
		}
		<-r.done
	case <-s.writerDone:
		select {
		case <-r.done:
		default:
			return nil, ErrClosed
		}
	}
	if r.err != nil {
		return nil, r.err
	}
	out := make([]PutResult, n)
	for i := range out {
		if r.errs[i] != nil {
			out[i].Err = r.errs[i]
			continue
		}
		out[i].ShardID = ShardID(r.shard[i])
		out[i].SequenceNumber = seqString(r.pos[i], r.shard[i])
	}
	return out, nil
}

func sumSizes(sizes []int) int {
	t := 0
	for _, v := range sizes {
		t += v
	}
	return t
}
