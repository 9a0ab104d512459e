package queue

import (
	"encoding/binary"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/tributary-iot/tributary/protocol"
)

// Control operations, applied at the start of a round: acknowledgements,
// dead letters and quarantines; and DropOldest's deletions.

// applyCtrl runs acks, dead letters and quarantines in tx.
func (q *Queue) applyCtrl(tx *bolt.Tx, ctrl []*request, d *delta) error {
	for _, r := range ctrl {
		if !r.state.CompareAndSwap(stPending, stTaken) {
			continue
		}
		var err error
		switch r.op {
		case opAck:
			err = q.applyAck(tx.Bucket(bucketEntries), r, d)
		case opDeadLetter:
			err = q.putDeadLetter(tx.Bucket(bucketDead), r.dl, d)
		case opQuarantine:
			err = q.applyQuarantine(tx, r, d)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func (q *Queue) applyAck(b *bolt.Bucket, r *request, d *delta) error {
	n, bytes, err := q.deleteRange(b, r.first, r.last, nil)
	if err != nil {
		return err
	}
	if n > 0 {
		d.st.acked += uint64(n)
		d.depth -= int64(n)
		d.bytes -= bytes
		d.freed = true
	}
	return nil
}

// deleteRange deletes the entries with seqs in [first, last], or (with
// budget) the oldest entries until budget bytes are gone; it returns how
// many it deleted and their encoded bytes.
func (q *Queue) deleteRange(b *bolt.Bucket, first, last uint64, budget *int64) (n int, bytes int64, err error) {
	w := &q.w
	w.seqs = w.seqs[:0]
	var key [8]byte
	binary.BigEndian.PutUint64(key[:], first)
	c := b.Cursor()
	for k, v := c.Seek(key[:]); k != nil; k, v = c.Next() {
		s := binary.BigEndian.Uint64(k)
		if s > last || budget != nil && *budget <= 0 {
			break
		}
		w.seqs = append(w.seqs, s)
		bytes += int64(len(v))
		if budget != nil {
			*budget -= int64(24 + len(v))
		}
	}
	for _, s := range w.seqs {
		binary.BigEndian.PutUint64(key[:], s)
		if err := b.Delete(key[:]); err != nil {
			return 0, 0, err
		}
	}
	return len(w.seqs), bytes, nil
}

// dropOldest deletes the oldest entries (below seq limit) until about
// bytes are freed, for DropOldest.
func (q *Queue) dropOldest(b *bolt.Bucket, bytes int64, limit uint64, d *delta) error {
	if limit <= 1 {
		return nil
	}
	budget := bytes
	n, size, err := q.deleteRange(b, 1, limit-1, &budget)
	if err != nil || n == 0 {
		return err
	}
	d.dropFirst, d.dropLast = q.w.seqs[0], q.w.seqs[n-1]
	d.dropped += n
	d.st.dropped += uint64(n)
	d.depth -= int64(n)
	d.bytes -= size
	d.freed = true
	return nil
}

func (q *Queue) applyQuarantine(tx *bolt.Tx, r *request, d *delta) error {
	b := tx.Bucket(bucketEntries)
	var key [8]byte
	binary.BigEndian.PutUint64(key[:], r.first)
	v := b.Get(key[:])
	if v == nil {
		return nil
	}
	var dec decoder
	var tmp protocol.Reading
	err := dec.decodeEntry(v, &tmp)
	if err == nil {
		return nil // not damaged (any more)
	}
	q.log.Error("damaged queue entry moved to the dead letters", "seq", r.first, "err", err)
	dl := encodeDeadLetter(DeadLetter{
		Time:    time.Now(),
		Reason:  fmt.Sprintf("corrupt queue entry seq %d (epoch %d): %v", r.first, q.epoch, err),
		Payload: v,
	}, q.lim.dlPayloadMax)
	if err := q.putDeadLetter(tx.Bucket(bucketDead), dl, d); err != nil {
		return err
	}
	size := int64(len(v))
	if err := b.Delete(key[:]); err != nil {
		return err
	}
	d.st.corrupt++
	d.depth--
	d.bytes -= size
	d.freed = true
	return nil
}

func (q *Queue) putDeadLetter(b *bolt.Bucket, enc []byte, d *delta) error {
	w := &q.w
	b.FillPercent = 1.0
	if err := b.Put(q.key(d.st.dlNext), enc); err != nil {
		return err
	}
	d.st.dlNext++
	d.dlCount++
	d.dlBytes += int64(len(enc))
	d.modified = true
	c := b.Cursor()
	for k, v := c.First(); k != nil; k, v = c.First() {
		count, bytes := w.dlCount+d.dlCount, w.dlBytes+d.dlBytes
		if count <= 1 || count <= q.lim.dlMax && (q.lim.dlBytesMax == 0 || bytes <= q.lim.dlBytesMax) {
			break
		}
		size := int64(len(v))
		if err := c.Delete(); err != nil {
			return err
		}
		d.dlCount--
		d.dlBytes -= size
		d.freed = true
	}
	return nil
}
