package node

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/tributary-iot/tributary/firmware/sensor"
	"github.com/tributary-iot/tributary/internal/brokerurl"
	"github.com/tributary-iot/tributary/internal/defaults"
	"github.com/tributary-iot/tributary/internal/loglimit"
	"github.com/tributary-iot/tributary/protocol"
)

// Errors.
var (
	ErrClosed    = errors.New("node: closed")
	ErrRunning   = errors.New("node: Run was already called")
	ErrNoSensors = errors.New("node: no sensors: list at least one under sensors (or pass Options.Sensors)")
)

// Options are the parts of a node that are not configuration: its
// environment. Every field is optional.
type Options struct {
	// Buses opens the buses the configured sensors are on. Default: a new
	// sensor.HostBuses (the machine's real buses), closed by Close.
	Buses sensor.Buses
	// Sensors, if set, are already open and are sampled instead of opening
	// Config.Sensors. Config.Sensors may then be empty (each sensor is
	// sampled every Config.Interval and named sensor1, sensor2, ...) or
	// have one Spec per sensor, in order, for its name and interval. The
	// node does not close them.
	Sensors []sensor.Sensor
	// Clock gives the node's wall-clock time: reading times, status times
	// and the alignment of sampling ticks. Default time.Now. Ticks are
	// spaced by the monotonic clock, so a skewed Clock shifts times and
	// tick phase, not the sampling rate.
	Clock func() time.Time
	// Logger receives the node's logs, with a "device" attribute added.
	// Default slog.Default().
	Logger *slog.Logger
	// Dial opens the TCP connection to the broker (address host:port);
	// the node adds TLS on top for ssl:// brokers. Default nil: paho's own
	// dialer. Closing a connection Dial returned simulates a network cut.
	Dial func(ctx context.Context, network, address string) (net.Conn, error)
	// Firmware is the version reported in the birth message. Default "dev".
	Firmware string
}

// Node samples its sensors and publishes their readings to an MQTT broker.
// Build it with New, run it with Run, release it with Close.
type Node struct {
	cfg      Config // with defaults
	log      *slog.Logger
	clock    func() time.Time
	firmware string

	client    mqtt.Client
	topic     string // telemetry topic
	status    string // status topic
	qos       byte
	queue     *queue
	sampler   *sampler
	notify    chan struct{}     // cap 1: a pack was queued
	lost      chan struct{}     // cap 1: paho lost the connection
	cmds      chan mqtt.Message // commands, handed from paho's router to the sender
	cmdLog    loglimit.Limiter
	dropLog   loglimit.Limiter
	connLog   loglimit.Limiter
	started   time.Time
	stats     counters
	connected atomic.Bool

	ownSensors []sensor.Sensor // opened by New, closed by Close
	ownBuses   *sensor.HostBuses

	mu      sync.Mutex
	running bool
	closed  bool
	runCtx  context.Context // Run's; nil before
	cancel  context.CancelFunc
	done    chan struct{} // closed when Run returns
}

// Stats are a node's counters since New.
type Stats struct {
	Samples           uint64 `json:"samples"`            // successful Sense calls
	SenseErrors       uint64 `json:"sense_errors"`       // failed Sense calls
	Rejected          uint64 `json:"rejected"`           // measurements with a NaN/Inf value or a bad name or unit, not published
	MissedTicks       uint64 `json:"missed_ticks"`       // ticks skipped because sampling fell behind
	ReadingsPublished uint64 `json:"readings_published"` // readings acknowledged by the broker (QoS 1) or written (QoS 0)
	PacksPublished    uint64 `json:"packs_published"`    // packs (MQTT messages) likewise
	Dropped           uint64 `json:"dropped"`            // readings dropped because the buffer was full
	Unsent            uint64 `json:"unsent"`             // readings still unpublished when Run stopped
	Buffered          int    `json:"buffered"`           // readings waiting to be published now
	BufferedPacks     int    `json:"buffered_packs"`     // packs waiting to be published now
	Inflight          int    `json:"inflight"`           // packs published and not yet acknowledged now
	Reconnects        uint64 `json:"reconnects"`         // successful connections after the first
	Connected         bool   `json:"connected"`          // connected to the broker now
}

type counters struct {
	samples, senseErrors, rejected, missedTicks atomic.Uint64
	readings, packs, dropped, unsent            atomic.Uint64
	reconnects                                  atomic.Uint64
	inflight                                    atomic.Int64
}

// Stats returns the node's counters. Safe to call at any time.
func (n *Node) Stats() Stats {
	packs, readings := n.queue.len()
	return Stats{
		Samples:           n.stats.samples.Load(),
		SenseErrors:       n.stats.senseErrors.Load(),
		Rejected:          n.stats.rejected.Load(),
		MissedTicks:       n.stats.missedTicks.Load(),
		ReadingsPublished: n.stats.readings.Load(),
		PacksPublished:    n.stats.packs.Load(),
		Dropped:           n.stats.dropped.Load(),
		Unsent:            n.stats.unsent.Load(),
		Buffered:          readings,
		BufferedPacks:     packs,
		Inflight:          int(n.stats.inflight.Load()),
		Reconnects:        n.stats.reconnects.Load(),
		Connected:         n.connected.Load(),
	}
}

// Device returns the node's device id.
func (n *Node) Device() string { return n.cfg.Device }

// New validates cfg, opens the configured sensors (unless opts.Sensors
// are given) and prepares the MQTT client. It does not connect: Run does.
func New(cfg Config, opts Options) (*Node, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	n := &Node{
		cfg:      cfg,
		clock:    opts.Clock,
		firmware: opts.Firmware,
		topic:    protocol.TelemetryTopic(cfg.Device),
		status:   protocol.StatusTopic(cfg.Device),
		qos:      byte(*cfg.QoS),
		notify:   make(chan struct{}, 1),
		lost:     make(chan struct{}, 1),
		cmds:     make(chan mqtt.Message, 8),
	}
	if n.clock == nil {
		n.clock = time.Now
	}
	defaults.Set(&n.firmware, "dev")
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	n.log = log.With("device", cfg.Device)
	n.queue = newQueue(cfg.BufferReadings, func(p *pack) {
		total := n.stats.dropped.Add(uint64(p.readings))
		if ok, suppressed := n.dropLog.Allow(); ok {
			n.log.Warn("buffer full: dropped the oldest readings", "readings", p.readings,
				"dropped_total", total, "buffer_readings", cfg.BufferReadings, "suppressed", suppressed)
		}
	})

	sources, err := n.openSensors(cfg, opts)
	if err != nil {
		return nil, err
	}
	n.sampler = &sampler{n: n, sources: sources, wake: make(chan struct{}, 1)}

	mo, err := n.clientOptions(opts.Dial)
	if err != nil {
		n.closeSensors()
		return nil, err
	}
	n.client = mqtt.NewClient(mo)
	return n, nil
}

func (n *Node) openSensors(cfg Config, opts Options) ([]*source, error) {
	var sources []*source
	add := func(sen sensor.Sensor, spec *sensor.Spec, i int) {
		src := &source{sen: sen, spec: spec, desc: sen.String()}
		d := cfg.Interval
		if spec != nil {
			d = spec.Interval // withDefaults filled it
			src.id = spec.Name
			defaults.Set(&src.id, spec.Kind)
		}
		defaults.Set(&src.id, fmt.Sprintf("sensor%d", i+1))
		for _, o := range sources {
			if o.id == src.id {
				src.id = fmt.Sprintf("%s#%d", src.id, i+1)
				break
			}
		}
		src.interval.Store(int64(d))
		sources = append(sources, src)
	}
	if opts.Sensors != nil {
		if len(cfg.Sensors) != 0 && len(cfg.Sensors) != len(opts.Sensors) {
			return nil, fmt.Errorf("node: %d sensors passed in Options.Sensors but %d configured: configure none, or one spec per sensor",
				len(opts.Sensors), len(cfg.Sensors))
		}
		for i, sen := range opts.Sensors {
			var spec *sensor.Spec
			if len(cfg.Sensors) != 0 {
				spec = &cfg.Sensors[i]
			}
			add(sen, spec, i)
		}
	} else {
		buses := opts.Buses
		if buses == nil {
			n.ownBuses = &sensor.HostBuses{}
			buses = n.ownBuses
		}
		for i := range cfg.Sensors {
			sen, err := sensor.Open(context.Background(), buses, cfg.Sensors[i])
			if err != nil {
				var se *sensor.SpecError
				if errors.As(err, &se) {
					se.Index = i + 1
				}
				n.closeSensors()
				return nil, fmt.Errorf("node: %w", err)
			}
			n.ownSensors = append(n.ownSensors, sen)
			add(sen, &cfg.Sensors[i], i)
		}
	}
	if len(sources) == 0 {
		n.closeSensors()
		return nil, ErrNoSensors
	}
	return sources, nil
}

func (n *Node) closeSensors() error {
	var errs []error
	for _, s := range n.ownSensors {
		if err := s.Close(); err != nil {
			errs = append(errs, fmt.Errorf("node: close %s: %w", s, err))
		}
	}
	n.ownSensors = nil
	if n.ownBuses != nil {
		if err := n.ownBuses.Close(); err != nil {
			errs = append(errs, fmt.Errorf("node: %w", err))
		}
		n.ownBuses = nil
	}
	return errors.Join(errs...)
}

// clientOptions builds paho's options. See the package doc for why
// auto-reconnect is off and sessions are clean.
func (n *Node) clientOptions(dial func(context.Context, string, string) (net.Conn, error)) (*mqtt.ClientOptions, error) {
	cfg := &n.cfg
	u, err := brokerurl.Parse(cfg.Broker)
	if err != nil {
		return nil, fmt.Errorf("node: config: %w", err)
	}
	mo := mqtt.NewClientOptions().
		AddBroker(u.String()).
		SetClientID(cfg.ClientID).
		SetUsername(cfg.Username).
		SetPassword(cfg.Password).
		SetProtocolVersion(4). // MQTT 3.1.1
		SetCleanSession(true).
		SetAutoReconnect(false).
		SetConnectRetry(false).
		SetOrderMatters(true).
		SetKeepAlive(cfg.KeepAlive).
		SetPingTimeout(min(cfg.KeepAlive, 10*time.Second)).
		SetConnectTimeout(cfg.ConnectTimeout).
		SetWriteTimeout(cfg.ConnectTimeout).
		SetStore(mqtt.NewMemoryStore()).
		SetBinaryWill(n.status, mustJSON(Status{State: StateOffline, Reason: ReasonLost}), n.qos, true).
		SetConnectionLostHandler(func(mqtt.Client, error) {
			select {
			case n.lost <- struct{}{}:
			default:
			}
		})
	if brokerurl.IsTLS(u) {
		tc, err := cfg.TLS.Load()
		if err != nil {
			return nil, fmt.Errorf("node: tls: %w", err)
		}
		mo.SetTLSConfig(tc)
	}
	if dial != nil {
		mo.SetCustomOpenConnectionFn(func(uri *url.URL, o mqtt.ClientOptions) (net.Conn, error) {
			n.mu.Lock()
			ctx := n.runCtx
			n.mu.Unlock()
			return openConn(ctx, dial, uri, o)
		})
	}
	return mo, nil
}

// openConn dials through the Dial hook and adds TLS for ssl:// brokers.
// A stop (ctx) aborts it.
func openConn(ctx context.Context, dial func(context.Context, string, string) (net.Conn, error), uri *url.URL, o mqtt.ClientOptions) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, o.ConnectTimeout)
	defer cancel()
	raw, err := dial(ctx, "tcp", uri.Host)
	if err != nil {
		return nil, err
	}
	conn := &hookConn{Conn: raw}
	if uri.Scheme != "ssl" {
		return conn, nil
	}
	tc := o.TLSConfig.Clone()
	defaults.Set(&tc.ServerName, uri.Hostname())
	c := tls.Client(conn, tc)
	if err := c.HandshakeContext(ctx); err != nil {
		conn.Close()
		return nil, err
	}
	return c, nil
}

// hookConn wraps a connection from the Dial hook so that closing it from
// outside (a simulated network cut) is seen by paho as a lost connection.
// Paho ignores read and write errors that say "use of closed network
// connection", taking them for its own Close; it would only notice at the
// next keep-alive timeout.
type hookConn struct {
	net.Conn
	closing atomic.Bool // paho closed it
}

var errCut = errors.New("node: connection cut: closed by the Dial hook's side")

func (c *hookConn) Close() error {
	c.closing.Store(true)
	return c.Conn.Close()
}

func (c *hookConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	return n, c.fix(err)
}

func (c *hookConn) Write(b []byte) (int, error) {
	n, err := c.Conn.Write(b)
	return n, c.fix(err)
}

func (c *hookConn) fix(err error) error {
	if err != nil && errors.Is(err, net.ErrClosed) && !c.closing.Load() {
		return errCut
	}
	return err
}

// Run samples and publishes until ctx is done, reconnecting whenever the
// connection is lost. On stop it flushes what it buffered (for at most
// Config.DrainTimeout), publishes the "offline"/"shutdown" status and
// disconnects cleanly, then returns nil. It can be called once.
func (n *Node) Run(ctx context.Context) error {
	n.mu.Lock()
	switch {
	case n.closed:
		n.mu.Unlock()
		return ErrClosed
	case n.running:
		n.mu.Unlock()
		return ErrRunning
	}
	n.running = true
	ctx, n.cancel = context.WithCancel(ctx)
	n.runCtx = ctx
	n.done = make(chan struct{})
	n.mu.Unlock()
	defer close(n.done)
	defer n.cancel()

	n.started = time.Now()
	samplerDone := make(chan struct{})
	go func() {
		defer close(samplerDone)
		n.sampler.run(ctx)
	}()
	n.run(ctx, samplerDone)
	return nil
}

// Close stops a running Run and waits for it, then closes the sensors and
// buses the node opened. It is idempotent.
func (n *Node) Close() error {
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		return nil
	}
	n.closed = true
	cancel, done := n.cancel, n.done
	n.mu.Unlock()
	if cancel != nil {
		cancel()
		<-done
	}
	return n.closeSensors()
}

// poke tells the sender that a pack was queued.
func (n *Node) poke() {
	select {
	case n.notify <- struct{}{}:
	default:
	}
}

var _ io.Closer = (*Node)(nil)
