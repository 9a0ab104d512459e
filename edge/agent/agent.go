// Package agent wires the gateway agent together: MQTT intake (an external
// broker or the embedded one) and local bus sampling write into the durable
// queue; the uplink drains it to the cloud; the agent reports its own health
// as readings, on /healthz and on /metrics.
//
// Shutdown order (SIGTERM): intake and local sampling stop first, so
// nothing new is acknowledged; the uplink then sends what the queue holds
// (partial batches too) and finishes requests in progress within
// DrainTimeout; the queue closes last. Readings not yet uploaded stay in the
// queue for the next start.
//
// The HTTP listener (Config.Listen) serves /metrics (Prometheus; among
// them tributary_build_info, 1 with the labels version, goversion and
// revision) and /healthz: a JSON document whose keys are all snake_case,
// described field by field by the Health type (status, reasons, queue,
// uplink, clock, intake, local), with HTTP status 503 while failing.
//
// Before opening anything New runs Config.Check: Validate plus what
// depends on files (the device password file in the data folder, which
// decides who may connect to the embedded broker; the token file; the TLS
// files). `tributary-agent validate` prints the same. The embedded broker
// checks device passwords with edge/devicecreds (argon2id hashes,
// DevicesFile). With queue.on_corrupt: quarantine a damaged queue file is
// moved aside and a new queue started; /healthz stays "degraded" and
// tributary_queue_damaged_files non-zero while such files remain.
//
// Each component adds its own attributes (such as "component") to the
// logger it is given, so New passes the agent's logger on unchanged.
package agent

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/tributary-iot/tributary/edge/clock"
	"github.com/tributary-iot/tributary/edge/devicecreds"
	"github.com/tributary-iot/tributary/edge/intake"
	"github.com/tributary-iot/tributary/edge/local"
	"github.com/tributary-iot/tributary/edge/queue"
	"github.com/tributary-iot/tributary/edge/uplink"
	"github.com/tributary-iot/tributary/firmware/sensor"
	"github.com/tributary-iot/tributary/internal/buildinfo"
	"github.com/tributary-iot/tributary/internal/healthz"
	"github.com/tributary-iot/tributary/internal/metrics"
	"github.com/tributary-iot/tributary/protocol"
)

// QueueFile is the queue database's name inside the data folder.
const QueueFile = "queue.db"

// Options are the agent's non-config dependencies.
type Options struct {
	Logger *slog.Logger
	// Buses opens local sensors; nil means the real host buses.
	Buses sensor.Buses
	// Version is reported in health.
	Version string
}

// Agent is a running gateway agent.
type Agent struct {
	cfg     Config
	log     *slog.Logger
	version string
	reg     *prometheus.Registry
	q       *queue.Queue
	clk     *clock.Clock
	up      *uplink.Uplink
	ext     *intake.External
	emb     *intake.Embedded
	loc     *local.Sampler
	buses   sensor.Buses
	httpLn  net.Listener
	started time.Time

	closeOnce sync.Once
}

// storeAdapter lets intake and local sampling write into the queue.
type storeAdapter struct{ q *queue.Queue }

func (s storeAdapter) Append(ctx context.Context, rs []protocol.Reading) error {
	_, err := s.q.Append(ctx, rs)
	return err
}

func (s storeAdapter) DeadLetter(ctx context.Context, topic, reason string, payload []byte) error {
	return s.q.AddDeadLetter(ctx, queue.DeadLetter{Time: time.Now(), Topic: topic, Reason: reason, Payload: payload})
}

// New validates cfg (with defaults applied), opens the queue and builds
// every component. Nothing listens or connects until Run, except the
// embedded broker and the HTTP listener, which bind now so that a busy port
// is reported at once.
func New(cfg Config, opts Options) (*Agent, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Check(); err != nil {
		return nil, err
	}
	log := cmp.Or(opts.Logger, slog.Default())
	a := &Agent{cfg: cfg, log: log, version: opts.Version, reg: metrics.NewRegistry(buildinfo.Read(opts.Version)), started: time.Now()}
	fail := func(err error) (*Agent, error) { a.Close(); return nil, err }

	if err := os.MkdirAll(cfg.Data, 0o750); err != nil {
		return nil, fmt.Errorf("agent: data folder: %w", err)
	}
	a.clk = clock.New(clock.Options{RequireNTP: cfg.Clock.RequireNTP, Logger: log})
	q, err := queue.Open(filepath.Join(cfg.Data, QueueFile), queue.Options{
		MaxBytes:       int64(cfg.Queue.MaxBytes),
		Policy:         queue.Policy(cfg.Queue.Policy),
		DedupeWindow:   cfg.Queue.DedupeWindow,
		CommitInterval: *cfg.Queue.CommitInterval,
		OnCorrupt:      queue.OnCorrupt(cfg.Queue.OnCorrupt),
		Logger:         log,
	})
	if errors.Is(err, queue.ErrCorrupt) && cfg.Queue.OnCorrupt == string(queue.Refuse) {
		return nil, fmt.Errorf("%w; on an unattended gateway, queue.on_corrupt: quarantine does that by itself", err)
	}
	if err != nil {
		return nil, err
	}
	a.q = q
	a.registerQueueMetrics()

	token, err := cfg.token(log)
	if err != nil {
		return fail(err)
	}
	ucfg := uplink.Config{
		URL: cfg.Cloud.URL, Gateway: cfg.Gateway, Token: token,
		TLS: cfg.Cloud.TLS, Insecure: cfg.Cloud.Insecure,
		Compression: cfg.Cloud.Compression, MaxReadings: cfg.Cloud.MaxReadings, MaxBytes: int(cfg.Cloud.MaxBytes),
		MaxAge: cfg.Cloud.MaxAge, RequestTimeout: cfg.Cloud.Timeout, MaxInFlight: cfg.Cloud.MaxInFlight,
		DrainTimeout: cfg.DrainTimeout,
	}
	if cfg.Cloud.BacklogShare != nil {
		ucfg.BacklogShare = *cfg.Cloud.BacklogShare
	}
	if a.up, err = uplink.New(q, ucfg, uplink.WithLogger(log), uplink.WithRegisterer(a.reg)); err != nil {
		return fail(err)
	}

	store := storeAdapter{q}
	iopts := intake.Options{Clock: a.clk, Logger: log, Registerer: a.reg, FutureMargin: cfg.Clock.FutureMargin}
	if cfg.MQTT.Broker != "" {
		a.ext, err = intake.NewExternal(intake.ExternalConfig{
			Broker: cfg.MQTT.Broker, Gateway: cfg.Gateway, ClientID: cfg.MQTT.ClientID,
			Username: cfg.MQTT.Username, Password: cfg.MQTT.Password,
			TLS:         cfg.MQTT.TLS,
			MaxInFlight: cfg.MQTT.MaxInFlight,
		}, store, iopts)
	} else {
		var pw intake.Passwords
		if pw, err = a.devicePasswords(); err != nil {
			return fail(err)
		}
		a.emb, err = intake.NewEmbedded(intake.EmbeddedConfig{
			Listen:               cfg.MQTT.Listen,
			Gateway:              cfg.Gateway,
			TLS:                  cfg.embeddedTLS(),
			AllowAnonymous:       cfg.MQTT.AllowAnonymous,
			Passwords:            pw,
			StrictDeviceIdentity: cfg.MQTT.StrictIdentity,
			MaxInFlight:          cfg.MQTT.MaxInFlight,
			MaxClients:           cfg.MQTT.MaxClients,
			MaxClientsPerSource:  cfg.MQTT.MaxClientsPerSource,
			ConnectTimeout:       cfg.MQTT.ConnectTimeout,
		}, store, iopts)
	}
	if err != nil {
		return fail(err)
	}

	if len(cfg.Local.Sensors) > 0 {
		a.buses = opts.Buses
		if a.buses == nil {
			a.buses = &sensor.HostBuses{}
		}
		a.loc, err = local.New(cfg.Local.Sensors, a.buses, cfg.Local.Device, store, a.clk, log, local.WithRegisterer(a.reg))
		if err != nil {
			return fail(err)
		}
	}

	if a.httpLn, err = net.Listen("tcp", cfg.Listen); err != nil {
		return fail(fmt.Errorf("agent: listen %s (metrics and health): %w", cfg.Listen, err))
	}
	return a, nil
}

// devicePasswords reads the device password file: nil when it holds no
// device (then devices connect anonymously, on loopback or with
// allow_anonymous, until a restart after `device add`).
func (a *Agent) devicePasswords() (intake.Passwords, error) {
	ds, err := devicecreds.Load(a.cfg.DevicesFile())
	if err != nil {
		return nil, fmt.Errorf("agent: %w", err)
	}
	if len(ds) == 0 {
		a.log.Info("no device passwords: devices connect without credentials (restart after `tributary-agent device add` to require them)",
			"file", a.cfg.DevicesFile())
		return nil, nil
	}
	v, err := devicecreds.NewVerifier(a.cfg.DevicesFile(), devicecreds.Options{Logger: a.log, Registerer: a.reg})
	if err != nil {
		return nil, fmt.Errorf("agent: %w", err)
	}
	a.log.Info("device passwords", "file", a.cfg.DevicesFile(), "devices", v.Len())
	return v, nil
}

// MQTTAddr is the embedded broker's address ("" with an external broker).
func (a *Agent) MQTTAddr() string {
	if a.emb == nil {
		return ""
	}
	return a.emb.Addr()
}

// HTTPAddr is the metrics and health address.
func (a *Agent) HTTPAddr() string { return a.httpLn.Addr().String() }

// Queue exposes the queue (tests and health).
func (a *Agent) Queue() *queue.Queue { return a.q }

// Run runs every component until ctx is done, then shuts down in order.
// It returns the first component failure, or nil after a clean stop.
func (a *Agent) Run(ctx context.Context) error {
	defer a.Close()
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(a.reg, promhttp.HandlerOpts{Registry: a.reg}))
	mux.Handle("GET /healthz", healthz.Handler(a.Health, func(h Health) bool { return h.Status == "failing" }))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(a.httpLn)
	defer srv.Close()

	for _, w := range a.cfg.Warnings() {
		if !strings.HasPrefix(w, "mqtt.allow_anonymous") { // the broker says that itself
			a.log.Warn(w)
		}
	}
	if damaged := a.damagedFiles(); len(damaged) > 0 {
		a.log.Warn("damaged queue files moved aside are in the data folder; /healthz reports degraded until they are deleted", "files", damaged)
	}
	a.log.Info("agent started", "gateway", a.cfg.Gateway, "version", a.version, "data", a.cfg.Data,
		"mqtt", a.mqttDescription(), "cloud", a.cfg.Cloud.URL, "listen", a.HTTPAddr(),
		"queue_quota", int64(a.cfg.Queue.MaxBytes), "policy", a.cfg.Queue.Policy, "epoch", a.q.Epoch(),
		"backlog", a.q.Stats().Depth)

	// Producers run under one context, the uplink under another, so that
	// producers stop first and the uplink can drain after them.
	prodCtx, stopProducers := context.WithCancel(ctx)
	defer stopProducers()
	upCtx, stopUplink := context.WithCancel(context.Background())
	defer stopUplink()

	errc := make(chan error, 4)
	var producers sync.WaitGroup
	start := func(wg *sync.WaitGroup, name string, run func(context.Context) error, ctx context.Context) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := run(ctx); err != nil && !errors.Is(err, context.Canceled) {
				errc <- fmt.Errorf("agent: %s: %w", name, err)
			}
		}()
	}
	if a.ext != nil {
		start(&producers, "intake", a.ext.Run, prodCtx)
	}
	if a.emb != nil {
		start(&producers, "intake", a.emb.Run, prodCtx)
	}
	if a.loc != nil {
		start(&producers, "local", a.loc.Run, prodCtx)
	}
	if a.cfg.Health.Every > 0 {
		start(&producers, "health", a.reportHealth, prodCtx)
	}
	var upWG sync.WaitGroup
	start(&upWG, "uplink", a.up.Run, upCtx)

	var err error
	select {
	case <-ctx.Done():
	case err = <-errc:
		a.log.Error("component failed; stopping", "err", err)
	}
	a.log.Info("stopping: producers first, then the uplink drains", "drain_timeout", a.cfg.DrainTimeout)
	stopProducers()
	producers.Wait()
	stopUplink()
	upWG.Wait()
	st := a.q.Stats()
	a.log.Info("agent stopped", "unsent", st.Depth, "queue_bytes", st.FileBytes)
	return err
}

func (a *Agent) mqttDescription() string {
	if a.ext != nil {
		return "external " + a.cfg.MQTT.Broker
	}
	return "embedded " + a.emb.Addr()
}

// Close releases everything; safe to call twice.
func (a *Agent) Close() error {
	var err error
	a.closeOnce.Do(func() {
		if a.emb != nil {
			a.emb.Close()
		}
		if a.httpLn != nil {
			a.httpLn.Close()
		}
		if a.q != nil {
			err = a.q.Close()
		}
		if hb, ok := a.buses.(*sensor.HostBuses); ok {
			hb.Close()
		}
	})
	return err
}

func (a *Agent) registerQueueMetrics() {
	gauge := func(name, help string, f func(queue.Stats) float64) {
		a.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "tributary_queue_" + name, Help: help},
			func() float64 { return f(a.q.Stats()) }))
	}
	counter := func(name, help string, f func(queue.Stats) float64) {
		a.reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "tributary_queue_" + name, Help: help},
			func() float64 { return f(a.q.Stats()) }))
	}
	gauge("depth_readings", "Readings stored and not yet acknowledged by the cloud.", func(s queue.Stats) float64 { return float64(s.Depth) })
	gauge("bytes", "Encoded bytes of the stored readings.", func(s queue.Stats) float64 { return float64(s.Bytes) })
	gauge("file_bytes", "Size of the queue database file (the quota applies to it).", func(s queue.Stats) float64 { return float64(s.FileBytes) })
	gauge("quota_bytes", "The queue's disk quota.", func(queue.Stats) float64 { return float64(a.cfg.Queue.MaxBytes) })
	gauge("oldest_unsent_age_seconds", "Age of the oldest reading not yet acknowledged by the cloud.", func(s queue.Stats) float64 {
		if s.OldestReceived == 0 {
			return 0
		}
		return time.Since(time.UnixMicro(s.OldestReceived)).Seconds()
	})
	gauge("blocked", "1 while the queue is full under the block policy (producers are not acknowledged).", func(s queue.Stats) float64 {
		if s.Blocked {
			return 1
		}
		return 0
	})
	gauge("dead_letters", "Rejected payloads kept for inspection.", func(s queue.Stats) float64 { return float64(s.DeadLetters) })
	gauge("damaged_files", "Damaged queue files moved aside (queue.on_corrupt: quarantine) and still in the data folder.",
		func(queue.Stats) float64 { return float64(len(a.damagedFiles())) })
	counter("appended_readings_total", "Readings committed.", func(s queue.Stats) float64 { return float64(s.Appended) })
	counter("duplicate_readings_total", "Readings dropped as redeliveries (natural key seen before).", func(s queue.Stats) float64 { return float64(s.Duplicates) })
	counter("dropped_readings_total", "Readings dropped by the drop-oldest policy.", func(s queue.Stats) float64 { return float64(s.Dropped) })
	counter("acked_readings_total", "Readings deleted after the cloud acknowledged them.", func(s queue.Stats) float64 { return float64(s.Acked) })
	counter("commits_total", "Queue transactions committed (group commits).", func(s queue.Stats) float64 { return float64(s.Commits) })
}

// damagedFiles lists the damaged queue files moved aside that are still
// in the data folder.
func (a *Agent) damagedFiles() []string {
	files, err := queue.DamagedFiles(filepath.Join(a.cfg.Data, QueueFile))
	if err != nil {
		a.log.Debug("listing damaged queue files", "err", err)
	}
	return files
}

// Health reports the agent's state.
func (a *Agent) Health() Health {
	st := a.q.Stats()
	h := Health{Status: "ok", Gateway: a.cfg.Gateway, Version: a.version, Uptime: time.Since(a.started).Round(time.Second).String(),
		Clock: healthClock(a.clk.Status()), MQTT: a.mqttDescription()}
	h.Queue = HealthQueue{Depth: st.Depth, FileBytes: st.FileBytes, QuotaBytes: int64(a.cfg.Queue.MaxBytes),
		Dropped: st.Dropped, Duplicates: st.Duplicates, DeadLetters: st.DeadLetters, Blocked: st.Blocked, Policy: a.cfg.Queue.Policy}
	if st.OldestReceived != 0 {
		h.Queue.OldestUnsentSecs = time.Since(time.UnixMicro(st.OldestReceived)).Seconds()
	}
	uerr := a.up.Health()
	h.Uplink = healthUplink(a.up.Stats(), uerr)
	if uerr != nil {
		h.Status = "failing"
		h.Reasons = append(h.Reasons, "uplink: "+uerr.Error())
	}
	if st.Blocked {
		h.Status = "failing"
		h.Reasons = append(h.Reasons, "queue full under the block policy: producers are not acknowledged")
	}
	if damaged := a.damagedFiles(); len(damaged) > 0 {
		h.Queue.DamagedFiles = damaged
		if h.Status == "ok" {
			h.Status = "degraded"
		}
		h.Reasons = append(h.Reasons, fmt.Sprintf("queue: %d damaged queue file(s) moved aside (queue.on_corrupt: quarantine), "+
			"their unsent readings lost; inspect, then delete them to clear this: %s", len(damaged), strings.Join(damaged, ", ")))
	}
	if !h.Clock.Synced && h.Status == "ok" {
		h.Status = "degraded"
		h.Reasons = append(h.Reasons, "clock: "+h.Clock.Reason)
	}
	if a.ext != nil {
		h.Intake = healthIntake(a.ext.Stats())
	} else {
		h.Intake = healthIntake(a.emb.Stats())
	}
	if a.loc != nil {
		h.Local = healthLocal(a.loc.Stats())
	}
	return h
}

// reportHealth appends the agent's own health as readings of the device
// named after the gateway, so it travels with the telemetry.
func (a *Agent) reportHealth(ctx context.Context) error {
	t := time.NewTicker(a.cfg.Health.Every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		rs := a.healthReadings()
		if _, err := a.q.TryAppend(ctx, rs); err != nil && !errors.Is(err, context.Canceled) {
			// Full under the block policy: health readings are skipped
			// rather than queued behind producers; /healthz says why.
			a.log.Debug("health readings not stored", "err", err)
		}
	}
}

func (a *Agent) healthReadings() []protocol.Reading {
	now, flags := a.clk.Now()
	h := a.Health()
	mk := func(name, unit string, v float64) protocol.Reading {
		return protocol.Reading{Device: a.cfg.Gateway, Name: name, Unit: unit, Kind: protocol.KindFloat, Value: v,
			Time: now, Received: now, Flags: flags}
	}
	mb := func(name string, v bool) protocol.Reading {
		return protocol.Reading{Device: a.cfg.Gateway, Name: name, Kind: protocol.KindBool, Bool: v, Time: now, Received: now, Flags: flags}
	}
	return []protocol.Reading{
		mk(protocol.HealthQueueDepth, "count", float64(h.Queue.Depth)),
		mk(protocol.HealthQueueBytes, "B", float64(h.Queue.FileBytes)),
		mk(protocol.HealthOldestUnsent, "s", float64(int64(h.Queue.OldestUnsentSecs*1000))/1000),
		mk(protocol.HealthDropped, "count", float64(h.Queue.Dropped)),
		mb(protocol.HealthClockSynced, h.Clock.Synced),
		mb(protocol.HealthUplinkOK, h.Uplink.Error == ""),
	}
}
