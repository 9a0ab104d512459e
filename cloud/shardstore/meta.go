package shardstore

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"sort"
	"time"
)

// shardMeta is one shard as persisted (JSON in the streams bucket).
// Positions: every record gets the store-wide counter's next value; a
// shard's records have positions in [First, Last] (Last is set when the
// shard is closed: the counter value at that moment, which is then
// skipped, so Last ≥ every record's position and children start above it).
type shardMeta struct {
	Index    uint32  `json:"i"`
	Start    HashKey `json:"s"`
	End      HashKey `json:"e"`
	Parent   int64   `json:"p"` // shard index, -1 for none
	Adjacent int64   `json:"a"` // adjacent parent (merges), -1 for none
	First    uint64  `json:"f"`
	Last     uint64  `json:"l,omitempty"`
	Closed   bool    `json:"c,omitempty"`
	Created  int64   `json:"ct"`           // ms since the epoch
	ClosedAt int64   `json:"cl,omitempty"` // ms since the epoch
}

// streamMeta is one stream as persisted. Published values are never
// modified: the writer clones, changes, commits, then swaps the pointer.
type streamMeta struct {
	Name           string      `json:"name"`
	ID             uint64      `json:"id"` // incarnation: unique in the store's life
	Created        int64       `json:"created"`
	RetentionHours int         `json:"retention_hours"`
	NextShard      uint32      `json:"next_shard"`
	Shards         []shardMeta `json:"shards"` // by Index
	// Mode is "" (provisioned) or ON_DEMAND; ODBytes and ODRecords raise
	// the on-demand stream's initial capacity to what its shards took
	// when it was switched from provisioned.
	Mode      StreamMode `json:"mode,omitempty"`
	ODBytes   int        `json:"odb,omitempty"`
	ODRecords int        `json:"odr,omitempty"`

	open []int // derived: indexes into Shards of the open shards, by Start
}

func (m *streamMeta) derive() {
	m.open = m.open[:0]
	for i := range m.Shards {
		if !m.Shards[i].Closed {
			m.open = append(m.open, i)
		}
	}
	sort.Slice(m.open, func(a, b int) bool {
		return m.Shards[m.open[a]].Start.Cmp(m.Shards[m.open[b]].Start) < 0
	})
}

// mode is the stream's capacity mode.
func (m *streamMeta) mode() StreamMode {
	if m.Mode == "" {
		return Provisioned
	}
	return m.Mode
}

func (m *streamMeta) clone() *streamMeta {
	c := *m
	c.Shards = append([]shardMeta(nil), m.Shards...)
	c.open = append([]int(nil), m.open...)
	return &c
}

func (m *streamMeta) encode() ([]byte, error) { return json.Marshal(m) }

func decodeStream(b []byte) (*streamMeta, error) {
	var m streamMeta
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, err
	}
	m.derive()
	if err := m.check(); err != nil {
		return nil, err
	}
	return &m, nil
}

// check reports what makes decoded metadata unusable: a bad name or
// retention, shards out of index order, a shard index the next new shard
// would reuse, an inverted hash key range, a parent that is not an
// earlier shard, a closed shard that ends before it starts, or open
// shards that do not partition the hash key space.
func (m *streamMeta) check() error {
	if !ValidStreamName(m.Name) {
		return fmt.Errorf("stream name %q", m.Name)
	}
	if m.RetentionHours < MinRetentionHours || m.RetentionHours > MaxRetentionHours {
		return fmt.Errorf("retention %d hours", m.RetentionHours)
	}
	if m.Mode != "" && m.Mode != OnDemand || m.ODBytes < 0 || m.ODRecords < 0 {
		return fmt.Errorf("stream mode %q (%d, %d)", m.Mode, m.ODBytes, m.ODRecords)
	}
	for i := range m.Shards {
		sh := &m.Shards[i]
		switch {
		case i > 0 && sh.Index <= m.Shards[i-1].Index:
			return fmt.Errorf("shard %d listed after shard %d", sh.Index, m.Shards[i-1].Index)
		case sh.Index >= m.NextShard:
			return fmt.Errorf("shard %d at or above the next shard index %d", sh.Index, m.NextShard)
		case sh.Start.Cmp(sh.End) > 0:
			return fmt.Errorf("shard %d: hash key range %s..%s", sh.Index, sh.Start, sh.End)
		case sh.Parent < -1 || sh.Parent >= int64(sh.Index) || sh.Adjacent < -1 || sh.Adjacent >= int64(sh.Index):
			return fmt.Errorf("shard %d: parents %d and %d", sh.Index, sh.Parent, sh.Adjacent)
		case sh.Closed && sh.Last < sh.First:
			return fmt.Errorf("shard %d: ends at %d before it starts at %d", sh.Index, sh.Last, sh.First)
		}
	}
	if len(m.open) == 0 {
		return fmt.Errorf("no open shard")
	}
	for j, i := range m.open {
		sh := &m.Shards[i]
		if j == 0 && sh.Start != (HashKey{}) || j > 0 && !adjacent(&m.Shards[m.open[j-1]], sh) {
			return fmt.Errorf("the open shards do not partition the hash key space (at shard %d)", sh.Index)
		}
	}
	if m.Shards[m.open[len(m.open)-1]].End != MaxHashKey {
		return fmt.Errorf("the open shards do not reach the end of the hash key space")
	}
	return nil
}

// shard returns the shard with index idx, or nil.
func (m *streamMeta) shard(idx uint32) *shardMeta {
	i := sort.Search(len(m.Shards), func(i int) bool { return m.Shards[i].Index >= idx })
	if i < len(m.Shards) && m.Shards[i].Index == idx {
		return &m.Shards[i]
	}
	return nil
}

// route returns the open shard covering h (open shards always partition
// the whole key space).
func (m *streamMeta) route(h HashKey) *shardMeta {
	i := sort.Search(len(m.open), func(i int) bool { return m.Shards[m.open[i]].Start.Cmp(h) > 0 })
	return &m.Shards[m.open[i-1]]
}

func (m *streamMeta) retention() time.Duration { return time.Duration(m.RetentionHours) * time.Hour }

// horizonMs is the trim horizon at now: nothing older is readable.
func (m *streamMeta) horizonMs(nowMs int64) int64 {
	return max(nowMs-m.retention().Milliseconds(), m.Created)
}

func (m *streamMeta) children(idx uint32) []*shardMeta {
	var out []*shardMeta
	for i := range m.Shards {
		s := &m.Shards[i]
		if s.Parent == int64(idx) || s.Adjacent == int64(idx) {
			out = append(out, s)
		}
	}
	return out
}

// Bucket layout, see the package documentation.
var (
	bucketMeta    = []byte("meta")
	bucketStreams = []byte("streams")
	bucketRecords = []byte("records")
	keyFormat     = []byte("format")
	keyState      = []byte("state")
)

const formatVersion = 1

func u64key(v uint64) []byte { return binary.BigEndian.AppendUint64(make([]byte, 0, 8), v) }
func u32key(v uint32) []byte { return binary.BigEndian.AppendUint32(make([]byte, 0, 4), v) }
