package shardstore

import (
	"context"
	"time"

	bolt "go.etcd.io/bbolt"
)

// StreamMode is a stream's capacity mode, as Kinesis StreamModeDetails.
type StreamMode string

// Capacity modes.
const (
	// Provisioned: each shard has its write and read limits
	// (Options.Throughput); resharding is up to the user.
	Provisioned StreamMode = "PROVISIONED"
	// OnDemand: the stream as a whole takes what Kinesis's on-demand mode
	// promises (see the package documentation); shards have no write
	// limit of their own.
	OnDemand StreamMode = "ON_DEMAND"
)

// On-demand capacity, after AWS's published rules for on-demand streams
// ("Choose the data stream capacity mode",
// https://docs.aws.amazon.com/streams/latest/dev/how-do-i-size-a-stream.html):
// a new stream takes 4 MB/s and 4,000 records/s of writes; it takes up to
// double the peak write throughput observed in the previous 30 days; a
// new peak raises the capacity within 15 minutes, so traffic that grows
// to more than double the previous peak within 15 minutes is throttled.
const (
	DefaultOnDemandWriteBytesPerSec   = 4 << 20
	DefaultOnDemandWriteRecordsPerSec = 4000
	// OnDemandShards is the shard count of a stream created ON_DEMAND.
	OnDemandShards = 4
	// onDemandPeakWindow: peaks older than this no longer count.
	onDemandPeakWindow = 30 * 24 * time.Hour
	// onDemandAdapt: a minute's throughput counts as a peak this long
	// after it ended.
	onDemandAdapt = 15 * time.Minute
)

// OnDemandCapacity is the initial write capacity of an on-demand stream
// (Options.OnDemand; zero fields mean the AWS defaults, 4 MiB/s and 4,000
// records/s).
type OnDemandCapacity struct {
	WriteBytesPerSec   int
	WriteRecordsPerSec int
}

// minuteLoad is one minute's average write throughput of a stream.
type minuteLoad struct {
	minute        int64 // Unix minute
	bytes, record float64
}

// onDemand is an on-demand stream's capacity state: token buckets at the
// current capacity, the minute being measured, the minutes that do not
// count yet (younger than onDemandAdapt) and the daily peaks of the last
// 30 days. Writer goroutine only; in memory (a restart starts from the
// initial capacity again).
type onDemand struct {
	base          OnDemandCapacity // floor: the initial capacity
	capB, capR    float64          // current capacity, per second
	bytes, recs   bucket
	cur           minuteLoad // being measured (sums, not averages)
	pending       []minuteLoad
	peaks         []minuteLoad // per day (minute = the day's first), the largest minute
	lastPeakSweep int64
}

func newOnDemand(base OnDemandCapacity) *onDemand {
	return &onDemand{base: base, capB: float64(base.WriteBytesPerSec), capR: float64(base.WriteRecordsPerSec), cur: minuteLoad{minute: -1}}
}

// admit takes one record of size bytes at the current capacity.
func (o *onDemand) admit(now time.Time, size int) bool {
	o.roll(now)
	ns := now.UnixNano()
	o.recs.refillF(ns, o.capR)
	o.bytes.refillF(ns, o.capB)
	if o.recs.tokens < 1 || o.bytes.tokens < float64(size) {
		return false
	}
	o.recs.tokens--
	o.bytes.tokens -= float64(size)
	o.cur.record++
	o.cur.bytes += float64(size)
	return true
}

// roll closes the minute being measured when now is past it, lets the
// minutes older than onDemandAdapt count as peaks, forgets peaks older
// than 30 days and recomputes the capacity.
func (o *onDemand) roll(now time.Time) {
	m := now.Unix() / 60
	if m == o.cur.minute {
		return
	}
	if o.cur.minute >= 0 && o.cur.record > 0 {
		o.pending = append(o.pending, minuteLoad{o.cur.minute, o.cur.bytes / 60, o.cur.record / 60})
	}
	o.cur = minuteLoad{minute: m}
	adapted := 0
	for _, p := range o.pending {
		if time.Unix((p.minute+1)*60, 0).Add(onDemandAdapt).After(now) {
			break
		}
		day := p.minute / 1440 * 1440
		if n := len(o.peaks); n > 0 && o.peaks[n-1].minute == day {
			o.peaks[n-1].bytes = max(o.peaks[n-1].bytes, p.bytes)
			o.peaks[n-1].record = max(o.peaks[n-1].record, p.record)
		} else {
			o.peaks = append(o.peaks, minuteLoad{day, p.bytes, p.record})
		}
		adapted++
	}
	o.pending = append(o.pending[:0], o.pending[adapted:]...)
	cut := now.Add(-onDemandPeakWindow).Unix() / 60
	drop := 0
	for drop < len(o.peaks) && o.peaks[drop].minute+1440 <= cut {
		drop++
	}
	o.peaks = append(o.peaks[:0], o.peaks[drop:]...)
	o.capB, o.capR = float64(o.base.WriteBytesPerSec), float64(o.base.WriteRecordsPerSec)
	for _, p := range o.peaks {
		o.capB, o.capR = max(o.capB, 2*p.bytes), max(o.capR, 2*p.record)
	}
}

// refillF adds rate·elapsed tokens, up to one second's worth (a new
// bucket starts full).
func (b *bucket) refillF(nowNs int64, rate float64) {
	if !b.init {
		b.tokens, b.last, b.init = rate, nowNs, true
		return
	}
	if dt := nowNs - b.last; dt > 0 {
		b.tokens = min(rate, b.tokens+rate*float64(dt)/1e9)
		b.last = nowNs
	}
}

// onDemandState returns the capacity state of stream m (nil for a
// provisioned stream). Writer goroutine only.
func (s *Store) onDemandState(m *streamMeta) *onDemand {
	if m.Mode != OnDemand {
		return nil
	}
	o := s.w.onDemand[m.ID]
	if o == nil {
		base := s.opts.OnDemand
		base.WriteBytesPerSec = max(base.WriteBytesPerSec, m.ODBytes)
		base.WriteRecordsPerSec = max(base.WriteRecordsPerSec, m.ODRecords)
		o = newOnDemand(base)
		s.w.onDemand[m.ID] = o
	}
	return o
}

// UpdateStreamMode switches the stream's capacity mode. A provisioned
// stream switched to ON_DEMAND starts from the larger of the initial
// on-demand capacity and what its open shards took; one switched to
// PROVISIONED keeps its shards, each with the per-shard limits.
func (s *Store) UpdateStreamMode(ctx context.Context, name string, mode StreamMode) error {
	if mode != Provisioned && mode != OnDemand {
		return invalidf("stream mode %q: want PROVISIONED or ON_DEMAND", mode)
	}
	return s.do(ctx, func(tx *bolt.Tx) (func(), error) {
		m := s.streams[name]
		if m == nil {
			return nil, streamNotFound(name)
		}
		if m.mode() == mode {
			return nil, nil
		}
		c := m.clone()
		c.Mode, c.ODBytes, c.ODRecords = mode, 0, 0
		if mode == OnDemand {
			c.ODBytes = len(m.open) * s.thr.WriteBytesPerSec
			c.ODRecords = len(m.open) * s.thr.WriteRecordsPerSec
		} else {
			c.Mode = "" // provisioned is the default
		}
		if err := s.saveStream(tx, c, s.w.next); err != nil {
			return nil, err
		}
		return func() {
			delete(s.w.onDemand, m.ID)
			s.publishStream(name, c)
			s.log.Info("stream mode updated", "stream", name, "mode", mode)
		}, nil
	})
}
