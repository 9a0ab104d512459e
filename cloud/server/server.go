// Package server wires tributary-cloud together: gateway tokens, the
// stream backend (the embedded shard store, Amazon Kinesis, or Kafka /
// Amazon MSK), the ingest
// API and /healthz on the listener gateways reach (TLS optional, client
// certificates optional), the dashboard, /api/v1, /metrics and pprof on
// the admin listener (loopback by default; admin users with a login page
// and sessions, or bearer tokens, required elsewhere; a Host allow-list;
// cross-origin protection), and the embedded store's Kinesis API on a
// third (loopback by default; SigV4 credentials required elsewhere).
//
// Shutdown (Run's context ends): the listeners stop taking connections
// and requests in progress finish within DrainTimeout
// (http.Server.Shutdown), so every batch being written is acknowledged or
// refused, never left half-done by the shutdown; then the ingest's ack log
// and the stream store close.
//
// Admin sign-in (admin.go, login.go, session.go): admin users (users.db,
// `tributary-cloud user add`) sign in at /login with a form post (never a
// URL); a session is an HttpOnly, SameSite=Strict cookie (Secure and
// __Host- prefixed with admin.tls) naming 256 random bits, kept in memory
// (a restart signs everyone out) for at most admin.session_ttl and
// admin.session_idle, and ended when its user is removed or gets a new
// password. Sign-ins are limited per source address (LoginBurst, then one
// per LoginRefill; IPv6 by /64). Metrics: tributary_admin_logins_total
// {result=ok|failed|throttled}, tributary_admin_requests_refused_total
// {reason=host|unauthorized|credentials_in_url}, tributary_admin_sessions,
// tributary_admin_sessions_evicted_total.
//
// The dashboard's acknowledgements and silences (cloud/monitor's Notes,
// POST /api/v1/incidents/{id}/ack and /api/v1/silences) are kept in
// dashboard.db in the data folder; like every request on the admin
// listener they need a session or token, and, as state-changing requests,
// a same-origin browser (cross-origin protection refuses them 403). A
// silenced device's alerts go to the log and the alerts stream, not the
// webhook.
//
// Stream capacity (autoscale.go, plan.go): GET /api/v1/autoscale shows
// each shard's utilisation against its limits and the autoscaler's
// decisions (or, on Kafka, the partitions' headroom), GET /api/v1/plan the
// monitor's current traffic priced on four engines (cloud/monitor/API.md).
//
// /healthz answers the Health document (JSON, every key snake_case), with
// HTTP status 503 while failing; /metrics has tributary_build_info (1,
// labels version, goversion and revision) among the others.
package server

import (
	"cmp"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	kinesistypes "github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/tributary-iot/tributary/cloud/auth"
	"github.com/tributary-iot/tributary/cloud/autoscale"
	"github.com/tributary-iot/tributary/cloud/ingest"
	"github.com/tributary-iot/tributary/cloud/kafkabackend"
	"github.com/tributary-iot/tributary/cloud/kinesisapi"
	"github.com/tributary-iot/tributary/cloud/kinesisbackend"
	"github.com/tributary-iot/tributary/cloud/monitor"
	"github.com/tributary-iot/tributary/cloud/shardstore"
	"github.com/tributary-iot/tributary/internal/buildinfo"
	"github.com/tributary-iot/tributary/internal/defaults"
	"github.com/tributary-iot/tributary/internal/healthz"
	"github.com/tributary-iot/tributary/internal/metrics"
)

// Options are the server's non-config dependencies.
type Options struct {
	Logger  *slog.Logger // default slog.Default()
	Version string       // reported by /healthz
	// StoreOptions configure the embedded shard store (tests use it for
	// throughput limits and clocks); the Logger is set if nil.
	StoreOptions shardstore.Options
	// ReadHeaderTimeout bounds the wait for a request's headers on every
	// listener (default DefaultReadHeaderTimeout; tests shorten it).
	ReadHeaderTimeout time.Duration
	// Now is the clock of the admin sessions and sign-in limits (default
	// time.Now; tests move it).
	Now func() time.Time
}

// HTTP limits of every listener. A connection that has not sent its
// headers within ReadHeaderTimeout is closed, as is one idle this long
// between requests; headers are at most MaxHeaderBytes.
const (
	DefaultReadHeaderTimeout = 10 * time.Second
	IdleTimeout              = 2 * time.Minute
	MaxHeaderBytes           = 64 << 10
	// Whole-request bounds of the Kinesis API (no call streams). The
	// admin listener has neither: a ReadTimeout would cancel the context
	// of the dashboard's event streams when it passes (net/http's
	// background read fails then), and pprof profiles write for their
	// ?seconds=; its event stream sets a deadline per write instead.
	kinesisReadTimeout  = time.Minute
	kinesisWriteTimeout = 2 * time.Minute
)

// Server is a running tributary-cloud.
type Server struct {
	cfg     Config
	log     *slog.Logger
	version string
	started time.Time
	reg     *prometheus.Registry

	tokens  *auth.Store
	users   *auth.Users // admin users (users.db)
	now     func() time.Time
	store   *shardstore.Store       // embedded backend
	kinesis *kinesisbackend.Backend // kinesis backend
	kafka   *kafkabackend.Backend   // kafka backend
	backend ingest.Backend
	ingest  *ingest.Ingest

	pipe       *pipeline             // the monitor consumer (nil when off)
	scaler     *autoscale.Scaler     // stream.autoscale (nil when off)
	meter      *shardMeter           // the shards' loads when the autoscaler is off (nil on Kafka)
	throughput shardstore.Throughput // the embedded store's limits, resolved

	ln, kinesisLn, adminLn        net.Listener
	admin                         *http.ServeMux // the admin listener's (nil when off)
	httpSrv, kinesisSrv, adminSrv *http.Server

	headerTimeout time.Duration

	closeOnce sync.Once
	closeErr  error
}

// New validates cfg (with defaults applied), opens the data folder's
// files, creates the stream if missing (embedded backend) or checks that
// it exists (kinesis backend), and binds both listeners, so that a busy
// port or a locked data folder is reported now. The start's I/O runs
// under ctx: when ctx ends, New stops and returns an error wrapping
// ctx.Err().
func New(ctx context.Context, cfg Config, opts Options) (*Server, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	log := cmp.Or(opts.Logger, slog.Default())
	s := &Server{cfg: cfg, log: log, version: opts.Version, started: time.Now(), reg: metrics.NewRegistry(buildinfo.Read(opts.Version)),
		headerTimeout: cmp.Or(opts.ReadHeaderTimeout, DefaultReadHeaderTimeout), now: opts.Now}
	if s.now == nil {
		s.now = time.Now
	}
	fail := func(err error) (*Server, error) { s.Close(); return nil, err }

	if err := os.MkdirAll(cfg.Data, 0o750); err != nil {
		return nil, fmt.Errorf("cloud: data folder: %w", err)
	}
	var err error
	if s.tokens, err = auth.Open(filepath.Join(cfg.Data, TokensFile), auth.Options{Logger: log.With("component", "auth")}); err != nil {
		return fail(err)
	}
	if s.users, err = auth.OpenUsers(filepath.Join(cfg.Data, UsersFile), auth.Options{Logger: log.With("component", "auth")}); err != nil {
		return fail(err)
	}
	if err := adminExposed(cfg.Admin, s.users.Len()); err != nil {
		return fail(err)
	}
	if err := s.openBackend(ctx, opts); err != nil {
		return fail(err)
	}
	s.ingest, err = ingest.New(ctx, ingest.Options{
		Backend: s.backend, Tokens: s.tokens, Path: filepath.Join(cfg.Data, AckLogFile),
		Stream: cfg.Stream.Name, Logger: log, Registerer: s.reg,
		MaxBytes: int(cfg.Ingest.MaxBytes), MaxInFlight: cfg.Ingest.MaxInFlight,
		ThrottleWait: cfg.Ingest.ThrottleWait, RetryAfter: cfg.Ingest.RetryAfter, PutTimeout: cfg.Ingest.PutTimeout,
		EpochTTL: cfg.Ingest.EpochTTL, MaxSpans: cfg.Ingest.MaxRanges,
		MaxInFlightPerGateway: cfg.Ingest.MaxInFlightPerGateway, ReadTimeout: cfg.Ingest.ReadTimeout,
		MaxDevicesPerGateway: cfg.Ingest.MaxDevicesPerGateway, MaxSeriesPerGateway: cfg.Ingest.MaxSeriesPerGateway,
		SeriesTTL: cfg.Ingest.SeriesTTL,
	})
	if err != nil {
		return fail(err)
	}

	if err := s.listen(); err != nil {
		return fail(err)
	}

	var api *kinesisapi.Server
	if s.store != nil {
		if api, err = kinesisapi.New(s.store, kinesisapi.Options{
			Region: cfg.KinesisAPI.Region, Credentials: cfg.KinesisAPI.Credentials,
			Logger: log, Registerer: s.reg,
		}); err != nil {
			return fail(err)
		}
		s.throughput = s.storeOptions(opts).Throughput.Resolved()
	}
	switch {
	case cfg.KinesisListen == "off":
	case s.store == nil:
		log.Info("no Kinesis API on kinesis_listen: it serves the embedded store, and the stream backend is "+cfg.Stream.Backend, "kinesis_listen", cfg.KinesisListen)
	default:
		kinesisTLS, err := cfg.KinesisAPI.TLS.Load()
		if err != nil {
			return fail(fmt.Errorf("cloud: kinesis_api.tls: %w", err))
		}
		s.kinesisSrv = s.httpServer("kinesisapi", api.Limited(cfg.KinesisAPI.MaxInFlight), kinesisTLS)
		s.kinesisSrv.ReadTimeout, s.kinesisSrv.WriteTimeout = kinesisReadTimeout, kinesisWriteTimeout
		if s.kinesisLn, err = net.Listen("tcp", cfg.KinesisListen); err != nil {
			return fail(fmt.Errorf("cloud: listen %s (Kinesis API): %w", cfg.KinesisListen, err))
		}
	}
	if err := s.openPipeline(ctx, api); err != nil {
		return fail(err)
	}
	if err := s.openAutoscaler(api); err != nil {
		return fail(err)
	}
	return s, nil
}

// listen binds the ingest listener (/v1/ingest, /healthz) and the admin
// listener (the dashboard, /api/v1, /metrics, /healthz, pprof) behind its
// Host and token checks.
func (s *Server) listen() error {
	cfg := s.cfg
	tlsCfg, err := cfg.TLS.Load()
	if err != nil {
		return fmt.Errorf("cloud: tls: %w", err)
	}
	health := healthz.Handler(s.Health, func(h Health) bool { return h.Status != "ok" })
	mux := http.NewServeMux()
	mux.Handle(ingest.Path, s.ingest)
	mux.Handle("GET /healthz", health)
	s.httpSrv = s.httpServer("http", mux, tlsCfg)
	// A batch's body within read_timeout; the answer after at most the
	// body, the stream writes and the throttling waits.
	s.httpSrv.ReadTimeout = cfg.Ingest.ReadTimeout
	s.httpSrv.WriteTimeout = cfg.Ingest.ReadTimeout + cmp.Or(cfg.Ingest.PutTimeout, ingest.DefaultPutTimeout) +
		cmp.Or(cfg.Ingest.ThrottleWait, ingest.DefaultThrottleWait) + 30*time.Second
	if s.ln, err = net.Listen("tcp", cfg.Listen); err != nil {
		return fmt.Errorf("cloud: listen %s (ingest): %w", cfg.Listen, err)
	}
	if cfg.Admin.Listen == "off" {
		return nil
	}
	adminTLS, err := cfg.Admin.TLS.Load()
	if err != nil {
		return fmt.Errorf("cloud: admin.tls: %w", err)
	}
	s.admin = s.adminMux(promhttp.HandlerFor(s.reg, promhttp.HandlerOpts{Registry: s.reg}), health)
	guard, err := newAdminGuard(cfg.Admin, s.users, s.log.With("component", "admin"), s.now, s.admin)
	if err != nil {
		return err
	}
	for _, c := range guard.collectors() {
		if err := s.reg.Register(c); err != nil {
			return fmt.Errorf("cloud: admin metrics: %w", err)
		}
	}
	// Cross-origin protection covers every state-changing request, the
	// sign-in and sign-out included.
	s.adminSrv = s.httpServer("admin", http.NewCrossOriginProtection().Handler(guard), adminTLS)
	// Shutdown ends the dashboard's event streams (they never go idle).
	base, cancel := context.WithCancel(context.Background())
	s.adminSrv.BaseContext = func(net.Listener) context.Context { return base }
	s.adminSrv.RegisterOnShutdown(cancel)
	if s.adminLn, err = net.Listen("tcp", cfg.Admin.Listen); err != nil {
		cancel()
		return fmt.Errorf("cloud: listen %s (admin.listen): %w", cfg.Admin.Listen, err)
	}
	return nil
}

// httpServer is an http.Server for one listener with the limits every
// listener shares, logging through the server's logger.
func (s *Server) httpServer(component string, h http.Handler, tlsCfg *tls.Config) *http.Server {
	return &http.Server{Handler: h, TLSConfig: tlsCfg, ReadHeaderTimeout: s.headerTimeout, IdleTimeout: IdleTimeout,
		MaxHeaderBytes: MaxHeaderBytes, ErrorLog: slog.NewLogLogger(s.log.With("component", component).Handler(), slog.LevelWarn)}
}

func (s *Server) openBackend(ctx context.Context, opts Options) error {
	cfg := s.cfg
	switch cfg.Stream.Backend {
	case BackendEmbedded:
		so := s.storeOptions(opts)
		if so.Logger == nil {
			so.Logger = s.log.With("component", "shardstore")
		}
		st, err := shardstore.Open(filepath.Join(cfg.Data, StreamsFile), so)
		if err != nil {
			return err
		}
		s.store = st
		s.backend = StoreBackend{Store: st}
		if err := s.reg.Register(st.Collector()); err != nil {
			return fmt.Errorf("cloud: shard metrics: %w", err)
		}
		return s.createStream(ctx, cfg.Stream.Name, cfg.Stream.Shards)
	case BackendKafka:
		return s.openKafka(ctx)
	case BackendKinesis:
		k := cfg.Stream.Kinesis
		kb, err := kinesisbackend.New(ctx, kinesisbackend.Config{
			Stream: cfg.Stream.Name, Region: k.Region, Endpoint: k.Endpoint,
			AccessKeyID: k.AccessKeyID, SecretAccessKey: k.SecretAccessKey,
			Registerer: s.reg, Logger: s.log.With("component", "kinesis"),
		})
		if err != nil {
			return err
		}
		s.kinesis = kb
		s.backend = KinesisBackend{Backend: kb, Timeout: throttleWait(cfg)}
		return s.checkKinesisStream(ctx, cfg.Stream.Name)
	}
	return nil
}

// startTimeout bounds each step of the start that waits on a stream
// backend.
const startTimeout = 30 * time.Second

// createStream creates a stream in the embedded store if it is missing.
func (s *Server) createStream(ctx context.Context, name string, shards int) error {
	ctx, cancel := context.WithTimeout(ctx, startTimeout)
	defer cancel()
	switch err := s.store.CreateStream(ctx, name, shards); {
	case err == nil:
		s.log.Info("stream created", "stream", name, "shards", shards)
	case errors.Is(err, shardstore.ErrStreamExists):
	default:
		return fmt.Errorf("cloud: creating stream %s: %w", name, err)
	}
	return nil
}

// checkKinesisStream looks the stream up on Kinesis, where it is
// provisioned outside (infrastructure as code). A missing stream stops the
// start; an unreachable Kinesis does not (the ingest answers 503 until it
// is back), it is logged.
func (s *Server) checkKinesisStream(ctx context.Context, name string) error {
	cctx, cancel := context.WithTimeout(ctx, startTimeout)
	defer cancel()
	// ListShards: a call the deployed IAM policy allows (deploy/aws).
	_, err := s.kinesis.Client().ListShards(cctx, &kinesis.ListShardsInput{StreamName: aws.String(name), MaxResults: aws.Int32(1)})
	var notFound *kinesistypes.ResourceNotFoundException
	switch {
	case err == nil:
		return nil
	case ctx.Err() != nil:
		return fmt.Errorf("cloud: checking Kinesis stream %s: %w", name, ctx.Err())
	case errors.As(err, &notFound):
		return fmt.Errorf("cloud: Kinesis stream %s does not exist: provision it first (deploy/aws): %w", name, err)
	}
	s.log.Warn("cannot reach Kinesis to check the stream; starting anyway (uploads get 503 until it answers)", "stream", name, "err", err)
	return nil
}

// storeOptions are the embedded store's options: Options.StoreOptions,
// with stream.reads_per_sec unless the options set a read limit.
func (s *Server) storeOptions(opts Options) shardstore.Options {
	so := opts.StoreOptions
	defaults.Set(&so.Throughput.ReadsPerSec, s.cfg.Stream.ReadsPerSec)
	defaults.Set(&so.Throughput.WriteRecordsPerSec, s.cfg.Stream.WriteRecordsPerSec)
	defaults.Set(&so.Throughput.WriteBytesPerSec, int(s.cfg.Stream.WriteBytesPerSec))
	return so
}

// Addr is the ingest listener's address.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// AdminAddr is the admin listener's address ("" when it is off).
func (s *Server) AdminAddr() string {
	if s.adminLn == nil {
		return ""
	}
	return s.adminLn.Addr().String()
}

// KinesisAddr is the Kinesis API's address ("" when there is none).
func (s *Server) KinesisAddr() string {
	if s.kinesisLn == nil {
		return ""
	}
	return s.kinesisLn.Addr().String()
}

// DashboardURL is where the dashboard is served: the admin listener (""
// with the monitor or the admin listener off). An unspecified listen host
// shows as localhost.
func (s *Server) DashboardURL() string {
	if s.pipe == nil || s.adminLn == nil {
		return ""
	}
	scheme := "http"
	if s.cfg.Admin.TLS.CertFile != "" {
		scheme = "https"
	}
	host, port, _ := net.SplitHostPort(s.AdminAddr())
	if ip := net.ParseIP(host); ip == nil || ip.IsUnspecified() {
		host = "localhost"
	}
	return scheme + "://" + net.JoinHostPort(host, port) + "/"
}

// Monitor is the fleet monitor behind the dashboard (nil when off).
func (s *Server) Monitor() *monitor.Monitor {
	if s.pipe == nil {
		return nil
	}
	return s.pipe.monitor
}

// Handle adds a handler on the admin listener (the dashboard, say), behind
// its Host and token checks; a no-op when admin.listen is off. Call it
// before Run.
func (s *Server) Handle(pattern string, h http.Handler) {
	if s.admin != nil {
		s.admin.Handle(pattern, h)
	}
}

// Registry is the Prometheus registry served on /metrics: register other
// components' collectors with it.
func (s *Server) Registry() *prometheus.Registry { return s.reg }

// Tokens is the token store (tests issue tokens with it).
func (s *Server) Tokens() *auth.Store { return s.tokens }

// Users is the admin user store.
func (s *Server) Users() *auth.Users { return s.users }

// Store is the embedded shard store (nil with the kinesis backend).
func (s *Server) Store() *shardstore.Store { return s.store }

// Run serves until ctx is done, then drains and closes everything. It
// returns the first failure, or nil after a clean stop.
func (s *Server) Run(ctx context.Context) error {
	defer s.Close()
	bg, stopBG := context.WithCancel(context.Background())
	defer stopBG()
	errc := make(chan error, 4)
	var wg sync.WaitGroup
	wg.Go(func() { _ = s.tokens.Watch(bg, s.cfg.Tokens.ReloadEvery) })
	wg.Go(func() { _ = s.users.Watch(bg, s.cfg.Tokens.ReloadEvery) })
	wg.Go(func() { _ = s.ingest.Run(bg) })
	if s.scaler != nil {
		wg.Go(func() { _ = s.scaler.Run(bg) })
	}
	if s.meter != nil {
		wg.Go(func() { s.meter.run(bg) })
	}
	if s.pipe != nil {
		wg.Go(func() {
			if err := s.pipe.run(bg); err != nil {
				errc <- err
			}
		})
	}
	scheme := "http"
	if s.httpSrv.TLSConfig != nil {
		scheme = "https"
	}
	serve := func(name string, srv *http.Server, ln net.Listener) {
		useTLS := srv.TLSConfig != nil // read before Serve configures it
		wg.Go(func() {
			var err error
			if useTLS {
				err = srv.ServeTLS(ln, "", "") // the certificate is in TLSConfig
			} else {
				err = srv.Serve(ln)
			}
			if err != nil && !errors.Is(err, http.ErrServerClosed) {
				errc <- fmt.Errorf("cloud: %s: %w", name, err)
			}
		})
	}
	serve("ingest listener", s.httpSrv, s.ln)
	if s.kinesisSrv != nil {
		serve("Kinesis API listener", s.kinesisSrv, s.kinesisLn)
	}
	if s.adminSrv != nil {
		serve("admin listener", s.adminSrv, s.adminLn)
	}
	s.log.Info("tributary-cloud started", "version", s.version, "data", s.cfg.Data,
		"ingest", scheme+"://"+s.Addr()+ingest.Path, "kinesis_api", s.KinesisAddr(), "admin", s.AdminAddr(), "dashboard", s.DashboardURL(),
		"stream", s.cfg.Stream.Name, "backend", s.cfg.Stream.Backend, "gateways", len(s.tokens.List()))

	var err error
	select {
	case <-ctx.Done():
	case err = <-errc:
		s.log.Error("listener failed; stopping", "err", err)
	}
	s.log.Info("stopping: draining requests in progress", "drain_timeout", s.cfg.DrainTimeout)
	dctx, cancel := context.WithTimeout(context.Background(), s.cfg.DrainTimeout)
	defer cancel()
	var shut []error
	for _, srv := range []*http.Server{s.httpSrv, s.kinesisSrv, s.adminSrv} {
		if srv == nil {
			continue
		}
		if e := srv.Shutdown(dctx); e != nil {
			shut = append(shut, e)
			srv.Close()
		}
	}
	if len(shut) > 0 {
		s.log.Warn("requests still in progress after the drain timeout were cut off; their batches will be resent", "err", errors.Join(shut...))
	}
	stopBG()
	wg.Wait()
	if cerr := s.Close(); err == nil {
		err = cerr
	}
	s.log.Info("tributary-cloud stopped")
	return err
}

// Close releases everything; safe to call twice. Run calls it.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		var errs []error
		for _, ln := range []net.Listener{s.ln, s.kinesisLn, s.adminLn} {
			if ln != nil {
				ln.Close()
			}
		}
		if s.ingest != nil {
			errs = append(errs, s.ingest.Close())
		}
		if s.pipe != nil {
			errs = append(errs, s.pipe.close())
		}
		if s.store != nil {
			errs = append(errs, s.store.Close())
		}
		if s.kinesis != nil {
			errs = append(errs, s.kinesis.Close())
		}
		if s.kafka != nil {
			errs = append(errs, s.kafka.Close())
		}
		s.closeErr = errors.Join(errs...)
	})
	return s.closeErr
}

// Health is the /healthz document. Every key is snake_case; keys marked
// "omitted when ..." are left out then.
type Health struct {
	Status   string `json:"status"`           // ok or failing (HTTP 503)
	Reason   string `json:"reason,omitempty"` // why failing; omitted when ok
	Version  string `json:"version,omitempty"`
	Uptime   string `json:"uptime"`           // a Go duration, rounded to the second
	Stream   string `json:"stream"`           // the telemetry stream's name
	Backend  string `json:"backend"`          // embedded, kinesis or kafka
	Shards   int    `json:"shards,omitempty"` // open shards (embedded); omitted with kinesis and kafka
	Gateways int    `json:"gateways"`         // gateways with an active token
}

// Health reports the server's state.
func (s *Server) Health() Health {
	h := Health{Status: "ok", Version: s.version, Uptime: time.Since(s.started).Round(time.Second).String(),
		Stream: s.cfg.Stream.Name, Backend: s.cfg.Stream.Backend, Gateways: len(s.tokens.List())}
	if s.store != nil {
		info, err := s.store.DescribeStream(s.cfg.Stream.Name)
		if err != nil {
			h.Status, h.Reason = "failing", err.Error()
		} else {
			h.Shards = info.OpenShards
		}
	}
	return h
}
