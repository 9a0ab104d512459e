package queue

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"time"
	"unicode/utf8"

	bolt "go.etcd.io/bbolt"
)

// DeadLetter is a message the agent could not turn into readings (or a
// damaged queue entry), kept for diagnosis.
type DeadLetter struct {
	Time    time.Time
	Topic   string
	Reason  string
	Payload []byte
}

// Dead-letter encoding (the value under each 8-byte big-endian key of the
// "deadletters" bucket):
//
//	crc     4 bytes, big-endian CRC-32C of the rest
//	time    zigzag varint: Time in µs since the epoch
//	topic   uvarint length, bytes (at most 1 KiB)
//	reason  uvarint length, bytes (at most 1 KiB)
//	payload the remaining bytes
func encodeDeadLetter(d DeadLetter, maxPayload int) []byte {
	topic, reason, payload := clip(d.Topic), clip(d.Reason), d.Payload
	if len(payload) > maxPayload {
		reason = clip(fmt.Sprintf("%s (payload truncated from %d bytes)", reason, len(payload)))
		payload = payload[:maxPayload]
	}
	b := make([]byte, crcSize, crcSize+2*binary.MaxVarintLen64+len(topic)+len(reason)+len(payload))
	b = binary.AppendVarint(b, d.Time.UnixMicro())
	b = appendString(b, topic)
	b = appendString(b, reason)
	b = append(b, payload...)
	binary.BigEndian.PutUint32(b, crc32.Checksum(b[crcSize:], crcTable))
	return b
}

// clip bounds a topic or reason, cutting on a rune boundary.
func clip(s string) string {
	if len(s) <= maxDeadLetterText {
		return s
	}
	n := maxDeadLetterText
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

var errDeadLetter = errors.New("bad dead letter")

func decodeDeadLetter(b []byte) (DeadLetter, error) {
	var d DeadLetter
	if len(b) < crcSize || crc32.Checksum(b[crcSize:], crcTable) != binary.BigEndian.Uint32(b) {
		return d, errDeadLetter
	}
	p := b[crcSize:]
	t, n := binary.Varint(p)
	if n <= 0 {
		return d, errDeadLetter
	}
	topic, p, err := readBytes(p[n:], 0, maxDeadLetterText, "topic")
	if err != nil {
		return d, errDeadLetter
	}
	reason, p, err := readBytes(p, 0, maxDeadLetterText, "reason")
	if err != nil {
		return d, errDeadLetter
	}
	d.Time = time.UnixMicro(t).UTC()
	d.Topic, d.Reason = string(topic), string(reason)
	if len(p) > 0 {
		d.Payload = append([]byte(nil), p...)
	}
	return d, nil
}

// AddDeadLetter stores d durably (group-committed with appends). The
// payload is cut to 64 KiB (less with a small quota: MaxBytes/64), topic
// and reason to 1 KiB; a zero Time means now. The bucket keeps the newest
// DeadLetterMax letters (and, with a quota, at most MaxBytes/16 bytes),
// evicting the oldest.
func (q *Queue) AddDeadLetter(ctx context.Context, d DeadLetter) error {
	if d.Time.IsZero() {
		d.Time = time.Now()
	}
	return q.submit(ctx, q.ctrl, &request{op: opDeadLetter, ctx: ctx,
		dl: encodeDeadLetter(d, q.lim.dlPayloadMax), done: make(chan struct{})})
}

// DeadLetters returns up to max dead letters (max <= 0: all), newest
// first. A damaged one is returned with Reason "damaged dead letter".
func (q *Queue) DeadLetters(max int) ([]DeadLetter, error) {
	var out []DeadLetter
	err := q.view(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketDead).Cursor()
		for k, v := c.Last(); k != nil && (max <= 0 || len(out) < max); k, v = c.Prev() {
			d, err := decodeDeadLetter(v)
			if err != nil {
				d = DeadLetter{Reason: "damaged dead letter", Payload: append([]byte(nil), v...)}
			}
			out = append(out, d)
		}
		return nil
	})
	return out, err
}
