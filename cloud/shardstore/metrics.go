package shardstore

import (
	"github.com/prometheus/client_golang/prometheus"
)

// ShardMetrics are one shard's totals since the store opened, named after
// the shard-level metrics of Amazon CloudWatch for Kinesis (a counter
// here is CloudWatch's Sum over all time; take differences for a rate).
// Counters live in memory: a restart starts them at zero.
type ShardMetrics struct {
	ShardID         string
	Open            bool
	StartingHashKey HashKey
	EndingHashKey   HashKey
	// IncomingBytes (partition key + data) and IncomingRecords stored.
	IncomingBytes   uint64
	IncomingRecords uint64
	// WriteProvisionedThroughputExceeded counts entries refused for the
	// write limits; ReadProvisionedThroughputExceeded, reads refused.
	WriteProvisionedThroughputExceeded uint64
	ReadProvisionedThroughputExceeded  uint64
	// OutgoingBytes and OutgoingRecords returned by Read; GetRecords the
	// successful Read calls.
	OutgoingBytes   uint64
	OutgoingRecords uint64
	GetRecords      uint64
	// IteratorAgeMilliseconds is GetRecords.IteratorAgeMilliseconds of the
	// latest Read: the age of the last record it returned (0 when it
	// returned none: caught up).
	IteratorAgeMilliseconds int64
}

// ShardMetrics returns the metrics of every shard of stream within
// retention (open and closed), by shard index.
func (s *Store) ShardMetrics(stream string) ([]ShardMetrics, error) {
	in, err := s.DescribeStream(stream)
	if err != nil {
		return nil, err
	}
	out := make([]ShardMetrics, 0, len(in.Shards))
	for _, sh := range in.Shards {
		idx, _ := ParseShardID(sh.ShardID)
		m := ShardMetrics{ShardID: sh.ShardID, Open: sh.Open(), StartingHashKey: sh.StartingHashKey, EndingHashKey: sh.EndingHashKey}
		s.rtMu.Lock()
		rt := s.rt[rtKey{in.ID, idx}]
		s.rtMu.Unlock()
		if rt != nil {
			c := &rt.c
			m.IncomingBytes, m.IncomingRecords = c.inBytes.Load(), c.inRecords.Load()
			m.WriteProvisionedThroughputExceeded = c.writeExceeded.Load()
			m.ReadProvisionedThroughputExceeded = c.readExceeded.Load()
			m.OutgoingBytes, m.OutgoingRecords, m.GetRecords = c.outBytes.Load(), c.outRecords.Load(), c.reads.Load()
			m.IteratorAgeMilliseconds = c.iteratorAgeMs.Load()
		}
		out = append(out, m)
	}
	return out, nil
}

// countStored adds a committed batch's stored entries to their shards'
// counters.
func countStored(batch []*putReq) {
	for _, r := range batch {
		if r.state.Load() != stTaken || r.err != nil {
			continue
		}
		for i, rt := range r.rts {
			if rt != nil && r.pos[i] != 0 {
				rt.c.inRecords.Add(1)
				rt.c.inBytes.Add(uint64(r.sizes[i]))
			}
		}
	}
}

// Prometheus names of the per-shard metrics (labels stream and shard),
// after CloudWatch's.
const (
	MetricIncomingBytes   = "tributary_stream_shard_incoming_bytes_total"
	MetricIncomingRecords = "tributary_stream_shard_incoming_records_total"
	MetricWriteExceeded   = "tributary_stream_shard_write_provisioned_throughput_exceeded_total"
	MetricReadExceeded    = "tributary_stream_shard_read_provisioned_throughput_exceeded_total"
	MetricOutgoingBytes   = "tributary_stream_shard_outgoing_bytes_total"
	MetricOutgoingRecords = "tributary_stream_shard_outgoing_records_total"
	MetricGetRecords      = "tributary_stream_shard_get_records_total"
	MetricIteratorAge     = "tributary_stream_shard_iterator_age_milliseconds"
	MetricOpenShards      = "tributary_stream_open_shards"
)

// shardSeries are the per-shard series: name, CloudWatch's name, help,
// and the value.
var shardSeries = []struct {
	desc  *prometheus.Desc
	typ   prometheus.ValueType
	value func(*ShardMetrics) float64
}{
	{shardDesc(MetricIncomingBytes, "Bytes (partition key + data) stored in the shard", "IncomingBytes"), prometheus.CounterValue,
		func(m *ShardMetrics) float64 { return float64(m.IncomingBytes) }},
	{shardDesc(MetricIncomingRecords, "Records stored in the shard", "IncomingRecords"), prometheus.CounterValue,
		func(m *ShardMetrics) float64 { return float64(m.IncomingRecords) }},
	{shardDesc(MetricWriteExceeded, "Records refused for the shard's write limits", "WriteProvisionedThroughputExceeded"), prometheus.CounterValue,
		func(m *ShardMetrics) float64 { return float64(m.WriteProvisionedThroughputExceeded) }},
	{shardDesc(MetricReadExceeded, "Reads refused for the shard's read limits", "ReadProvisionedThroughputExceeded"), prometheus.CounterValue,
		func(m *ShardMetrics) float64 { return float64(m.ReadProvisionedThroughputExceeded) }},
	{shardDesc(MetricOutgoingBytes, "Bytes returned by reads of the shard", "OutgoingBytes"), prometheus.CounterValue,
		func(m *ShardMetrics) float64 { return float64(m.OutgoingBytes) }},
	{shardDesc(MetricOutgoingRecords, "Records returned by reads of the shard", "OutgoingRecords"), prometheus.CounterValue,
		func(m *ShardMetrics) float64 { return float64(m.OutgoingRecords) }},
	{shardDesc(MetricGetRecords, "Successful reads of the shard", "GetRecords.Success"), prometheus.CounterValue,
		func(m *ShardMetrics) float64 { return float64(m.GetRecords) }},
	{shardDesc(MetricIteratorAge, "Age of the last record the shard's latest read returned, 0 when caught up", "GetRecords.IteratorAgeMilliseconds"), prometheus.GaugeValue,
		func(m *ShardMetrics) float64 { return float64(m.IteratorAgeMilliseconds) }},
}

func shardDesc(name, help, cloudWatch string) *prometheus.Desc {
	return prometheus.NewDesc(name, help+" (CloudWatch: "+cloudWatch+").", []string{"stream", "shard"}, nil)
}

var descOpenShards = prometheus.NewDesc(MetricOpenShards, "Open shards of the stream (CloudWatch: OpenShardCount).", []string{"stream"}, nil)

// Collector returns a Prometheus collector of every stream's per-shard
// metrics (see ShardMetrics), for the server's /metrics.
func (s *Store) Collector() prometheus.Collector { return storeCollector{s} }

type storeCollector struct{ s *Store }

func (c storeCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, sr := range shardSeries {
		ch <- sr.desc
	}
	ch <- descOpenShards
}

func (c storeCollector) Collect(ch chan<- prometheus.Metric) {
	for _, name := range c.s.ListStreams() {
		ms, err := c.s.ShardMetrics(name)
		if err != nil {
			continue // deleted meanwhile
		}
		open := 0
		for i := range ms {
			m := &ms[i]
			if m.Open {
				open++
			}
			for _, sr := range shardSeries {
				ch <- prometheus.MustNewConstMetric(sr.desc, sr.typ, sr.value(m), name, m.ShardID)
			}
		}
		ch <- prometheus.MustNewConstMetric(descOpenShards, prometheus.GaugeValue, float64(open), name)
	}
}
