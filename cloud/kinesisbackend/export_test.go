package kinesisbackend

import (
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// RouteForTest is the shard Put predicts for key ("" when unmapped).
func (b *Backend) RouteForTest(stream, key string) string {
	st := b.stream(stream)
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.route(hashPartitionKey(key)).id
}

// Counts are the Backend's counters.
type Counts struct{ Written, Failed, Retries, Throttles float64 }

func (b *Backend) CountsForTest() Counts {
	v := func(c prometheus.Counter) float64 {
		var m dto.Metric
		if err := c.Write(&m); err != nil {
			panic(err)
		}
		return m.GetCounter().GetValue()
	}
	return Counts{v(b.m.written), v(b.m.failed), v(b.m.retries), v(b.m.throttles)}
}
