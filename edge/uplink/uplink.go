package uplink

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tributary-iot/tributary/internal/backoff"
	"github.com/tributary-iot/tributary/internal/loglimit"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/tributary-iot/tributary/protocol"
)

// Source is the durable queue the uplink drains.
type Source interface {
	Epoch() uint64
	// Read returns the contiguous run of stored entries starting at the first seq >= from (stops at a gap or a limit), appended to dst[:0].
	Read(from uint64, maxReadings, maxBytes int, dst []protocol.Reading) (first uint64, out []protocol.Reading, err error)
	Ack(ctx context.Context, first, last uint64) error // delete [first,last], durable on return, idempotent
	Notify() <-chan struct{}                           // signalled after commits that stored readings
	Head() uint64                                      // oldest stored seq, 0 if empty
	Tail() uint64                                      // last seq assigned
}

// Errors. Health wraps ErrRefused and ErrUnauthorized.
var (
	ErrRefused      = errors.New("uplink: the cloud refused readings as malformed")
	ErrUnauthorized = errors.New("uplink: the cloud rejected the token")
	ErrRunning      = errors.New("uplink: Run may be called only once")
)

// Parked ranges are bounded: past either limit the uplink forms no new
// batches (the cloud refuses everything: a bug to fix, not data to drop).
const (
	maxParkedRanges = 16
	parkedBatches   = 2 // parked readings limit, in batches of MaxReadings
)

// Option configures New.
type Option func(*options)

type options struct {
	log    *slog.Logger
	reg    prometheus.Registerer
	client *http.Client
}

// WithLogger sets the logger (default: discard).
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.log = l } }

// WithRegisterer registers the uplink's Prometheus collectors with r.
func WithRegisterer(r prometheus.Registerer) Option { return func(o *options) { o.reg = r } }

// WithHTTPClient makes the uplink use c instead of a client built from
// Config.TLS (which must then be empty): for proxies, custom transports,
// or an in-process transport in tests (uplinktest.Cloud.Client).
func WithHTTPClient(c *http.Client) Option { return func(o *options) { o.client = c } }

// Uplink ships readings from a Source to the cloud. Build it with New and
// call Run once.
type Uplink struct {
	src       Source
	cfg       Config
	log       *slog.Logger
	client    *http.Client
	ingestURL string
	zenc      *zstd.Encoder
	gzPool    sync.Pool
	jobPool   sync.Pool

	gate     gate
	c        counters
	maxBytes atomic.Int64 // Config.MaxBytes, lowered when the cloud answers 413

	slots chan struct{} // one token per request slot held
	wake  chan struct{} // a slot was released or parked ranges changed

	claimsMu sync.Mutex
	claims   []span

	running atomic.Bool
	run     context.Context // Run's context: no new batch, retry or wait after it ends
	drain   context.Context // requests in progress and acks: ends DrainTimeout after run
	jobs    sync.WaitGroup

	unauthorized atomic.Bool
	refusal      atomic.Pointer[string] // the cloud's message for the last refused batch
	logs         struct{ transient, refused, auth, tooLarge, read, ack, badAck, stalled loglimit.Limiter }
}

// New checks cfg, applies its defaults and builds an Uplink reading src.
func New(src Source, cfg Config, opts ...Option) (*Uplink, error) {
	if src == nil {
		return nil, errors.New("uplink: nil source")
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	o := options{}
	for _, opt := range opts {
		opt(&o)
	}
	if o.log == nil {
		o.log = slog.New(slog.DiscardHandler)
	}
	u := &Uplink{
		src:       src,
		cfg:       cfg,
		log:       o.log.With("component", "uplink", "gateway", cfg.Gateway),
		client:    o.client,
		ingestURL: strings.TrimSuffix(cfg.URL, "/") + IngestPath,
		gate:      newGate(cfg.Backoff),
		slots:     make(chan struct{}, cfg.MaxInFlight),
		wake:      make(chan struct{}, 1),
	}
	u.maxBytes.Store(int64(cfg.MaxBytes))
	u.jobPool.New = func() any { return &job{encLo: -1} }
	if u.client == nil {
		tc, err := cfg.TLS.Load()
		if err != nil {
			return nil, err
		}
		u.client = &http.Client{Transport: &http.Transport{
			Proxy:               http.ProxyFromEnvironment,
			DialContext:         (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			TLSClientConfig:     tc,
			ForceAttemptHTTP2:   true,
			MaxIdleConnsPerHost: cfg.MaxInFlight,
			IdleConnTimeout:     90 * time.Second,
			TLSHandshakeTimeout: 10 * time.Second,
		}}
	} else if !cfg.TLS.IsZero() {
		return nil, errors.New("uplink: config: tls settings apply to the uplink's own client; configure TLS on the client given with WithHTTPClient")
	}
	switch cfg.Compression {
	case CompressionZstd:
		// The window need not exceed a batch: it bounds the encoder's memory.
		win := zstd.MinWindowSize
		for win < cfg.MaxBytes && win < 8<<20 {
			win <<= 1
		}
		enc, err := zstd.NewWriter(nil, zstd.WithEncoderConcurrency(cfg.MaxInFlight),
			zstd.WithWindowSize(win), zstd.WithEncoderLevel(zstd.SpeedDefault))
		if err != nil {
			return nil, fmt.Errorf("uplink: zstd: %w", err)
		}
		u.zenc = enc
	case CompressionGzip:
		u.gzPool.New = func() any {
			w, _ := gzip.NewWriterLevel(nil, gzip.DefaultCompression)
			return w
		}
	}
	if o.reg != nil {
		if err := o.reg.Register(newCollector(u)); err != nil {
			return nil, fmt.Errorf("uplink: registering metrics: %w", err)
		}
	}
	return u, nil
}

// Health reports why the uplink needs a human, or nil: readings the cloud
// refused as malformed (kept in the queue, retried), or a rejected token.
// An outage is not a health failure: see Stats.LastSuccess and Backoff.
func (u *Uplink) Health() error {
	var errs []error
	if n := u.c.parkedReadings.Load(); n > 0 {
		msg := ""
		if p := u.refusal.Load(); p != nil {
			msg = ": " + *p
		}
		errs = append(errs, fmt.Errorf("%w: %d readings in %d ranges kept in the queue and retried every %v%s",
			ErrRefused, n, u.c.parkedRanges.Load(), u.cfg.Backoff.Max, msg))
	}
	if u.unauthorized.Load() {
		errs = append(errs, fmt.Errorf("%w for gateway %s", ErrUnauthorized, u.cfg.Gateway))
	}
	return errors.Join(errs...)
}

// Run ships readings until ctx is done. Then it flushes: what the queue
// holds is sent at once, partial batches included, and requests in
// progress (retries included) may finish, all within Config.DrainTimeout;
// readings not acknowledged by then stay in the queue. It returns nil
// after a clean drain.
func (u *Uplink) Run(ctx context.Context) error {
	if !u.running.CompareAndSwap(false, true) {
		return ErrRunning
	}
	drain, cancelDrain := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelDrain()
	run, cancelRun := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelRun()
	u.run, u.drain = run, drain
	u.log.Info("uplink started", "url", u.ingestURL, "compression", u.cfg.Compression,
		"max_readings", u.cfg.MaxReadings, "max_bytes", u.cfg.MaxBytes, "max_age", u.cfg.MaxAge,
		"max_in_flight", u.cfg.MaxInFlight, "backlog_share", u.cfg.BacklogShare)

	s := newSched(u)
	defer func() { u.putJob(s.fb) }()
	u.schedule(ctx, s)

	// Flush within the drain timeout.
	deadline := time.Now().Add(u.cfg.DrainTimeout)
	fctx, cancelFlush := context.WithDeadline(context.WithoutCancel(ctx), deadline)
	defer cancelFlush()
	s.flush = true
	u.schedule(fctx, s)

	done := make(chan struct{})
	go func() {
		u.jobs.Wait()
		close(done)
	}()
	var err error
	t := time.NewTimer(time.Until(deadline))
	select {
	case <-done:
	case <-t.C:
		n := u.c.inFlight.Load()
		err = fmt.Errorf("uplink: drain timeout %v: abandoned %d requests in progress (their readings stay in the queue)", u.cfg.DrainTimeout, n)
		u.log.Warn("drain timeout: abandoning requests in progress", "in_flight", n)
		cancelRun()
		cancelDrain()
		<-done
	}
	t.Stop()
	u.client.CloseIdleConnections()
	u.log.Info("uplink stopped", "readings_acked", u.c.readings.Load())
	return err
}

// schedule forms batches and starts a job for each until ctx is done.
func (u *Uplink) schedule(ctx context.Context, s *sched) {
	readBackoff := backoff.Backoff{Initial: u.cfg.Backoff.Initial, Max: u.cfg.Backoff.Max, Jitter: backoff.None}
	for {
		if !u.waitCapacity(ctx) || u.gate.wait(ctx) != nil {
			return
		}
		j, wait, err := s.take(time.Now())
		if err != nil {
			wait := readBackoff.Next()
			if ok, n := u.logs.read.Allow(); ok {
				u.log.Error("reading the queue failed; retrying", "err", err, "retry_in", wait, "suppressed", n)
			}
			if !backoff.Sleep(ctx, wait) {
				return
			}
			continue
		}
		readBackoff.Reset()
		if j == nil && s.flush {
			return // nothing left to send
		}
		if j == nil {
			// Wait for new readings or the fresh batch's age limit; poll
			// at MaxAge as well, so a missed signal costs at most that.
			if wait <= 0 || wait > u.cfg.MaxAge {
				wait = u.cfg.MaxAge
			}
			t := time.NewTimer(wait)
			select {
			case <-ctx.Done():
			case <-u.src.Notify():
			case <-t.C:
			}
			t.Stop()
			continue
		}
		select {
		case u.slots <- struct{}{}:
		case <-ctx.Done():
			u.putJob(j)
			return
		}
		u.claim(span{j.epoch, j.first, j.last()})
		u.jobs.Add(1)
		go u.runJob(j)
	}
}

// waitCapacity waits until a request slot is free and the parked ranges
// are within their limits.
func (u *Uplink) waitCapacity(ctx context.Context) bool {
	for {
		stalled := u.c.parkedRanges.Load() >= maxParkedRanges ||
			u.c.parkedReadings.Load() >= int64(parkedBatches*u.cfg.MaxReadings)
		if len(u.slots) < cap(u.slots) && !stalled {
			return true
		}
		if stalled {
			if ok, n := u.logs.stalled.Allow(); ok {
				u.log.Error("uplink stalled: the cloud refuses too many batches as malformed; nothing is deleted, refused ranges are retried",
					"parked_ranges", u.c.parkedRanges.Load(), "parked_readings", u.c.parkedReadings.Load(), "suppressed", n)
			}
		}
		select {
		case <-ctx.Done():
			return false
		case <-u.wake:
		}
	}
}

func (u *Uplink) signal() {
	select {
	case u.wake <- struct{}{}:
	default:
	}
}

func (u *Uplink) releaseSlot() {
	<-u.slots
	u.signal()
}

func (u *Uplink) claim(s span) {
	u.claimsMu.Lock()
	u.claims = append(u.claims, s)
	u.claimsMu.Unlock()
}

func (u *Uplink) unclaim(s span) {
	u.claimsMu.Lock()
	defer u.claimsMu.Unlock()
	for i, c := range u.claims {
		if c == s {
			u.claims = append(u.claims[:i], u.claims[i+1:]...)
			return
		}
	}
}

// claimFrom returns the claimed span of epoch with the lowest first seq
// among those ending at or after seq.
func (u *Uplink) claimFrom(epoch, seq uint64) (span, bool) {
	u.claimsMu.Lock()
	defer u.claimsMu.Unlock()
	var best span
	found := false
	for _, c := range u.claims {
		if c.epoch == epoch && c.last >= seq && (!found || c.first < best.first) {
			best, found = c, true
		}
	}
	return best, found
}

func (u *Uplink) getJob() *job {
	j := u.jobPool.Get().(*job)
	j.encLo, j.encHi = -1, -1
	return j
}

func (u *Uplink) putJob(j *job) {
	clear(j.rs)
	j.rs = j.rs[:0]
	j.parked = j.parked[:0]
	j.encLo, j.encHi = -1, -1
	u.jobPool.Put(j)
}
