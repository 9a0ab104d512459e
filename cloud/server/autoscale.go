package server

import (
	"time"

	"github.com/tributary-iot/tributary/cloud/autoscale"
	"github.com/tributary-iot/tributary/cloud/kinesisapi"
)

// openAutoscaler builds the autoscaler of stream.autoscale (nil when it is
// off) and serves its status on the admin listener. On the embedded store
// it measures the store itself and reshards through the Kinesis API in
// process; on Kinesis it measures what the writes saw and reshards with
// the backend's client. It watches the monitor consumer's lag.
func (s *Server) openAutoscaler(api *kinesisapi.Server) error {
	cfg := s.cfg
	if !cfg.Stream.Autoscale.Enabled {
		return nil
	}
	opts := autoscale.Options{Stream: cfg.Stream.Name, Backend: cfg.Stream.Backend, Logger: s.log}
	switch {
	case s.store != nil:
		opts.Source = autoscale.StoreSource{Store: s.store, Stream: cfg.Stream.Name}
		opts.Resharder = autoscale.KinesisResharder{Client: inProcessClient(api, cfg.KinesisAPI.Region, cfg.KinesisAPI.Credentials), Stream: cfg.Stream.Name}
		t := s.throughput
		opts.Limits = autoscale.Limits{WriteBytesPerSec: float64(t.WriteBytesPerSec), WriteRecordsPerSec: float64(t.WriteRecordsPerSec), ReadBytesPerSec: float64(t.ReadBytesPerSec)}
	case s.kinesis != nil:
		opts.Source = autoscale.BackendSource{Backend: s.kinesis, Stream: cfg.Stream.Name}
		opts.Resharder = autoscale.KinesisResharder{Client: s.kinesis.Client(), Stream: cfg.Stream.Name}
	}
	if s.pipe != nil {
		opts.Lag = s.pipe.lag
	}
	sc, err := autoscale.New(cfg.Stream.Autoscale, opts)
	if err != nil {
		return err
	}
	s.scaler = sc
	s.Handle(autoscale.Path, sc.Handler())
	return nil
}

// lag is how far behind the monitor consumer is: the largest
// MillisBehindLatest of the shards it reads.
func (p *pipeline) lag() time.Duration {
	var ms int64
	for _, sh := range p.consumer.Stats().Shards {
		ms = max(ms, sh.MillisBehindLatest)
	}
	return time.Duration(ms) * time.Millisecond
}
