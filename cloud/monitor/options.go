package monitor

import (
	"context"
	"log/slog"
	"time"
)

// Defaults of Options.
const (
	DefaultOfflineAfter        = 60 * time.Second
	DefaultForgetAfter         = 24 * time.Hour
	DefaultMaxDevices          = 10000
	DefaultMaxGateways         = 1000
	DefaultMaxMetricsPerDevice = 64
	DefaultMaxSeries           = 4096
	DefaultPointsPerSeries     = 600
	DefaultMaxAlerts           = 1000
	DefaultMaxShards           = 1000
	DefaultMaxClients          = 100
	DefaultClientBuffer        = 256
	DefaultHeartbeat           = 15 * time.Second
	DefaultOverviewEvery       = time.Second
	DefaultFutureMargin        = 10 * time.Minute

	// Kinesis's per-shard write limits, used when a Shard leaves its
	// limits zero.
	DefaultShardRecordsPerSec = 1000
	DefaultShardBytesPerSec   = 1 << 20
)

// Options configure a Monitor. Zero values take the defaults above.
type Options struct {
	Logger *slog.Logger     // default slog.Default()
	Now    func() time.Time // default time.Now

	// OfflineAfter: a device or gateway not heard from for this long is
	// offline. Heard from = the stream arrival time of its newest record
	// (the monitor's clock when a record has none).
	OfflineAfter time.Duration
	// ForgetAfter: a device offline this long is dropped from memory,
	// series and all (counted), to make room for new ones.
	ForgetAfter time.Duration

	// Shards lists the stream's shards for /api/v1/stream (nil: only the
	// shards seen in batches are listed, without hash ranges).
	Shards func(ctx context.Context) ([]Shard, error)

	// Bounds. Readings beyond them are dropped and counted (Stats.Dropped).
	MaxDevices          int // devices held (gateways' own health devices included)
	MaxGateways         int
	MaxMetricsPerDevice int
	// MaxSeries bounds the charted series over all devices. A full series
	// holds PointsPerSeries raw points and 2100 rollup buckets, ≈ 95 KB
	// with the default 600 points, so the default bound is ≈ 390 MB when
	// every series is full (after a day of data at 1 Hz or more).
	MaxSeries       int
	PointsPerSeries int // raw points kept per series
	MaxAlerts       int // alerts kept for /api/v1/alerts
	MaxShards       int // shards tracked from batches

	// Notes, if set, keeps acknowledgements and silences (see OpenNotes)
	// and enables the API's POST/DELETE endpoints for them; the caller
	// opens and closes it.
	Notes *Notes

	// FutureMargin: a reading stamped more than this after its gateway
	// receive time (a device with a wrong clock) is counted
	// (Stats.Future) and otherwise ignored: it is not charted and does
	// not advance its series' or device's clock, so one bad clock cannot
	// blind a series (every later, correct point would look late).
	// Readings without a receive time, or timed by the receiver, are not
	// checked. Zero means DefaultFutureMargin; negative disables the check.
	FutureMargin time.Duration

	// Server-Sent Events.
	MaxClients    int           // concurrent /api/v1/events clients; more get 503
	ClientBuffer  int           // events queued per client; a client that falls this far behind is dropped
	Heartbeat     time.Duration // comment line sent to idle clients
	OverviewEvery time.Duration // how often a changed overview is pushed
}

// Shard describes one shard of the stream, as the backend (the embedded
// shard store or Kinesis) reports it; Options.Shards returns them.
type Shard struct {
	ID                     string
	StartingHashKey        string // decimal, as Kinesis writes it
	EndingHashKey          string
	Parent                 string // "" if none
	AdjacentParent         string // "" if none (the child of a merge)
	Open                   bool
	StartingSequenceNumber string
	EndingSequenceNumber   string // "" while open
	// The shard's write limits; 0 means Kinesis's 1,000 records/s and
	// 1 MiB/s.
	LimitRecordsPerSec float64
	LimitBytesPerSec   float64
}

func (o *Options) setDefaults() {
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	defd := func(v *time.Duration, d time.Duration) {
		if *v <= 0 {
			*v = d
		}
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	defd(&o.OfflineAfter, DefaultOfflineAfter)
	defd(&o.ForgetAfter, DefaultForgetAfter)
	def(&o.MaxDevices, DefaultMaxDevices)
	def(&o.MaxGateways, DefaultMaxGateways)
	def(&o.MaxMetricsPerDevice, DefaultMaxMetricsPerDevice)
	def(&o.MaxSeries, DefaultMaxSeries)
	def(&o.PointsPerSeries, DefaultPointsPerSeries)
	def(&o.MaxAlerts, DefaultMaxAlerts)
	def(&o.MaxShards, DefaultMaxShards)
	def(&o.MaxClients, DefaultMaxClients)
	def(&o.ClientBuffer, DefaultClientBuffer)
	defd(&o.Heartbeat, DefaultHeartbeat)
	defd(&o.OverviewEvery, DefaultOverviewEvery)
	if o.FutureMargin == 0 {
		o.FutureMargin = DefaultFutureMargin
	}
}
