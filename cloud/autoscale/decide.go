package autoscale

import (
	"fmt"
	"math"
	"math/big"
	"time"
)

// Limits are one shard's throughput limits, per second.
type Limits struct {
	WriteBytesPerSec   float64 `json:"write_bytes_per_sec"`
	WriteRecordsPerSec float64 `json:"write_records_per_sec"`
	ReadBytesPerSec    float64 `json:"read_bytes_per_sec"`
}

// KinesisLimits are Amazon Kinesis Data Streams' per-shard limits: 1 MiB/s
// or 1,000 records/s in, 2 MiB/s out.
var KinesisLimits = Limits{WriteBytesPerSec: 1 << 20, WriteRecordsPerSec: 1000, ReadBytesPerSec: 2 << 20}

// Kinesis's rules for UpdateShardCount (see its API reference): at most 10
// calls per rolling 24 hours per stream, and each to between half and
// double the open shard count.
const (
	MaxUpdatesPerDay = 10
	updateWindow     = 24 * time.Hour
	// scaleDownHeadroom: scale down only to a count that would run at most
	// this share of the target, so that a load just under a boundary
	// does not flap between two counts.
	scaleDownHeadroom = 0.8
)

// ShardCounters are one open shard's totals (CloudWatch's shard-level
// metrics, summed since the source started counting).
type ShardCounters struct {
	ShardID         string
	StartingHashKey string // decimal, as Kinesis lists it
	EndingHashKey   string
	IncomingBytes   uint64
	IncomingRecords uint64
	// WriteThrottled is WriteProvisionedThroughputExceeded: records
	// refused for the write limits; ReadThrottled the reads refused.
	WriteThrottled uint64
	ReadThrottled  uint64
	OutgoingBytes  uint64
}

// Snapshot is every open shard's counters at one moment.
type Snapshot struct {
	At     time.Time
	Shards []ShardCounters
}

// ShardLoad is one shard's use over an interval. Utilisation is the
// largest of the write-bytes, write-records and read-bytes demand over
// its limit, where write demand counts throttled records too (what was
// offered, not only what was taken).
type ShardLoad struct {
	ShardID               string  `json:"shard"`
	IncomingBytesPerSec   float64 `json:"incoming_bytes_per_sec"`
	IncomingRecordsPerSec float64 `json:"incoming_records_per_sec"`
	OutgoingBytesPerSec   float64 `json:"outgoing_bytes_per_sec"`
	WriteThrottledPerSec  float64 `json:"write_throttled_per_sec"`
	ReadThrottledPerSec   float64 `json:"read_throttled_per_sec"`
	Utilisation           float64 `json:"utilisation"`
}

// Loads turns two snapshots of the same open shards into per-shard loads.
// It returns false when the shards differ (a reshard happened between
// them) or no time passed: then there is nothing to compare.
func Loads(prev, cur Snapshot, lim Limits) ([]ShardLoad, bool) {
	dt := cur.At.Sub(prev.At).Seconds()
	if dt <= 0 || len(prev.Shards) != len(cur.Shards) {
		return nil, false
	}
	out := make([]ShardLoad, len(cur.Shards))
	for i, c := range cur.Shards {
		p := prev.Shards[i]
		if p.ShardID != c.ShardID {
			return nil, false
		}
		rate := func(a, b uint64) float64 {
			if b < a {
				return 0 // a counter restarted
			}
			return float64(b-a) / dt
		}
		l := ShardLoad{
			ShardID:               c.ShardID,
			IncomingBytesPerSec:   rate(p.IncomingBytes, c.IncomingBytes),
			IncomingRecordsPerSec: rate(p.IncomingRecords, c.IncomingRecords),
			OutgoingBytesPerSec:   rate(p.OutgoingBytes, c.OutgoingBytes),
			WriteThrottledPerSec:  rate(p.WriteThrottled, c.WriteThrottled),
			ReadThrottledPerSec:   rate(p.ReadThrottled, c.ReadThrottled),
		}
		// A refused record is usually sent again, and each attempt counts
		// (as in CloudWatch), so throttles overstate demand: count at most
		// as many as were taken.
		recDemand := l.IncomingRecordsPerSec + min(l.WriteThrottledPerSec, l.IncomingRecordsPerSec)
		byteDemand := l.IncomingBytesPerSec
		if l.IncomingRecordsPerSec > 0 { // throttled records, at the average size of the stored ones
			byteDemand *= recDemand / l.IncomingRecordsPerSec
		}
		l.Utilisation = max(ratio(byteDemand, lim.WriteBytesPerSec), ratio(recDemand, lim.WriteRecordsPerSec),
			ratio(l.OutgoingBytesPerSec, lim.ReadBytesPerSec))
		out[i] = l
	}
	return out, true
}

func ratio(v, limit float64) float64 {
	if limit <= 0 {
		return 0
	}
	return v / limit
}

// Actions of a Decision.
const (
	ActionNone             = "none"               // nothing to do
	ActionHold             = "hold"               // something to do, but a rule forbids it now (Reason says which)
	ActionUpdateShardCount = "update_shard_count" // UpdateShardCount (UNIFORM_SCALING) to To shards
	ActionSplitShard       = "split_shard"        // SplitShard of Shard at SplitAt
)

// Decision is what the autoscaler decided at one measurement, and why.
type Decision struct {
	Time    time.Time `json:"time"`
	Action  string    `json:"action"`
	From    int       `json:"from_shards"`
	To      int       `json:"to_shards"`
	Shard   string    `json:"shard,omitempty"`    // split_shard: the shard split
	SplitAt string    `json:"split_at,omitempty"` // split_shard: the new starting hash key
	Reason  string    `json:"reason"`
	Error   string    `json:"error,omitempty"` // the call failed
}

// planner holds what the decision rules remember between measurements.
type planner struct {
	cfg        Config
	lastAction time.Time   // the last reshard attempted
	updates    []time.Time // successful UpdateShardCount calls within the last 24 h
	lowSince   time.Time   // since when fewer shards would do (zero: not low)
	over       int         // consecutive measurements that asked for more shards
	// lastSplit is the last hot shard split (pending until the call
	// succeeded): its range and utilisation then.
	lastSplit, pendingSplit hotSplit
}

// hotSplit is a shard split for being hot.
type hotSplit struct {
	start, end  *big.Int
	utilisation float64
}

// stillHot reports whether sh, hot at utilisation u, is a child of the
// last hot split that kept most (80% or more) of its parent's load: then
// the heat is one partition key (or a range too narrow to matter), which
// no split spreads.
func (p *planner) stillHot(sh ShardCounters, u float64) bool {
	if p.lastSplit.start == nil {
		return false
	}
	s, ok1 := new(big.Int).SetString(sh.StartingHashKey, 10)
	e, ok2 := new(big.Int).SetString(sh.EndingHashKey, 10)
	return ok1 && ok2 && s.Cmp(p.lastSplit.start) >= 0 && e.Cmp(p.lastSplit.end) <= 0 && u >= 0.8*p.lastSplit.utilisation
}

// scaleUpAfter is how many consecutive measurements must ask for more
// shards before the stream is scaled up: one interval's burst (a fleet
// connecting at once, a backlog being flushed) is not a load.
const scaleUpAfter = 2

// decide applies the rules to one interval's loads (shards carries their
// hash key ranges, in the same order) and the slowest consumer's lag.
func (p *planner) decide(now time.Time, ls []ShardLoad, shards []ShardCounters, lag, maxLag time.Duration) Decision {
	n := len(ls)
	d := Decision{Time: now, Action: ActionNone, From: n, To: n}
	total, hot, throttled := 0.0, 0, false
	for i, l := range ls {
		total += l.Utilisation
		if l.Utilisation > ls[hot].Utilisation {
			hot = i
		}
		throttled = throttled || l.WriteThrottledPerSec > 0
	}
	cfg := p.cfg
	over := p.over
	p.over = 0 // set again below while the load asks for more
	need := max(1, int(math.Ceil(total/cfg.TargetUtilisation-1e-9)))
	desired := min(max(need, cfg.MinShards), cfg.MaxShards)
	p.pruneUpdates(now)
	switch {
	case n < cfg.MinShards:
		return p.update(d, now, min(cfg.MinShards, 2*n), fmt.Sprintf("%d open shards, below stream.autoscale.min_shards %d", n, cfg.MinShards))
	case n > cfg.MaxShards:
		return p.update(d, now, max(cfg.MaxShards, (n+1)/2), fmt.Sprintf("%d open shards, above stream.autoscale.max_shards %d", n, cfg.MaxShards))
	case desired > n || ls[hot].Utilisation > 1 && n < cfg.MaxShards:
		p.lowSince = time.Time{}
		if p.over = over + 1; p.over < scaleUpAfter {
			d.Reason = fmt.Sprintf("load of %.2f shards' worth needs %d shards; acting if the next measurement agrees", total, desired)
			return d
		}
		return p.scaleUp(d, now, ls, shards, hot, total, desired)
	case n == cfg.MaxShards && ls[hot].Utilisation > 1:
		p.lowSince = time.Time{}
		return p.hold(d, fmt.Sprintf("shard %s at %.0f%% of its limits, but the stream is at stream.autoscale.max_shards %d", ls[hot].ShardID, 100*ls[hot].Utilisation, n))
	}
	downTo := max(cfg.MinShards, int(math.Ceil(total/(cfg.TargetUtilisation*scaleDownHeadroom)-1e-9)), (n+1)/2)
	if downTo >= n || throttled {
		p.lowSince = time.Time{}
		return d
	}
	if p.lowSince.IsZero() {
		p.lowSince = now
	}
	if low := now.Sub(p.lowSince); low < cfg.ScaleDownDelay {
		d.Reason = fmt.Sprintf("%d shards would do for %.2f shards' worth of load; low for %v of stream.autoscale.scale_down_delay %v", downTo, total, low.Round(time.Second), cfg.ScaleDownDelay)
		return d
	}
	if lag > maxLag {
		return p.hold(d, fmt.Sprintf("would scale down to %d shards, but a consumer is %v behind (more than %v): scaling down while it catches up would only slow it", downTo, lag.Round(time.Millisecond), maxLag))
	}
	return p.update(d, now, downTo, fmt.Sprintf("load of %.2f shards' worth (%.0f%% of %d shards) for longer than stream.autoscale.scale_down_delay %v: %d shards keep it under %.0f%% of the target",
		total, 100*total/float64(n), n, cfg.ScaleDownDelay, downTo, 100*scaleDownHeadroom))
}

// scaleUp splits a lone hot shard, or scales every shard uniformly.
func (p *planner) scaleUp(d Decision, now time.Time, ls []ShardLoad, shards []ShardCounters, hot int, total float64, desired int) Decision {
	n, cfg, h := len(ls), p.cfg, ls[hot]
	others := 0.0
	if n > 1 {
		others = (total - h.Utilisation) / float64(n-1)
	}
	if n > 1 && h.Utilisation > cfg.TargetUtilisation && h.Utilisation >= 2*others && desired <= n+1 {
		if p.stillHot(shards[hot], h.Utilisation) {
			return p.hold(d, fmt.Sprintf("shard %s at %.0f%% of its limits kept most of its parent's load after the split: one partition key (or a very narrow key range) is hot, "+
				"and no split spreads one key (Kinesis limits a key to one shard's throughput); send less per device or spread its partition keys", h.ShardID, 100*h.Utilisation))
		}
		at, ok := midpoint(shards[hot].StartingHashKey, shards[hot].EndingHashKey)
		if ok {
			if hold, why := p.cooling(now); hold {
				return p.hold(d, why)
			}
			ps, _ := new(big.Int).SetString(shards[hot].StartingHashKey, 10)
			pe, _ := new(big.Int).SetString(shards[hot].EndingHashKey, 10)
			p.pendingSplit = hotSplit{ps, pe, h.Utilisation}
			d.Action, d.To, d.Shard, d.SplitAt = ActionSplitShard, n+1, h.ShardID, at
			d.Reason = fmt.Sprintf("shard %s at %.0f%% of its limits while the others average %.0f%%: one hash key range is hot, so it alone is split (at the middle of its range)",
				h.ShardID, 100*h.Utilisation, 100*others)
			return d
		}
	}
	to := min(max(desired, n+1), 2*n, cfg.MaxShards)
	why := fmt.Sprintf("load of %.2f shards' worth (hottest %s at %.0f%%) needs %d shards at stream.autoscale.target_utilisation %.2f",
		total, h.ShardID, 100*h.Utilisation, desired, cfg.TargetUtilisation)
	if desired > 2*n {
		why += fmt.Sprintf("; UpdateShardCount at most doubles, so %d now", to)
	}
	return p.update(d, now, to, why)
}

// update is an UpdateShardCount to to shards, unless the cooldown or the
// daily limit forbid it now.
func (p *planner) update(d Decision, now time.Time, to int, why string) Decision {
	if hold, reason := p.cooling(now); hold {
		return p.hold(d, fmt.Sprintf("%s; %s", why, reason))
	}
	if len(p.updates) >= MaxUpdatesPerDay {
		return p.hold(d, fmt.Sprintf("%s; but Kinesis allows %d UpdateShardCount calls per rolling 24 h and they are used up until %s",
			why, MaxUpdatesPerDay, p.updates[0].Add(updateWindow).UTC().Format(time.RFC3339)))
	}
	d.Action, d.To, d.Reason = ActionUpdateShardCount, to, why
	return d
}

func (p *planner) cooling(now time.Time) (bool, string) {
	if !p.lastAction.IsZero() && now.Sub(p.lastAction) < p.cfg.Cooldown {
		return true, fmt.Sprintf("waiting for stream.autoscale.cooldown %v after the last reshard, until %s", p.cfg.Cooldown, p.lastAction.Add(p.cfg.Cooldown).UTC().Format(time.RFC3339))
	}
	return false, ""
}

func (p *planner) hold(d Decision, why string) Decision {
	d.Action, d.Reason = ActionHold, why
	return d
}

// acted records a reshard attempted at now (ok: it succeeded).
func (p *planner) acted(now time.Time, d Decision, ok bool) {
	p.lastAction = now
	p.lowSince = time.Time{}
	p.over = 0
	switch {
	case ok && d.Action == ActionUpdateShardCount:
		p.updates = append(p.updates, now)
		p.lastSplit = hotSplit{} // a new layout
	case ok && d.Action == ActionSplitShard:
		p.lastSplit = p.pendingSplit
	}
}

func (p *planner) pruneUpdates(now time.Time) {
	i := 0
	for i < len(p.updates) && now.Sub(p.updates[i]) >= updateWindow {
		i++
	}
	p.updates = p.updates[i:]
}

// midpoint is the starting hash key of the upper half of [start, end]
// (decimal strings), if the range holds two keys or more.
func midpoint(start, end string) (string, bool) {
	s, ok1 := new(big.Int).SetString(start, 10)
	e, ok2 := new(big.Int).SetString(end, 10)
	if !ok1 || !ok2 || e.Cmp(s) <= 0 {
		return "", false
	}
	w := new(big.Int).Sub(e, s)
	w.Add(w, big.NewInt(1)).Rsh(w, 1)
	return w.Add(w, s).String(), true
}
