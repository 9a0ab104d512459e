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

const metricHelpCloudWatchNote = " (CloudWatch: "

var (
	shardLabels       = []string{"stream", "shard"}
	descIncomingBytes = prometheus.NewDesc(MetricIncomingBytes,
		"Bytes (partition key + data) stored in the shard"+metricHelpCloudWatchNote+"IncomingBytes).", shardLabels, nil)
	descIncomingRecords = prometheus.NewDesc(MetricIncomingRecords,
		"Records stored in the shard"+metricHelpCloudWatchNote+"IncomingRecords).", shardLabels, nil)
	descWriteExceeded = prometheus.NewDesc(MetricWriteExceeded,
		"Records refused for the shard's write limits"+metricHelpCloudWatchNote+"WriteProvisionedThroughputExceeded).", shardLabels, nil)
	descReadExceeded = prometheus.NewDesc(MetricReadExceeded,
		"Reads refused for the shard's read limits"+metricHelpCloudWatchNote+"ReadProvisionedThroughputExceeded).", shardLabels, nil)
	descOutgoingBytes = prometheus.NewDesc(MetricOutgoingBytes,
		"Bytes returned by reads of the shard"+metricHelpCloudWatchNote+"OutgoingBytes).", shardLabels, nil)
	descOutgoingRecords = prometheus.NewDesc(MetricOutgoingRecords,
		"Records returned by reads of the shard"+metricHelpCloudWatchNote+"OutgoingRecords).", shardLabels, nil)
	descGetRecords = prometheus.NewDesc(MetricGetRecords,
		"Successful reads of the shard"+metricHelpCloudWatchNote+"GetRecords.Success).", shardLabels, nil)
	descIteratorAge = prometheus.NewDesc(MetricIteratorAge,
		"Age of the last record the shard's latest read returned, 0 when caught up"+metricHelpCloudWatchNote+"GetRecords.IteratorAgeMilliseconds).", shardLabels, nil)
	descOpenShards = prometheus.NewDesc(MetricOpenShards, "Open shards of the stream (CloudWatch: OpenShardCount).", []string{"stream"}, nil)
)

// Collector returns a Prometheus collector of every stream's per-shard
// metrics (see ShardMetrics), for the server's /metrics.
func (s *Store) Collector() prometheus.Collector { return storeCollector{s} }

type storeCollector struct{ s *Store }

func (c storeCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descIncomingBytes, descIncomingRecords, descWriteExceeded, descReadExceeded,
		descOutgoingBytes, descOutgoingRecords, descGetRecords, descIteratorAge, descOpenShards} {
		ch <- d
	}
}

func (c storeCollector) Collect(ch chan<- prometheus.Metric) {
	for _, name := range c.s.ListStreams() {
		ms, err := c.s.ShardMetrics(name)
		if err != nil {
			continue // deleted meanwhile
		}
		open := 0
		for _, m := range ms {
			if m.Open {
				open++
			}
			counter := func(d *prometheus.Desc, v uint64) {
				ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), name, m.ShardID)
			}
			counter(descIncomingBytes, m.IncomingBytes)
			counter(descIncomingRecords, m.IncomingRecords)
			counter(descWriteExceeded, m.WriteProvisionedThroughputExceeded)
			counter(descReadExceeded, m.ReadProvisionedThroughputExceeded)
			counter(descOutgoingBytes, m.OutgoingBytes)
			counter(descOutgoingRecords, m.OutgoingRecords)
			counter(descGetRecords, m.GetRecords)
			ch <- prometheus.MustNewConstMetric(descIteratorAge, prometheus.GaugeValue, float64(m.IteratorAgeMilliseconds), name, m.ShardID)
		}
		ch <- prometheus.MustNewConstMetric(descOpenShards, prometheus.GaugeValue, float64(open), name)
	}
}
