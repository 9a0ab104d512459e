package intake

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"math"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"github.com/eclipse/paho.mqtt.golang/packets"

	"github.com/tributary-iot/tributary/internal/backoff"
	"github.com/tributary-iot/tributary/internal/brokerurl"
	"github.com/tributary-iot/tributary/internal/defaults"
	"github.com/tributary-iot/tributary/internal/tlsfiles"
	"github.com/tributary-iot/tributary/protocol"
)

// ExternalConfig configures an External intake.
type ExternalConfig struct {
	// Broker is the broker's URL: tcp://host:1883 or ssl://host:8883
	// (mqtt://, mqtts:// and tls:// are aliases).
	Broker string
	// Gateway is the gateway id; the default client id derives from it.
	Gateway string
	// ClientID identifies the agent's persistent session at the broker;
	// default "tributary-agent-{Gateway}". Two agents must never share it.
	ClientID string
	// Username and Password authenticate to the broker (optional).
	Username string
	Password string
	// TLS configures ssl:// brokers.
	TLS tlsfiles.Client
	// KeepAlive is the MQTT keepalive; default 30s.
	KeepAlive time.Duration
	// ConnectTimeout bounds a connection attempt (dial, TLS, CONNACK) and
	// a subscription; default 10s.
	ConnectTimeout time.Duration
	// ReconnectBackoff is the first wait after a failed connection
	// attempt, doubling up to MaxReconnectBackoff; defaults 1s and 1m.
	ReconnectBackoff    time.Duration
	MaxReconnectBackoff time.Duration
	// MaxInFlight bounds the messages decoded and appended at once;
	// default DefaultMaxInFlight.
	MaxInFlight int
	// MaxQueued bounds the messages waiting for an in-flight slot; more
	// are shed (left unacknowledged: the session drains and reconnects,
	// and the broker redelivers them). Default MaxInFlight. Set the
	// broker's max_inflight_messages to about MaxInFlight so this never
	// happens.
	MaxQueued int
	// Status also subscribes to device status topics (birth, last will)
	// for the Devices table.
	Status bool
}

// Validate checks the configuration, with defaults applied to zero
// fields, and says what to fix.
func (c ExternalConfig) Validate() error {
	c.defaults()
	var errs []error
	bad := func(format string, a ...any) { errs = append(errs, fmt.Errorf("intake: external: "+format, a...)) }
	if u, err := brokerurl.Parse(c.Broker); err != nil {
		bad("%v", err)
	} else if !brokerurl.IsTLS(u) && !c.TLS.IsZero() {
		bad("tls is set but broker %q is not TLS: use ssl://host:8883, or remove tls", c.Broker)
	}
	if c.ClientID == "" {
		bad("set gateway (the client id defaults to tributary-agent-{gateway}) or client_id")
	} else if len(c.ClientID) > 65535 || strings.ContainsAny(c.ClientID, "+#/") {
		bad("client_id %q must be at most 65535 bytes without '+', '#' or '/'", c.ClientID)
	}
	if c.Gateway != "" && !protocol.ValidDeviceID(c.Gateway) {
		bad("gateway %q must match %s", c.Gateway, protocol.DeviceIDPattern)
	}
	if c.Password != "" && c.Username == "" {
		bad("password is set without username")
	}
	if err := c.TLS.Validate(); err != nil {
		bad("tls: %v", err)
	}
	if c.KeepAlive < time.Second {
		bad("keepalive %s is below 1s", c.KeepAlive)
	}
	if c.ConnectTimeout <= 0 {
		bad("connect_timeout %s must be positive", c.ConnectTimeout)
	}
	if c.ReconnectBackoff <= 0 || c.MaxReconnectBackoff < c.ReconnectBackoff {
		bad("reconnect_backoff %s must be positive and at most max_reconnect_backoff %s", c.ReconnectBackoff, c.MaxReconnectBackoff)
	}
	if c.MaxInFlight < 1 || c.MaxQueued < 0 {
		bad("max_in_flight %d must be at least 1 and max_queued %d not negative", c.MaxInFlight, c.MaxQueued)
	}
	return errors.Join(errs...)
}

func (c *ExternalConfig) defaults() {
	defaults.Set(&c.KeepAlive, 30*time.Second)
	defaults.Set(&c.ConnectTimeout, 10*time.Second)
	defaults.Set(&c.ReconnectBackoff, time.Second)
	defaults.Set(&c.MaxReconnectBackoff, time.Minute)
	if c.ClientID == "" && c.Gateway != "" {
		c.ClientID = "tributary-agent-" + c.Gateway
	}
	defaults.Set(&c.MaxInFlight, DefaultMaxInFlight)
	defaults.Set(&c.MaxQueued, c.MaxInFlight)
}

// External subscribes to an outside MQTT broker and appends telemetry to a
// Store, acknowledging each QoS 1 message after its readings are durable.
type External struct {
	cfg    ExternalConfig
	broker string
	tls    *tls.Config
	core   *core
	ran    atomic.Bool
}

// NewExternal checks cfg (after applying defaults) and returns an External
// intake; Run connects it.
func NewExternal(cfg ExternalConfig, store Store, opts Options) (*External, error) {
	cfg.defaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	u, _ := brokerurl.Parse(cfg.Broker)
	e := &External{cfg: cfg, broker: u.String()}
	if brokerurl.IsTLS(u) {
		tc, err := cfg.TLS.Load()
		if err != nil {
			return nil, fmt.Errorf("intake: external: tls: %w", err)
		}
		e.tls = tc
	}
	c, err := newCore("external", store, &opts, cfg.MaxInFlight, cfg.MaxInFlight+cfg.MaxQueued, cfg.Gateway)
	if err != nil {
		return nil, err
	}
	c.log = c.log.With("broker", u.Redacted(), "client_id", cfg.ClientID)
	e.core = c
	return e, nil
}

// Stats returns the intake's counters.
func (e *External) Stats() Stats { return e.core.stats() }

// Devices returns the device status table (with ExternalConfig.Status).
func (e *External) Devices() []Device { return e.core.devices.list() }

// Run connects to the broker, subscribes and handles messages until ctx
// ends, reconnecting with backoff when the connection fails. On return
// every handler has finished: messages whose Append did not complete are
// not acknowledged, and the broker keeps them for the next run (same
// client id). Run returns nil when ctx ends; it may be called once.
func (e *External) Run(ctx context.Context) error {
	if !e.ran.CompareAndSwap(false, true) {
		return ErrRunning
	}
	retry := backoff.Backoff{Initial: e.cfg.ReconnectBackoff, Max: e.cfg.MaxReconnectBackoff}
	for ctx.Err() == nil {
		established, err := e.session(ctx)
		if ctx.Err() != nil {
			break
		}
		if established && !errors.Is(err, errStore) { // a failing store keeps backing off
			retry.Reset()
			if err == nil {
				continue // drained after shedding: reconnect at once
			}
		}
		// Jittered within [backoff/2, backoff]: spreads a fleet of gateways.
		wait := retry.Next()
		if ok, n := e.core.limit.Allow("connect"); ok {
			e.core.log.Warn("broker session failed or ended; reconnecting", "err", err, "retry_in", wait, "suppressed", n)
		}
		backoff.Sleep(ctx, wait)
	}
	return nil
}

// session is one connection to the broker.
//
// Paho calls onMessage on its router goroutine, one message at a time in
// arrival order (OrderMatters true); onMessage never blocks: it numbers
// the message and hands it to a goroutine of its own (at most MaxInFlight
// + MaxQueued at once, across sessions). Those append concurrently, so
// messages share group commits, and finish releases the PUBACKs in
// arrival order, as MQTT 3.1.1 requires of a client ([MQTT-4.6.0-2]: "It
// MUST send PUBACK packets in the order in which the corresponding PUBLISH
// packets were received"). A message that will not be acknowledged (shed,
// Append failed, session closing) stops the acknowledgements at its
// number: later messages may not be acknowledged before it, so the session
// drains, disconnects and reconnects, and the broker redelivers from there
// (the store dedupes what was already durable).
type session struct {
	mu       sync.Mutex
	closing  bool // new messages are left unacknowledged
	handlers sync.WaitGroup

	next uint64 // the next message's number; paho's router goroutine only

	amu    sync.Mutex
	base   uint64                  // the next number to acknowledge
	stopAt uint64                  // the first number that will never be acknowledged
	done   map[uint64]mqtt.Message // finished, waiting for base to reach them

	restart     chan struct{} // closed when the session must reconnect
	restartErr  error         // why; nil: shed, reconnect at once
	restartOnce sync.Once
	lost        chan struct{} // closed when paho lost the connection
	lostErr     error
	lostOnce    sync.Once
}

func newSession() *session {
	return &session{stopAt: math.MaxUint64, done: map[uint64]mqtt.Message{},
		restart: make(chan struct{}), lost: make(chan struct{})}
}

// enter registers a handler; false when the session is closing.
func (s *session) enter() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		return false
	}
	s.handlers.Add(1)
	return true
}

// close stops new handlers and waits for the running ones.
func (s *session) close() {
	s.mu.Lock()
	s.closing = true
	s.mu.Unlock()
	s.handlers.Wait()
}

// reconnect asks the session loop to drain and reconnect; err says why
// (nil: at once, without backoff).
func (s *session) reconnect(err error) {
	s.restartOnce.Do(func() {
		s.mu.Lock()
		s.closing = true
		s.mu.Unlock()
		s.restartErr = err
		close(s.restart)
	})
}

// finish records that message seq is done: m to acknowledge it, nil when
// it must not be. It sends every PUBACK now due, in order.
func (s *session) finish(seq uint64, m mqtt.Message) {
	s.amu.Lock()
	defer s.amu.Unlock()
	switch {
	case m == nil && seq < s.stopAt:
		s.stopAt = seq
		for k := range s.done {
			if k >= seq {
				delete(s.done, k)
			}
		}
	case m != nil && seq < s.stopAt:
		s.done[seq] = m
	}
	for s.base < s.stopAt {
		m, ok := s.done[s.base]
		if !ok {
			break
		}
		delete(s.done, s.base)
		s.base++
		m.Ack()
	}
}

// errLost reports a connection paho lost; errStore a store failure, after
// which the session reconnects with backoff.
var (
	errLost  = errors.New("intake: connection lost")
	errStore = errors.New("intake: store failed; reconnecting so the broker redelivers the messages not acknowledged")
)

// session connects, subscribes and handles messages until ctx ends, the
// connection is lost, or a message could not be acknowledged (then it
// drains and returns; nil when Run should reconnect at once). established
// says whether it subscribed.
func (e *External) session(ctx context.Context) (established bool, err error) {
	s := newSession()
	// sctx ends waits for an in-flight slot once the session cannot ack
	// them; Appends already running finish under ctx.
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()

	o := mqtt.NewClientOptions().
		AddBroker(e.broker).
		SetClientID(e.cfg.ClientID).
		SetUsername(e.cfg.Username).
		SetPassword(e.cfg.Password).
		SetProtocolVersion(4). // MQTT 3.1.1
		SetCleanSession(false).
		SetAutoReconnect(false). // Run reconnects, with our backoff and logs
		SetConnectRetry(false).
		SetResumeSubs(false).  // we subscribe on every connect
		SetOrderMatters(true). // onMessage in arrival order; it never blocks
		SetAutoAckDisabled(true).
		SetKeepAlive(e.cfg.KeepAlive).
		SetPingTimeout(min(e.cfg.KeepAlive, 10*time.Second)).
		SetConnectTimeout(e.cfg.ConnectTimeout).
		SetWriteTimeout(e.cfg.ConnectTimeout).
		SetStore(outboundStore{mqtt.NewMemoryStore()}).
		SetDefaultPublishHandler(func(_ mqtt.Client, m mqtt.Message) { e.onMessage(ctx, sctx, s, m) }).
		SetConnectionLostHandler(func(_ mqtt.Client, err error) {
			s.lostOnce.Do(func() { s.lostErr = err; close(s.lost) })
		})
	if e.tls != nil {
		o.SetTLSConfig(e.tls)
	}
	c := mqtt.NewClient(o)
	tok := c.Connect()
	if err := wait(ctx, tok, e.cfg.ConnectTimeout+time.Second); err != nil {
		c.Disconnect(0)
		s.close()
		return false, fmt.Errorf("intake: connect: %w", err)
	}
	present := tok.(*mqtt.ConnectToken).SessionPresent()

	// Subscribe with no callback: every message reaches the default
	// handler, including those the broker sends for the persisted
	// subscription before this SUBSCRIBE is answered.
	filters := map[string]byte{protocol.TelemetryFilter: 1}
	if e.cfg.Status {
		filters[protocol.StatusFilter] = 1
	}
	st := c.SubscribeMultiple(filters, nil)
	err = wait(ctx, st, e.cfg.ConnectTimeout)
	if err == nil {
		for f, q := range st.(*mqtt.SubscribeToken).Result() {
			if q > 2 {
				err = fmt.Errorf("broker refused the subscription to %s (return code 0x%02x): check its ACL", f, q)
			}
		}
	}
	if err != nil {
		s.close()
		c.Disconnect(250)
		return false, fmt.Errorf("intake: subscribe: %w", err)
	}
	e.core.connected.Store(true)
	defer e.core.connected.Store(false)
	e.core.connects.Add(1)
	e.core.log.Info("connected and subscribed", "session_present", present, "filters", len(filters))

	select {
	case <-ctx.Done():
		// Handlers whose Append ends with ctx do not ack; those that
		// finished in time ack before the DISCONNECT (paho sends both
		// through one ordered channel).
		s.close()
		c.Disconnect(250)
		return true, nil
	case <-s.lost:
		cancel()
		s.close()
		return true, fmt.Errorf("%w: %v", errLost, s.lostErr)
	case <-s.restart:
		if s.restartErr == nil {
			e.core.log.Warn("too many messages waiting for the store: leaving the rest unacknowledged, "+
				"draining, then reconnecting so the broker redelivers them (set the broker's max_inflight_messages to about max_in_flight)",
				"max_in_flight", e.cfg.MaxInFlight, "max_queued", e.cfg.MaxQueued)
		}
		cancel() // nothing after the stop can be acknowledged: stop waiting
		s.close()
		c.Disconnect(250)
		return true, s.restartErr
	}
}

// wait waits for a paho token, ctx or a timeout.
func wait(ctx context.Context, t mqtt.Token, timeout time.Duration) error {
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case <-t.Done():
		return t.Error()
	case <-ctx.Done():
		return ctx.Err()
	case <-timer.C:
		return fmt.Errorf("no answer within %s", timeout)
	}
}

// onMessage takes one message on paho's router goroutine, in arrival
// order. It must not block: telemetry goes to a goroutine of its own.
func (e *External) onMessage(ctx, sctx context.Context, s *session, m mqtt.Message) {
	seq := s.next
	s.next++
	if !s.enter() {
		s.finish(seq, nil) // closing: redelivered on the next session
		return
	}
	topic := m.Topic()
	if device, ok := statusDevice(topic); ok {
		e.core.status(device, m.Payload())
		s.finish(seq, m)
		s.handlers.Done()
		return
	}
	if !e.core.reserve() {
		e.core.shed.Add(1)
		s.finish(seq, nil)
		s.reconnect(nil)
		s.handlers.Done()
		return
	}
	us, flags := e.core.clock.Now()
	go func() {
		defer s.handlers.Done()
		defer e.core.unreserve()
		if err := e.core.acquire(sctx); err != nil {
			s.finish(seq, nil)
			return
		}
		defer e.core.release()
		msg := message{topic: topic, payload: m.Payload(), received: us, flags: flags, dup: m.Duplicate()}
		if _, err := e.core.handle(ctx, &msg); err != nil {
			s.finish(seq, nil) // not durable: not acknowledged, redelivered
			if ctx.Err() == nil {
				s.reconnect(errStore)
			}
			return
		}
		s.finish(seq, m)
	}()
}

// outboundStore is paho's store without the inbound messages. With
// CleanSession false paho keeps every inbound QoS 1 PUBLISH ("i." keys)
// until its PUBACK is sent, and discards them on resume anyway (client.go
// resume: "invalid message type"); a message left unacknowledged would
// otherwise stay in memory until the next connection.
type outboundStore struct{ *mqtt.MemoryStore }

// Put implements mqtt.Store.
func (s outboundStore) Put(key string, m packets.ControlPacket) {
	if strings.HasPrefix(key, "i.") {
		return
	}
	s.MemoryStore.Put(key, m)
}
