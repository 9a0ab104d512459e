package shardstore

import (
	"crypto/md5"
	"encoding/binary"
	"math/big"
	"math/bits"
)

// HashKey is a 128-bit unsigned hash key: MD5 of a partition key read as a
// big-endian integer, or an explicit hash key. Its text form is the
// decimal string Kinesis uses ("0" .. "340282366920938463463374607431768211455").
type HashKey struct{ Hi, Lo uint64 }

// MaxHashKey is 2^128 − 1, the end of the hash key space.
var MaxHashKey = HashKey{^uint64(0), ^uint64(0)}

// HashPartitionKey returns MD5(partitionKey) as a HashKey, the routing key
// Kinesis uses.
func HashPartitionKey(partitionKey string) HashKey {
	sum := md5.Sum([]byte(partitionKey))
	return HashKey{binary.BigEndian.Uint64(sum[:8]), binary.BigEndian.Uint64(sum[8:])}
}

// ParseHashKey parses a decimal hash key in 0 .. 2^128−1 (no sign, no
// leading zeros other than "0" itself).
func ParseHashKey(s string) (HashKey, error) {
	h, ok := parseU128(s)
	if !ok {
		return HashKey{}, invalidf("hash key %q is not a decimal integer in [0, 2^128-1]", s)
	}
	return h, nil
}

// Cmp compares h and o: -1, 0 or +1.
func (h HashKey) Cmp(o HashKey) int {
	switch {
	case h.Hi < o.Hi:
		return -1
	case h.Hi > o.Hi:
		return 1
	case h.Lo < o.Lo:
		return -1
	case h.Lo > o.Lo:
		return 1
	}
	return 0
}

func (h HashKey) add1() HashKey {
	lo, c := bits.Add64(h.Lo, 1, 0)
	return HashKey{h.Hi + c, lo}
}

func (h HashKey) sub1() HashKey {
	lo, b := bits.Sub64(h.Lo, 1, 0)
	return HashKey{h.Hi - b, lo}
}

// String is the decimal form.
func (h HashKey) String() string { return string(appendU128(nil, h.Hi, h.Lo)) }

// MarshalText implements encoding.TextMarshaler (decimal).
func (h HashKey) MarshalText() ([]byte, error) { return appendU128(nil, h.Hi, h.Lo), nil }

// UnmarshalText implements encoding.TextUnmarshaler (decimal).
func (h *HashKey) UnmarshalText(b []byte) error {
	v, err := ParseHashKey(string(b))
	if err != nil {
		return err
	}
	*h = v
	return nil
}

func (h HashKey) big() *big.Int {
	b := new(big.Int).SetUint64(h.Hi)
	b.Lsh(b, 64)
	return b.Or(b, new(big.Int).SetUint64(h.Lo))
}

func hashKeyFromBig(b *big.Int) HashKey {
	var buf [16]byte
	b.FillBytes(buf[:])
	return HashKey{binary.BigEndian.Uint64(buf[:8]), binary.BigEndian.Uint64(buf[8:])}
}

// uniformStarts returns the starting hash keys of n shards that split the
// key space evenly, the way Kinesis does: each shard but the last covers
// floor(2^128/n) keys, the last one takes the remainder.
func uniformStarts(n int) []HashKey {
	step := new(big.Int).Lsh(big.NewInt(1), 128)
	step.Div(step, big.NewInt(int64(n)))
	out := make([]HashKey, n)
	for i := range n {
		out[i] = hashKeyFromBig(new(big.Int).Mul(step, big.NewInt(int64(i))))
	}
	return out
}

const pow10_19 = 10_000_000_000_000_000_000

// appendU128 appends the decimal form of hi:lo.
func appendU128(b []byte, hi, lo uint64) []byte {
	// hi:lo = (q2·10^19 + r1)·10^19 + r0, with q2 < 4.
	qh, r := hi/pow10_19, hi%pow10_19
	ql, r0 := bits.Div64(r, lo, pow10_19)
	q2, r1 := bits.Div64(qh%pow10_19, ql, pow10_19) // qh < 2, so qh%10^19 == qh
	switch {
	case q2 != 0:
		b = appendUint(b, q2, 0)
		b = appendUint(b, r1, 19)
		return appendUint(b, r0, 19)
	case r1 != 0:
		b = appendUint(b, r1, 0)
		return appendUint(b, r0, 19)
	}
	return appendUint(b, r0, 0)
}

// appendUint appends v in decimal, zero-padded to width digits.
func appendUint(b []byte, v uint64, width int) []byte {
	var tmp [20]byte
	i := len(tmp)
	for v >= 10 {
		i--
		tmp[i] = byte('0' + v%10)
		v /= 10
	}
	i--
	tmp[i] = byte('0' + v)
	for len(tmp)-i < width {
		i--
		tmp[i] = '0'
	}
	return append(b, tmp[i:]...)
}

// parseU128 parses a canonical decimal integer below 2^128.
func parseU128(s string) (HashKey, bool) {
	if len(s) == 0 || len(s) > 39 || len(s) > 1 && s[0] == '0' {
		return HashKey{}, false
	}
	var hi, lo uint64
	for i := 0; i < len(s); i++ {
		d := s[i]
		if d < '0' || d > '9' {
			return HashKey{}, false
		}
		// hi:lo = hi:lo·10 + d
		h1, l1 := bits.Mul64(lo, 10)
		h2, hiTimes := bits.Mul64(hi, 10)
		if h2 != 0 {
			return HashKey{}, false
		}
		var c uint64
		h1, c = bits.Add64(h1, hiTimes, 0)
		if c != 0 {
			return HashKey{}, false
		}
		l1, c = bits.Add64(l1, uint64(d-'0'), 0)
		h1, c = bits.Add64(h1, 0, c)
		if c != 0 {
			return HashKey{}, false
		}
		hi, lo = h1, l1
	}
	return HashKey{hi, lo}, true
}

// ShardID formats a shard index the way Kinesis names shards.
func ShardID(index uint32) string {
	var b [8 + 12]byte
	return string(appendUint(append(b[:0], "shardId-"...), uint64(index), 12))
}

// ParseShardID returns the index of a shard id "shardId-000000000007". Like
// Kinesis it also accepts the bare number after the dash being shorter.
func ParseShardID(id string) (uint32, bool) {
	const prefix = "shardId-"
	if len(id) <= len(prefix) || id[:len(prefix)] != prefix || len(id) > len(prefix)+12 {
		return 0, false
	}
	var v uint64
	for _, c := range []byte(id[len(prefix):]) {
		if c < '0' || c > '9' {
			return 0, false
		}
		v = v*10 + uint64(c-'0')
	}
	if v > 1<<32-1 {
		return 0, false
	}
	return uint32(v), true
}
