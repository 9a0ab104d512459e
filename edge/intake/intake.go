package intake

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tributary-iot/tributary/edge/clock"
	"github.com/tributary-iot/tributary/internal/loglimit"
	"github.com/tributary-iot/tributary/protocol"
)

// Store is where intake puts readings. Append returns only once the
// readings are durable (committed and fsynced); intake acknowledges the
// producer after that and never before. Append may block for a long time
// (backpressure); intake does not acknowledge meanwhile.
type Store interface {
	Append(ctx context.Context, rs []protocol.Reading) error
	DeadLetter(ctx context.Context, topic, reason string, payload []byte) error
}

// Clock gives the receive time (µs since the epoch) and
// protocol.FlagClockUnsynced when the gateway's clock is not trusted.
// *clock.Clock implements it.
type Clock interface {
	Now() (us int64, flags protocol.Flags)
}

var _ Clock = (*clock.Clock)(nil)

// Errors.
var (
	// ErrRunning is returned by Run when it was already called.
	ErrRunning = errors.New("intake: Run called twice")
	// ErrUnauthenticated is returned (wrapped) by EmbeddedConfig.Validate
	// for a listener reachable from the network that would admit anyone.
	ErrUnauthenticated = errors.New("intake: embedded: anonymous MQTT on a non-loopback listener")
)

// Defaults.
const (
	DefaultMaxInFlight = 1024
	DefaultMaxDevices  = 10_000
	DefaultLogEvery    = time.Minute
	// DefaultFutureMargin is Options.FutureMargin's default.
	DefaultFutureMargin = 10 * time.Minute
)

// Options are what both intakes take besides their configuration.
type Options struct {
	// Clock stamps receive times and flags; nil means clock.New with
	// default options.
	Clock Clock
	// Logger; nil means slog.Default().
	Logger *slog.Logger
	// Registerer receives the intake's Prometheus collectors; nil means
	// they are not registered (Stats still works).
	Registerer prometheus.Registerer
	// MaxDevices bounds the device status table (status topics); zero
	// means DefaultMaxDevices.
	MaxDevices int
	// LogEvery is the least time between two log lines about the same
	// kind of problem (rejections by reason, store errors); zero means
	// DefaultLogEvery.
	LogEvery time.Duration
	// FutureMargin: a reading whose device time is more than this after
	// its receive time (a device clock ahead) is kept as it is, counted
	// (Stats.Future, tributary_intake_future_readings_total) and logged,
	// rate-limited. The cloud neither charts nor scores such readings.
	// Zero means DefaultFutureMargin; negative disables the check.
	FutureMargin time.Duration
}

// Rejection reasons: the values of tributary_intake_rejected_total's
// reason label and the code a dead letter's reason starts with.
const (
	ReasonTooLarge       = "too_large"        // payload over protocol.MaxPackBytes, or a value/unit over its limit
	ReasonBadTopic       = "bad_topic"        // not tributary/v1/devices/{device}/telemetry
	ReasonBadDeviceID    = "bad_device_id"    // {device} does not match protocol.DeviceIDPattern
	ReasonIdentity       = "identity"         // StrictDeviceIdentity: published under another device's id
	ReasonReserved       = "reserved"         // under the gateway's own id, or a reading named protocol.HealthPrefix...
	ReasonMalformed      = "malformed"        // not SenML JSON/CBOR, truncated, trailing bytes
	ReasonEmpty          = "empty"            // no records, or none with a value
	ReasonTooMany        = "too_many_records" // over protocol.MaxPackRecords
	ReasonBadName        = "bad_name"         // invalid resolved name
	ReasonNoValue        = "no_value"         // a record with neither value nor sum
	ReasonMultipleValues = "multiple_values"  // two of v/vs/vb/vd
	ReasonVersion        = "version"          // bver newer than RFC 8428
	ReasonMustUnderstand = "must_understand"  // unknown label ending in _
	ReasonWrongType      = "wrong_type"       // a field of the wrong type
	ReasonBadNumber      = "bad_number"       // NaN, Inf, time out of range
	ReasonDuplicateLabel = "duplicate_label"  // a label twice in one record
	ReasonInvalid        = "invalid"          // any other decoding error
)

// reasons lists every reason, in the order of the counters.
var reasons = [...]string{
	ReasonTooLarge, ReasonBadTopic, ReasonBadDeviceID, ReasonIdentity, ReasonReserved,
	ReasonMalformed, ReasonEmpty, ReasonTooMany, ReasonBadName, ReasonNoValue,
	ReasonMultipleValues, ReasonVersion, ReasonMustUnderstand, ReasonWrongType,
	ReasonBadNumber, ReasonDuplicateLabel, ReasonInvalid,
}

func reasonIndex(r string) int {
	for i, x := range reasons {
		if x == r {
			return i
		}
	}
	return len(reasons) - 1
}

// sentinelReasons maps protocol's sentinel errors to reasons.
var sentinelReasons = []struct {
	err    error
	reason string
}{
	{protocol.ErrTooLarge, ReasonTooLarge},
	{protocol.ErrBadDeviceID, ReasonBadDeviceID},
	{protocol.ErrBadTopic, ReasonBadTopic},
	{protocol.ErrSyntax, ReasonMalformed},
	{protocol.ErrEmpty, ReasonEmpty},
	{protocol.ErrTooMany, ReasonTooMany},
	{protocol.ErrBadName, ReasonBadName},
	{protocol.ErrNoValue, ReasonNoValue},
	{protocol.ErrMultipleValues, ReasonMultipleValues},
	{protocol.ErrVersion, ReasonVersion},
	{protocol.ErrMustUnderstand, ReasonMustUnderstand},
	{protocol.ErrType, ReasonWrongType},
	{protocol.ErrBadNumber, ReasonBadNumber},
	{protocol.ErrDuplicateLabel, ReasonDuplicateLabel},
}

// reasonOf names the reason for a protocol error.
func reasonOf(err error) string {
	for _, s := range sentinelReasons {
		if errors.Is(err, s.err) {
			return s.reason
		}
	}
	return ReasonInvalid
}

// Stats are an intake's counters since it was created.
type Stats struct {
	// Connected: External is connected and subscribed; Embedded is
	// serving.
	Connected bool
	// Connects counts External's established sessions.
	Connects uint64
	// Messages counts telemetry messages handled (decoded or rejected).
	Messages uint64
	// Duplicates counts messages the broker marked as redelivered (DUP).
	Duplicates uint64
	// Readings counts readings appended (durable).
	Readings uint64
	// Acked counts telemetry messages acknowledged: appended, or rejected
	// and dead-lettered.
	Acked uint64
	// Rejected counts rejected messages; RejectedBy splits them by reason
	// (only reasons seen).
	Rejected   uint64
	RejectedBy map[string]uint64
	// Future counts readings appended whose device time was more than
	// Options.FutureMargin after their receive time.
	Future uint64
	// AppendErrors counts messages left unacknowledged because Append
	// failed (the producer or broker sends them again).
	AppendErrors uint64
	// DeadLetterErrors counts rejected messages whose DeadLetter failed.
	DeadLetterErrors uint64
	// Shed counts messages External left unacknowledged because
	// MaxInFlight + MaxQueued were already accepted; the broker redelivers
	// them after a reconnect.
	Shed uint64
	// InFlight is the number of messages being decoded and appended now;
	// Waiting the number waiting for an in-flight slot.
	InFlight int64
	Waiting  int64
	// StatusMessages counts status (birth, will) messages seen; Devices
	// is the size of the device status table.
	StatusMessages uint64
	Devices        int
	// Connections is the number of open device connections (Embedded);
	// ConnectionsRefused counts the connections closed by reason
	// (Refused*; only reasons seen).
	Connections        int
	ConnectionsRefused map[string]uint64
}

// core is the message path both intakes share.
type core struct {
	mode string // "external" or "embedded": the metrics' mode label
	// gateway is the agent's own device id: reserved, with the
	// protocol.HealthPrefix reading names, for the agent's health.
	gateway string
	store   Store
	clock   Clock
	log     *slog.Logger
	base    *slog.Logger // the logger given, for components of our own (mochi)
	sem     chan struct{}
	// maxAccepted bounds the messages accepted and not finished (in
	// flight plus waiting); -1: unbounded.
	maxAccepted int64
	devices     *devices
	limit       *loglimit.Keyed
	conns       *limitListener // Embedded's; nil for External
	future      int64          // µs; readings stamped further ahead of reception are counted; <= 0: off

	connected                               atomic.Bool
	connects, messages, duplicates          atomic.Uint64
	readings, acked, rejected, appendErrors atomic.Uint64
	dlErrors, shed, statusMsgs, futures     atomic.Uint64
	rejectedBy                              [len(reasons)]atomic.Uint64
	inFlight, waiting, accepted             atomic.Int64
	appendHist                              prometheus.Histogram
}

func newCore(mode string, store Store, o *Options, maxInFlight, maxAccepted int, gateway string) (*core, error) {
	if store == nil {
		return nil, fmt.Errorf("intake: store is nil")
	}
	log := o.Logger
	if log == nil {
		log = slog.Default()
	}
	clk := o.Clock
	if clk == nil {
		clk = clock.New(clock.Options{Logger: log})
	}
	base := log
	log = log.With("component", "intake", "mode", mode)
	maxDev := o.MaxDevices
	if maxDev <= 0 {
		maxDev = DefaultMaxDevices
	}
	every := o.LogEvery
	if every <= 0 {
		every = DefaultLogEvery
	}
	future := o.FutureMargin
	if future == 0 {
		future = DefaultFutureMargin
	}
	c := &core{
		mode:        mode,
		gateway:     gateway,
		store:       store,
		clock:       clk,
		log:         log,
		base:        base,
		sem:         make(chan struct{}, maxInFlight),
		maxAccepted: int64(maxAccepted),
		devices:     newDevices(maxDev),
		limit:       &loglimit.Keyed{Every: every},
		future:      future.Microseconds(),
		appendHist: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:        "tributary_intake_append_duration_seconds",
			Help:        "Time Store.Append took for one message (until its readings were durable).",
			ConstLabels: prometheus.Labels{"mode": mode},
			Buckets:     prometheus.ExponentialBuckets(0.0005, 2.5, 12),
		}),
	}
	if o.Registerer != nil {
		if err := o.Registerer.Register(c); err != nil {
			return nil, fmt.Errorf("intake: register metrics: %w", err)
		}
	}
	return c, nil
}

// reserve counts a message accepted for handling; false when maxAccepted
// are already accepted (External sheds the message then).
func (c *core) reserve() bool {
	if n := c.accepted.Add(1); c.maxAccepted >= 0 && n > c.maxAccepted {
		c.accepted.Add(-1)
		return false
	}
	return true
}

func (c *core) unreserve() { c.accepted.Add(-1) }

// acquire takes an in-flight slot, waiting while ctx allows.
func (c *core) acquire(ctx context.Context) error {
	select {
	case c.sem <- struct{}{}:
		c.inFlight.Add(1)
		return nil
	default:
	}
	c.waiting.Add(1)
	defer c.waiting.Add(-1)
	select {
	case c.sem <- struct{}{}:
		c.inFlight.Add(1)
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (c *core) release() {
	c.inFlight.Add(-1)
	<-c.sem
}

// message is one telemetry message as received.
type message struct {
	topic    string
	payload  []byte
	received int64          // µs, from the clock when it arrived
	flags    protocol.Flags // from the clock
	dup      bool
	// check, when set, vets the parsed topic (identity); it returns a
	// reason and detail to reject the message.
	check func(protocol.Topic) (reason, detail string)
}

// handle decodes and appends one telemetry message. It returns nil when
// the message is to be acknowledged (appended, or rejected and
// dead-lettered) and an error when not (ctx ended, the store failed).
// The caller holds an in-flight slot (acquire).
func (c *core) handle(ctx context.Context, m *message) (accepted bool, err error) {
	c.messages.Add(1)
	if m.dup {
		c.duplicates.Add(1)
	}
	t, err := protocol.ParseTopic(m.topic)
	if err == nil && t.Kind != protocol.TopicTelemetry {
		err = fmt.Errorf("protocol: %w: %q is not a telemetry topic", protocol.ErrBadTopic, m.topic)
	}
	if err != nil {
		return false, c.reject(ctx, m, reasonOf(err), err.Error())
	}
	if c.gateway != "" && t.Device == c.gateway {
		return false, c.reject(ctx, m, ReasonReserved,
			fmt.Sprintf("device %q is the gateway's own id, reserved for the agent's health readings", t.Device))
	}
	if m.check != nil {
		if reason, detail := m.check(t); reason != "" {
			return false, c.reject(ctx, m, reason, detail)
		}
	}
	if len(m.payload) > protocol.MaxPackBytes {
		return false, c.reject(ctx, m, ReasonTooLarge,
			fmt.Sprintf("payload is %d bytes, limit %d", len(m.payload), protocol.MaxPackBytes))
	}
	rs, err := protocol.DecodeSenML(m.payload, protocol.DecodeOptions{Device: t.Device, Now: m.received, Flags: m.flags})
	if err != nil {
		return false, c.reject(ctx, m, reasonOf(err), err.Error())
	}
	for _, r := range rs {
		if strings.HasPrefix(r.Name, protocol.HealthPrefix) {
			return false, c.reject(ctx, m, ReasonReserved,
				fmt.Sprintf("reading %q: names starting with %q are reserved for the agent's health", truncate(r.Name, 200), protocol.HealthPrefix))
		}
	}
	start := time.Now()
	err = c.store.Append(ctx, rs)
	c.appendHist.Observe(time.Since(start).Seconds())
	if err != nil {
		c.appendErrors.Add(1)
		if ctx.Err() == nil {
			if ok, n := c.limit.Allow("append"); ok {
				c.log.Error("store append failed: message not acknowledged, the producer sends it again",
					"topic", m.topic, "readings", len(rs), "err", err, "suppressed", n)
			}
		}
		return false, fmt.Errorf("intake: append: %w", err)
	}
	c.readings.Add(uint64(len(rs)))
	c.acked.Add(1)
	c.checkFuture(m, rs)
	return true, nil
}

// checkFuture counts and logs (rate-limited) the readings stamped more
// than the future margin after their receive time: a device clock ahead.
// They are kept as they are; the cloud does not let them advance a
// series' clock.
func (c *core) checkFuture(m *message, rs []protocol.Reading) {
	if c.future <= 0 {
		return
	}
	var n uint64
	var first *protocol.Reading
	for i := range rs {
		if r := &rs[i]; r.Flags&protocol.FlagReceiverTime == 0 && r.Time-m.received > c.future {
			if first == nil {
				first = r
			}
			n++
		}
	}
	if n == 0 {
		return
	}
	c.futures.Add(n)
	if ok, sup := c.limit.Allow("future"); ok {
		c.log.Warn("readings stamped in the future: the device's clock is ahead of the gateway's; kept, but the cloud will not chart or score them",
			"device", first.Device, "reading", truncate(first.Name, 200),
			"ahead", time.Duration(first.Time-m.received)*time.Microsecond, "readings", n, "suppressed", sup)
	}
}

// reject counts, logs and dead-letters a bad message. It returns nil when
// the message is to be acknowledged: always, unless ctx ended before the
// dead letter was stored (then the message comes again and is rejected
// again).
func (c *core) reject(ctx context.Context, m *message, reason, detail string) error {
	c.rejected.Add(1)
	c.rejectedBy[reasonIndex(reason)].Add(1)
	if ok, n := c.limit.Allow("reject:" + reason); ok {
		c.log.Warn("message rejected and dead-lettered", "reason", reason, "topic", truncate(m.topic, 200),
			"bytes", len(m.payload), "detail", detail, "suppressed", n)
	}
	payload := m.payload
	if len(payload) > protocol.MaxPackBytes {
		detail += fmt.Sprintf(" (dead letter keeps the first %d bytes)", protocol.MaxPackBytes)
		payload = payload[:protocol.MaxPackBytes]
	}
	if err := c.store.DeadLetter(ctx, m.topic, reason+": "+detail, payload); err != nil {
		c.dlErrors.Add(1)
		if ctx.Err() != nil {
			return fmt.Errorf("intake: dead letter: %w", err)
		}
		if ok, n := c.limit.Allow("deadletter"); ok {
			c.log.Error("dead letter failed: rejected message acknowledged anyway", "reason", reason,
				"topic", truncate(m.topic, 200), "err", err, "suppressed", n)
		}
	}
	c.acked.Add(1)
	return nil
}

// status records a device's status (birth, last will) message.
func (c *core) status(device string, payload []byte) {
	c.statusMsgs.Add(1)
	c.devices.set(device, parseState(payload), time.Now())
}

func (c *core) stats() Stats {
	s := Stats{
		Connected:        c.connected.Load(),
		Connects:         c.connects.Load(),
		Messages:         c.messages.Load(),
		Duplicates:       c.duplicates.Load(),
		Readings:         c.readings.Load(),
		Future:           c.futures.Load(),
		Acked:            c.acked.Load(),
		Rejected:         c.rejected.Load(),
		AppendErrors:     c.appendErrors.Load(),
		DeadLetterErrors: c.dlErrors.Load(),
		Shed:             c.shed.Load(),
		InFlight:         c.inFlight.Load(),
		Waiting:          c.waiting.Load(),
		StatusMessages:   c.statusMsgs.Load(),
		Devices:          c.devices.len(),
	}
	if c.conns != nil {
		var refused [len(refusals)]uint64
		s.Connections, refused = c.conns.counts()
		for i, n := range refused {
			if n > 0 {
				if s.ConnectionsRefused == nil {
					s.ConnectionsRefused = make(map[string]uint64)
				}
				s.ConnectionsRefused[refusals[i]] = n
			}
		}
	}
	for i := range reasons {
		if n := c.rejectedBy[i].Load(); n > 0 {
			if s.RejectedBy == nil {
				s.RejectedBy = make(map[string]uint64)
			}
			s.RejectedBy[reasons[i]] = n
		}
	}
	return s
}

// Prometheus: core is a Collector reading the same counters as Stats.

var (
	descMessages   = desc("messages_total", "Telemetry messages handled (decoded or rejected).")
	descDuplicates = desc("duplicates_total", "Telemetry messages the broker marked as redelivered.")
	descReadings   = desc("readings_total", "Readings appended to the store (durable).")
	descFuture     = desc("future_readings_total", "Readings appended whose device time was more than the future margin (clock.future_margin) after the gateway's receive time: a device clock ahead.")
	descAcked      = desc("acked_total", "Telemetry messages acknowledged after their readings were durable or they were dead-lettered.")
	descRejected   = desc("rejected_total", "Telemetry messages rejected and dead-lettered, by reason.", "reason")
	descAppendErr  = desc("append_errors_total", "Telemetry messages not acknowledged because Store.Append failed.")
	descDLErr      = desc("dead_letter_errors_total", "Rejected messages whose Store.DeadLetter failed.")
	descShed       = desc("shed_total", "Messages left unacknowledged because too many were waiting (redelivered after a reconnect).")
	descInFlight   = descGauge("in_flight", "Telemetry messages being decoded and appended.")
	descWaiting    = descGauge("waiting", "Telemetry messages waiting for an in-flight slot.")
	descConnected  = descGauge("connected", "1 when connected to the broker and subscribed (external) or serving (embedded).")
	descConnects   = desc("connects_total", "Broker sessions established (external).")
	descStatus     = desc("status_messages_total", "Device status (birth, last will) messages seen.")
	descDevices    = descGauge("devices", "Devices in the status table.")
	descConns      = descGauge("connections", "Open device connections, CONNECT sent or not (embedded).")
	descConnsRef   = desc("connections_refused_total", "Device connections closed by the embedded broker's guards, by reason: "+
		"max_clients, per_source (max_clients_per_source), connect_timeout (no CONNECT in time).", "reason")
)

func desc(name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc("tributary_intake_"+name, help, append([]string{"mode"}, labels...), nil)
}

func descGauge(name, help string) *prometheus.Desc { return desc(name, help) }

// Describe implements prometheus.Collector.
func (c *core) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descMessages, descDuplicates, descReadings, descFuture, descAcked, descRejected,
		descAppendErr, descDLErr, descShed, descInFlight, descWaiting, descConnected, descConnects,
		descStatus, descDevices, descConns, descConnsRef} {
		ch <- d
	}
	c.appendHist.Describe(ch)
}

// Collect implements prometheus.Collector.
func (c *core) Collect(ch chan<- prometheus.Metric) {
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), append([]string{c.mode}, labels...)...)
	}
	gauge := func(d *prometheus.Desc, v float64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, c.mode)
	}
	counter(descMessages, c.messages.Load())
	counter(descDuplicates, c.duplicates.Load())
	counter(descReadings, c.readings.Load())
	counter(descFuture, c.futures.Load())
	counter(descAcked, c.acked.Load())
	for i, r := range reasons {
		counter(descRejected, c.rejectedBy[i].Load(), r)
	}
	counter(descAppendErr, c.appendErrors.Load())
	counter(descDLErr, c.dlErrors.Load())
	counter(descShed, c.shed.Load())
	counter(descConnects, c.connects.Load())
	counter(descStatus, c.statusMsgs.Load())
	gauge(descInFlight, float64(c.inFlight.Load()))
	gauge(descWaiting, float64(c.waiting.Load()))
	connected := 0.0
	if c.connected.Load() {
		connected = 1
	}
	gauge(descConnected, connected)
	gauge(descDevices, float64(c.devices.len()))
	if c.conns != nil {
		open, refused := c.conns.counts()
		gauge(descConns, float64(open))
		for i, r := range refusals {
			counter(descConnsRef, refused[i], r)
		}
	}
	c.appendHist.Collect(ch)
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}

// isTelemetryTopic reports whether topic is meant as a telemetry topic
// (the device id and shape are checked by protocol.ParseTopic later, so a
// malformed one is rejected rather than ignored).
func isTelemetryTopic(topic string) bool {
	return strings.HasPrefix(topic, protocol.TopicPrefix) && strings.HasSuffix(topic, "/telemetry")
}

// statusDevice returns the device of a valid status topic.
func statusDevice(topic string) (string, bool) {
	if !strings.HasSuffix(topic, "/status") {
		return "", false
	}
	t, err := protocol.ParseTopic(topic)
	if err != nil || t.Kind != protocol.TopicStatus {
		return "", false
	}
	return t.Device, true
}
