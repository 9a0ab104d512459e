package ingest

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/bits"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/tributary-iot/tributary/internal/boltfile"
	"github.com/tributary-iot/tributary/protocol"
)

// ackKey names one numbering of one gateway's queue.
type ackKey struct {
	gateway string
	epoch   uint64
}

func (k ackKey) bytes() []byte {
	b := make([]byte, 0, len(k.gateway)+9)
	b = append(b, k.gateway...)
	b = append(b, 0) // gateway ids never hold a NUL
	return binary.BigEndian.AppendUint64(b, k.epoch)
}

func parseAckKey(b []byte) (ackKey, bool) {
	if len(b) < 10 || b[len(b)-9] != 0 {
		return ackKey{}, false
	}
	gw := string(b[:len(b)-9])
	if protocol.CheckDeviceID(gw) != nil {
		return ackKey{}, false
	}
	return ackKey{gw, binary.BigEndian.Uint64(b[len(b)-8:])}, true
}

// ackState is what the ack log keeps per (gateway, epoch).
type ackState struct {
	updated int64 // Unix seconds of the last change
	// acked: seqs whose readings are durable in the stream. A batch inside
	// them is acknowledged again without writing.
	acked spans
	// pending: seqs whose records may have been written but were not
	// acknowledged (marked before each write, cleared after its outcome
	// is known). What is left after a crash or an unknown backend outcome
	// is written again when the gateway resends it, and counted as
	// possible duplicates.
	pending spans
	// pendingFrom is when the oldest pending seqs were marked (Unix ms; 0
	// when nothing is pending, or unknown for states written by version
	// 1): their records, if any, arrived in the stream after it.
	pendingFrom int64
}

// Encoding: version 2, uvarint updated, uvarint pendingFrom, then acked
// and pending (version 1 has no pendingFrom), each a
// uvarint count followed by (gap, length-1) uvarint pairs, where gap is
// the distance from the previous span's hi+1 (from 0 for the first).
const (
	stateVersion  = 2
	maxStateSpans = 1 << 20 // sanity bound when decoding
)

func (st *ackState) encode() []byte {
	b := make([]byte, 0, 16+10*(len(st.acked)+len(st.pending)))
	b = append(b, stateVersion)
	b = binary.AppendUvarint(b, uint64(st.updated))
	b = binary.AppendUvarint(b, uint64(st.pendingFrom))
	for _, ss := range []spans{st.acked, st.pending} {
		b = binary.AppendUvarint(b, uint64(len(ss)))
		var next uint64
		for _, s := range ss {
			b = binary.AppendUvarint(b, s.lo-next)
			b = binary.AppendUvarint(b, s.hi-s.lo)
			next = s.hi + 1
		}
	}
	return b
}

var errCorrupt = errors.New("ingest: corrupt ack state")

func decodeAckState(b []byte) (ackState, error) {
	var st ackState
	if len(b) == 0 || b[0] < 1 || b[0] > stateVersion {
		return st, fmt.Errorf("%w: unknown version", errCorrupt)
	}
	version := b[0]
	b = b[1:]
	uv := func() (uint64, bool) {
		v, n := binary.Uvarint(b)
		if n <= 0 {
			return 0, false
		}
		b = b[n:]
		return v, true
	}
	u, ok := uv()
	if !ok || u > 1<<62 {
		return st, fmt.Errorf("%w: time", errCorrupt)
	}
	st.updated = int64(u)
	if version >= 2 {
		u, ok := uv()
		if !ok || u > 1<<62 {
			return st, fmt.Errorf("%w: pending time", errCorrupt)
		}
		st.pendingFrom = int64(u)
	}
	for k := range 2 {
		n, ok := uv()
		if !ok || n > maxStateSpans || n > uint64(len(b)) {
			return st, fmt.Errorf("%w: span count", errCorrupt)
		}
		ss := make(spans, 0, n)
		var next uint64
		for i := range n {
			gap, ok1 := uv()
			length, ok2 := uv()
			if !ok1 || !ok2 || (i > 0 && (next == 0 || gap == 0)) {
				return st, fmt.Errorf("%w: span %d", errCorrupt, i)
			}
			lo, c1 := bits.Add64(next, gap, 0)
			hi, c2 := bits.Add64(lo, length, 0)
			if c1 != 0 || c2 != 0 {
				return st, fmt.Errorf("%w: span %d overflows", errCorrupt, i)
			}
			ss = append(ss, span{lo, hi})
			next = hi + 1 // 0 after the top seq: nothing may follow
		}
		if k == 0 {
			st.acked = ss
		} else {
			st.pending = ss
		}
	}
	if len(b) != 0 {
		return st, fmt.Errorf("%w: %d trailing bytes", errCorrupt, len(b))
	}
	return st, nil
}

var ackBucket = []byte("acks")

// ackLog is the durable ack state, one bbolt file.
type ackLog struct {
	path string
	db   *bolt.DB
}

func openAckLog(path string) (*ackLog, error) {
	db, err := boltfile.Open(path, bolt.Options{Timeout: time.Second},
		"move the file aside and restart: no reading is lost, but batches the gateways resend are then stored again")
	if err != nil {
		return nil, fmt.Errorf("ingest: ack log: %w", err)
	}
	// Saves from many gateways share commits (one fsync): a short delay
	// keeps a lone request fast.
	db.MaxBatchDelay = 2 * time.Millisecond
	if err := db.Update(func(tx *bolt.Tx) error {
		_, err := tx.CreateBucketIfNotExists(ackBucket)
		return err
	}); err != nil {
		db.Close()
		return nil, fmt.Errorf("ingest: ack log: %w", err)
	}
	return &ackLog{path: path, db: db}, nil
}

func (l *ackLog) close() error { return l.db.Close() }

func (l *ackLog) load(k ackKey) (ackState, error) {
	var st ackState
	err := l.db.View(func(tx *bolt.Tx) error {
		v := tx.Bucket(ackBucket).Get(k.bytes())
		if v == nil {
			return nil
		}
		var err error
		st, err = decodeAckState(v)
		return err
	})
	if err != nil {
		return ackState{}, fmt.Errorf("ingest: ack log: gateway %s epoch %d: %w", k.gateway, k.epoch, err)
	}
	return st, nil
}

// save makes st durable (fsync) before it returns. Concurrent saves share
// a commit.
func (l *ackLog) save(k ackKey, st *ackState) error {
	key, val := k.bytes(), st.encode()
	err := l.db.Batch(func(tx *bolt.Tx) error {
		return tx.Bucket(ackBucket).Put(key, val)
	})
	switch {
	case boltfile.NoSpace(err):
		return errNoSpace(l.path, err)
	case err != nil:
		return fmt.Errorf("ingest: ack log: saving gateway %s epoch %d: %w", k.gateway, k.epoch, err)
	}
	return nil
}

// errNoSpace is the error for a write that found the disk full.
func errNoSpace(path string, err error) error {
	return fmt.Errorf("ingest: no space to grow the ack log %s (%w): free disk space; the gateways resend meanwhile", path, err)
}

// each calls fn for every stored state (corrupt ones with err set).
func (l *ackLog) each(fn func(k ackKey, st *ackState, err error)) error {
	return l.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(ackBucket).ForEach(func(kb, v []byte) error {
			k, ok := parseAckKey(kb)
			if !ok {
				fn(ackKey{gateway: fmt.Sprintf("%q", kb)}, nil, fmt.Errorf("%w: key", errCorrupt))
				return nil
			}
			st, err := decodeAckState(v)
			fn(k, &st, err)
			return nil
		})
	})
}

// stale returns the keys whose state was last updated before the given
// Unix time.
func (l *ackLog) stale(before int64) ([]ackKey, error) {
	var out []ackKey
	err := l.each(func(k ackKey, st *ackState, err error) {
		if err == nil && st.updated < before {
			out = append(out, k)
		}
	})
	return out, err
}

// drop deletes k's state if it is still older than before, and returns
// the pending seqs it held. The caller holds k's lock.
func (l *ackLog) drop(k ackKey, before int64) (dropped bool, pending uint64, err error) {
	err = l.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(ackBucket)
		v := b.Get(k.bytes())
		if v == nil {
			return nil
		}
		st, err := decodeAckState(v)
		if err != nil || st.updated >= before {
			return nil
		}
		dropped, pending = true, st.pending.count()
		return b.Delete(k.bytes())
	})
	return dropped, pending, err
}
