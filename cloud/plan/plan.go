package plan

import (
	"fmt"
	"math"
	"time"
)

// Kinesis's per-shard limits (provisioned mode; an on-demand stream's
// shards have the same ones).
const (
	ShardWriteBytes   = 1 << 20 // 1 MiB/s in
	ShardWriteRecords = 1000    // records/s in
	ShardReadBytes    = 2 << 20 // 2 MiB/s out, shared by every consumer (per consumer with enhanced fan-out)
	ShardReadCalls    = 5       // GetRecords calls/s, shared by every consumer
)

// Kafka sizing rules.
const (
	ReplicationFactor = 3     // MSK provisioned across 3 AZs
	MinBrokers        = 3     // one per AZ; the count stays a multiple of 3
	MaxBrokerStorage  = 16384 // GB: MSK's largest EBS volume per broker (16 TiB)
)

const (
	extendedRetentionFrom = 24 * time.Hour     // Kinesis's included retention
	longTermRetentionFrom = 7 * 24 * time.Hour // extended retention's end
)

// Constraint is one per-shard limit and how many shards the load needs
// under it.
type Constraint struct {
	Name     string  `json:"name"`      // write_bytes, write_records, read_bytes, read_calls
	Load     float64 `json:"load"`      // per second, headroom included
	PerShard float64 `json:"per_shard"` // the limit, per second
	Unit     string  `json:"unit"`
	Shards   int     `json:"shards"` // 0: shards cannot satisfy it (see Note)
	Note     string  `json:"note,omitempty"`
}

// Capacity is the provisioned stream a fleet needs.
type Capacity struct {
	Headroom          float64      `json:"headroom"`
	Shards            int          `json:"shards"`
	Binding           string       `json:"binding"` // the constraint that sets Shards
	Constraints       []Constraint `json:"constraints"`
	PutUnitsPerMonth  float64      `json:"put_payload_units_per_month"`
	RecordsPerMonth   float64      `json:"records_per_month"`
	IngestGBPerMonth  float64      `json:"ingest_gb_per_month"`
	RetainedGB        float64      `json:"retained_gb"` // one copy of the retention window
	RetentionHours    float64      `json:"retention_hours"`
	ReadCallsPerShard float64      `json:"read_calls_per_shard"`
}

// Line is one item of a monthly bill.
type Line struct {
	Item     string  `json:"item"`
	Quantity float64 `json:"quantity"`
	Unit     string  `json:"unit"`
	UnitUSD  float64 `json:"unit_usd"`
	USD      float64 `json:"usd"`
}

// Estimate is the monthly bill of one engine.
type Estimate struct {
	Engine     string   `json:"engine"`
	Sizing     string   `json:"sizing"`
	Lines      []Line   `json:"lines"`
	MonthlyUSD float64  `json:"monthly_usd"`
	Notes      []string `json:"notes,omitempty"`
}

func (e *Estimate) line(item string, qty float64, unit string, p Price) {
	usd := qty * p.USD
	e.Lines = append(e.Lines, Line{Item: item, Quantity: qty, Unit: unit, UnitUSD: p.USD, USD: usd})
	e.MonthlyUSD += usd
}

// PriceInfo says which price file a plan used.
type PriceInfo struct {
	File          string  `json:"file"`
	Region        string  `json:"region"`
	AsOf          string  `json:"as_of"`
	HoursPerMonth float64 `json:"hours_per_month"`
}

// Plan is the answer: capacity and a monthly bill per engine.
type Plan struct {
	Fleet     *Fleet     `json:"fleet"`
	Traffic   Traffic    `json:"traffic"`
	Capacity  Capacity   `json:"capacity"`
	Estimates []Estimate `json:"estimates"`
	Prices    PriceInfo  `json:"prices"`
}

// Compute sizes and prices traffic t for fleet f's consumers, retention
// and headroom (f valid, defaults set) with prices p.
func Compute(f *Fleet, t Traffic, p *Prices) *Plan {
	pl := &Plan{Fleet: f, Traffic: t, Prices: PriceInfo{File: p.File, Region: p.Region, AsOf: p.AsOf, HoursPerMonth: p.HoursPerMonth}}
	pl.Capacity = capacity(f, t, p.HoursPerMonth)
	pl.Estimates = []Estimate{
		kinesisProvisioned(f, t, &pl.Capacity, p),
		kinesisOnDemand(f, t, &pl.Capacity, p),
		mskProvisioned(f, t, p),
		mskServerless(f, t, &pl.Capacity, p),
	}
	return pl
}

func shardsFor(load, perShard float64) int {
	return max(1, int(math.Ceil(load/perShard-1e-9)))
}

func capacity(f *Fleet, t Traffic, hours float64) Capacity {
	h := *f.Headroom
	k := 1 + h
	c := Capacity{Headroom: h, RetentionHours: f.Retention.Hours()}
	add := func(name string, load, per float64, unit, note string) {
		c.Constraints = append(c.Constraints, Constraint{Name: name, Load: load, PerShard: per, Unit: unit, Shards: shardsFor(load, per), Note: note})
	}
	add("write_bytes", t.BytesPerSec*k, ShardWriteBytes, "bytes/s", "")
	add("write_records", t.RecordsPerSec*k, ShardWriteRecords, "records/s", "")
	if f.EnhancedFanOut {
		add("read_bytes", t.BytesPerSec*k, ShardReadBytes, "bytes/s",
			fmt.Sprintf("enhanced fan-out: each of %s has its own 2 MiB/s per shard", consumers(f.Consumers)))
	} else {
		add("read_bytes", t.BytesPerSec*k*float64(f.Consumers), ShardReadBytes, "bytes/s",
			fmt.Sprintf("2 MiB/s per shard shared by %s", consumers(f.Consumers)))
	}
	c.ReadCallsPerShard = float64(f.Consumers) / f.PollInterval.Seconds()
	rc := Constraint{Name: "read_calls", Load: c.ReadCallsPerShard, PerShard: ShardReadCalls, Unit: "calls/s per shard", Shards: 1}
	switch {
	case f.EnhancedFanOut:
		rc.Load, rc.Note = 0, "enhanced fan-out pushes records (SubscribeToShard): no GetRecords calls"
	case c.ReadCallsPerShard > ShardReadCalls:
		rc.Shards = 0
		rc.Note = fmt.Sprintf("%s polling every %v make %.3g GetRecords calls/s on every shard, over the 5/s limit, whatever the shard count: poll every %v or more, or use enhanced fan-out",
			consumers(f.Consumers), f.PollInterval, c.ReadCallsPerShard, time.Duration(float64(f.Consumers)*float64(time.Second)/ShardReadCalls))
	default:
		rc.Note = fmt.Sprintf("%s polling every %v; calls per shard do not grow with the fleet", consumers(f.Consumers), f.PollInterval)
	}
	c.Constraints = append(c.Constraints, rc)
	for _, x := range c.Constraints {
		if x.Shards > c.Shards {
			c.Shards, c.Binding = x.Shards, x.Name
		}
	}
	sec := hours * 3600
	c.PutUnitsPerMonth = t.PutUnitsPerSec * sec
	c.RecordsPerMonth = t.RecordsPerSec * sec
	c.IngestGBPerMonth = t.BytesPerSec * sec / GB
	c.RetainedGB = t.BytesPerSec * f.Retention.Seconds() / GB
	return c
}

// retainedBeyond is the GB kept, at steady state, between from and to of
// the retention window (to capped at the retention).
func retainedBeyond(bytesPerSec float64, retention, from, to time.Duration) float64 {
	end := min(retention, to)
	if end <= from {
		return 0
	}
	return bytesPerSec * (end - from).Seconds() / GB
}

func kinesisProvisioned(f *Fleet, t Traffic, c *Capacity, p *Prices) Estimate {
	kp := &p.Kinesis.Provisioned
	hours := p.HoursPerMonth
	e := Estimate{Engine: "Kinesis provisioned", Sizing: fmt.Sprintf("%s (bound by %s)", plural(c.Shards, "shard"), c.Binding)}
	e.line("shard-hours", float64(c.Shards)*hours, "shard-hour", kp.ShardHour)
	e.line("PUT payload units", c.PutUnitsPerMonth/1e6, "million units", kp.PutPayloadUnitsPerMillion)
	if f.Retention > extendedRetentionFrom {
		e.line("extended retention (to 7 days)", float64(c.Shards)*hours, "shard-hour", kp.ExtendedRetentionShardHour)
	}
	if gb := retainedBeyond(t.BytesPerSec, f.Retention, longTermRetentionFrom, math.MaxInt64); gb > 0 {
		e.line("long-term retention (beyond 7 days)", gb, "GB-month", kp.LongTermRetentionGBMonth)
	}
	if f.EnhancedFanOut {
		e.line("enhanced fan-out consumer-shard-hours", float64(f.Consumers*c.Shards)*hours, "consumer-shard-hour", kp.EFOConsumerShardHour)
		e.line("enhanced fan-out data retrieved", float64(f.Consumers)*c.IngestGBPerMonth, "GB", kp.EFODataOutGB)
	} else {
		e.Notes = append(e.Notes, "GetRecords reads are included in the shard-hours")
	}
	if c.Shards > 500 {
		e.Notes = append(e.Notes, "more than 500 shards: above the default shard quota of the largest regions (ask AWS for more)")
	}
	return e
}

func kinesisOnDemand(f *Fleet, t Traffic, c *Capacity, p *Prices) Estimate {
	od := &p.Kinesis.OnDemand
	hours := p.HoursPerMonth
	e := Estimate{Engine: "Kinesis on-demand", Sizing: "1 stream, capacity follows the traffic"}
	e.line("stream-hours", hours, "stream-hour", od.StreamHour)
	billedIn := t.BilledInBytesPerSec * hours * 3600 / GB
	e.line("data in (records rounded up to 1 KB)", billedIn, "GB", od.DataInGB)
	out := od.DataOutGB
	if f.EnhancedFanOut {
		out = od.EFODataOutGB
	}
	e.line("data out", float64(f.Consumers)*c.IngestGBPerMonth, "GB", out)
	// Retention is metered on the data as billed in (rounded records).
	if gb := retainedBeyond(t.BilledInBytesPerSec, f.Retention, extendedRetentionFrom, longTermRetentionFrom); gb > 0 {
		e.line("extended retention (24 h to 7 days)", gb, "GB-month", od.ExtendedRetentionGBMonth)
	}
	if gb := retainedBeyond(t.BilledInBytesPerSec, f.Retention, longTermRetentionFrom, math.MaxInt64); gb > 0 {
		e.line("long-term retention (beyond 7 days)", gb, "GB-month", od.LongTermRetentionGBMonth)
	}
	if t.BytesPerRecord > 0 && t.BytesPerRecord < OnDemandUnitBytes/2 {
		e.Notes = append(e.Notes, fmt.Sprintf("records average %.0f bytes but each is billed as at least 1 KB: a longer batch_age puts more readings in a record", t.BytesPerRecord))
	}
	if w := t.BytesPerSec * (1 + c.Headroom); w > 4*MiB || t.RecordsPerSec*(1+c.Headroom) > 4000 {
		e.Notes = append(e.Notes, "a new on-demand stream takes 4 MiB/s or 4,000 records/s and doubles with its peak: ramp the fleet up or pre-scale")
	}
	if t.BytesPerSec > 200*MiB {
		e.Notes = append(e.Notes, "over 200 MiB/s: above the default on-demand write quota of a stream")
	}
	return e
}

func mskProvisioned(f *Fleet, t Traffic, p *Prices) Estimate {
	mp := &p.MSK.Provisioned
	k := 1 + *f.Headroom
	ingress := t.BytesPerSec * k / MiB
	egress := ingress * float64(f.Consumers+ReplicationFactor-1)
	brokers := max(MinBrokers,
		int(math.Ceil(ingress/mp.BrokerIngressMiBs.Value-1e-9)),
		int(math.Ceil(egress/mp.BrokerEgressMiBs.Value-1e-9)))
	// Storage is provisioned per broker ahead of time: the retention
	// window, replicated, with headroom, at least 1 GB a broker and at
	// most MaxBrokerStorage (more brokers beyond).
	storage := t.BytesPerSec * f.Retention.Seconds() * ReplicationFactor * k / GB
	brokers = max(brokers, int(math.Ceil(storage/MaxBrokerStorage-1e-9)))
	brokers = (brokers + MinBrokers - 1) / MinBrokers * MinBrokers
	perBroker := math.Max(1, math.Ceil(storage/float64(brokers)-1e-9))
	e := Estimate{Engine: "MSK provisioned", Sizing: fmt.Sprintf("%d × %s, %s GB storage each (replication 3, 3 AZs)", brokers, mp.BrokerType, num(perBroker))}
	e.line("broker-hours ("+mp.BrokerType+")", float64(brokers)*p.HoursPerMonth, "broker-hour", mp.BrokerHour)
	e.line("storage (retention × 3 replicas)", perBroker*float64(brokers), "GB-month", mp.StorageGBMonth)
	e.Notes = append(e.Notes,
		fmt.Sprintf("brokers planned for %.3g MiB/s in and %.3g MiB/s out (consumers plus replica fetches) at %g/%g MiB/s per broker",
			ingress, egress, mp.BrokerIngressMiBs.Value, mp.BrokerEgressMiBs.Value),
		"data transfer (clients in other AZs or VPCs) is billed by EC2 and not included")
	if f.Retention > 3*24*time.Hour {
		e.Notes = append(e.Notes, "retention over 3 days: MSK tiered storage (not priced here) may hold the older data for less")
	}
	return e
}

func mskServerless(f *Fleet, t Traffic, c *Capacity, p *Prices) Estimate {
	ms := &p.MSK.Serverless
	hours := p.HoursPerMonth
	partitions := f.Partitions
	if partitions == 0 {
		partitions = c.Shards
	}
	partitions = max(partitions, int(math.Ceil(t.BytesPerSec*(1+c.Headroom)/MiB/ms.PartitionIngressMiBs.Value-1e-9)))
	e := Estimate{Engine: "MSK Serverless", Sizing: fmt.Sprintf("1 cluster, %d partitions", partitions)}
	e.line("cluster-hours", hours, "cluster-hour", ms.ClusterHour)
	e.line("partition-hours", float64(partitions)*hours, "partition-hour", ms.PartitionHour)
	e.line("data in", c.IngestGBPerMonth, "GB", ms.DataInGB)
	e.line("data out", float64(f.Consumers)*c.IngestGBPerMonth, "GB", ms.DataOutGB)
	e.line("storage (retention)", c.RetainedGB, "GB-month", ms.StorageGBMonth)
	if t.BytesPerSec > 200*MiB {
		e.Notes = append(e.Notes, "over 200 MiB/s: above an MSK Serverless cluster's write quota")
	}
	return e
}

func consumers(n int) string { return plural(n, "consumer") }

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}
