package intake

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/listeners"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/tributary-iot/tributary/internal/defaults"
	"github.com/tributary-iot/tributary/internal/tlsfiles"
	"github.com/tributary-iot/tributary/protocol"
)

// EmbeddedConfig configures the embedded broker.
type EmbeddedConfig struct {
	// Listen is the TCP address devices connect to; default ":1883".
	Listen string
	// TLS, when CertFile is set, serves MQTT over TLS.
	TLS tlsfiles.Server
	// Gateway is the agent's own device id, reserved for the agent:
	// telemetry under it is rejected (ReasonReserved), other topics under
	// it are refused to every client but admins, and no user or client
	// certificate may carry it.
	Gateway string
	// AllowAnonymous admits clients that present neither a username nor a
	// client certificate, on any listener; the broker logs a warning at
	// every start. Without it, anonymous clients are admitted only when no
	// authentication is configured (no Passwords, no TLS.ClientCAFile) and
	// Listen is a loopback address; a listener reachable from the network
	// with no authentication is refused by Validate (ErrUnauthenticated).
	AllowAnonymous bool
	// Passwords, when set, checks the username and password of every
	// client that presents a username (edge/devicecreds: argon2id hashes,
	// never the passwords); a client presenting an unknown username or a
	// wrong password is refused. The gateway's own id is refused as a
	// username.
	Passwords Passwords
	// StrictDeviceIdentity lets a device publish and subscribe only under
	// tributary/v1/devices/{its id}/, its id being its certificate's
	// common name, else its verified username; its last will too. An
	// anonymous client has no id. Telemetry under another id is rejected
	// (dead-lettered, acknowledged, not forwarded); other device topics
	// are refused by ACL (mochi disconnects an MQTT 3.1.1 client), a will
	// on them at CONNECT. Admin users are exempt. Nil means on when Passwords
	// or TLS.ClientCAFile is set, off otherwise; true needs one of them.
	StrictDeviceIdentity *bool
	// MaxClients bounds the open connections, whether or not they have
	// sent CONNECT; one more is closed at once. Default 10,000.
	MaxClients int
	// MaxClientsPerSource bounds the open connections from one address,
	// except loopback addresses (the gateway itself), so that one host on
	// the network cannot take every place. Default 256.
	MaxClientsPerSource int
	// ConnectTimeout is how long a new connection has to send CONNECT
	// (TLS handshake included) before it is closed. Default 10s.
	ConnectTimeout time.Duration
	// MaxInFlight bounds the messages decoded and appended at once across
	// clients; default DefaultMaxInFlight.
	MaxInFlight int
	// MaxPacketBytes is the largest MQTT packet accepted; a larger one
	// disconnects its client (mochi refuses to read it). Default 1 MiB,
	// above protocol.MaxPackBytes so that an oversized pack is still read
	// and dead-lettered rather than refused forever.
	MaxPacketBytes int
	// SessionExpiry bounds how long a disconnected persistent session
	// (subscriptions, queued commands) is kept; default 24h.
	SessionExpiry time.Duration
	// ClientQueue bounds each client's outbound queue (messages forwarded
	// to it, e.g. commands); mochi drops beyond it. Default 256.
	ClientQueue int
	// ClientInflight bounds each client's unacknowledged outbound QoS 1/2
	// messages; default 256.
	ClientInflight int
}

// Passwords checks device passwords; *devicecreds.Verifier is one.
type Passwords interface {
	// Check returns nil when password is username's, else why not;
	// source is the client's remote address (host:port), against which a
	// checker may count failures.
	Check(source, username string, password []byte) error
	// Lookup reports whether username has a password, and whether it is
	// an admin: exempt from StrictDeviceIdentity (consoles, debugging
	// subscribers).
	Lookup(username string) (known, admin bool)
}

func (c *EmbeddedConfig) defaults() {
	defaults.Set(&c.Listen, ":1883")
	if c.StrictDeviceIdentity == nil {
		strict := c.authenticated()
		c.StrictDeviceIdentity = &strict
	}
	defaults.Set(&c.MaxClients, 10_000)
	defaults.Set(&c.MaxClientsPerSource, 256)
	defaults.Set(&c.ConnectTimeout, 10*time.Second)
	defaults.Set(&c.MaxInFlight, DefaultMaxInFlight)
	defaults.Set(&c.MaxPacketBytes, 1<<20)
	defaults.Set(&c.ClientQueue, 256)
	defaults.Set(&c.ClientInflight, 256)
	defaults.Set(&c.SessionExpiry, 24*time.Hour)
}

// authenticated reports whether clients can prove who they are
// (passwords or client certificates).
func (c *EmbeddedConfig) authenticated() bool { return c.Passwords != nil || c.TLS.ClientCAFile != "" }

// anonymous reports whether anonymous clients are admitted.
func (c *EmbeddedConfig) anonymous() bool {
	return c.AllowAnonymous || (!c.authenticated() && LoopbackAddr(c.Listen))
}

// LoopbackAddr reports whether a listen address (host:port) accepts
// connections from this host only: a loopback IP or "localhost". An empty
// host (":1883") listens on every interface.
func LoopbackAddr(listen string) bool {
	host, _, err := net.SplitHostPort(listen)
	if err != nil {
		return false
	}
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Validate checks the configuration, with defaults applied to zero
// fields, and says what to fix.
func (c EmbeddedConfig) Validate() error {
	c.defaults()
	var errs []error
	bad := func(format string, a ...any) { errs = append(errs, fmt.Errorf("intake: embedded: "+format, a...)) }
	if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		bad("listen %q is not host:port (e.g. :1883): %v", c.Listen, err)
	}
	if err := c.TLS.Validate(); err != nil {
		bad("tls: %v", err)
	}
	if c.Passwords != nil && c.Gateway != "" {
		if known, _ := c.Passwords.Lookup(c.Gateway); known {
			bad("device %q has a password, but it is the gateway's own id, reserved for the agent: remove it (tributary-agent device remove %s)",
				c.Gateway, c.Gateway)
		}
	}
	if !c.authenticated() && !c.AllowAnonymous && !LoopbackAddr(c.Listen) {
		errs = append(errs, fmt.Errorf("%w: listen %q is reachable from the network and no authentication is configured: "+
			"add device passwords (tributary-agent device add) or client_ca_file, or set allow_anonymous to accept anonymous devices", ErrUnauthenticated, c.Listen))
	}
	if *c.StrictDeviceIdentity && !c.authenticated() {
		bad("strict_identity needs device passwords or client_ca_file: an anonymous client has no verified id")
	}
	if c.MaxClients < 1 || c.MaxInFlight < 1 || c.ClientQueue < 1 || c.ClientInflight < 1 || c.ClientInflight > 65535 {
		bad("max_clients %d, max_in_flight %d, client_queue %d must be at least 1 and client_inflight %d within 1..65535",
			c.MaxClients, c.MaxInFlight, c.ClientQueue, c.ClientInflight)
	}
	if c.MaxClientsPerSource < 1 || c.ConnectTimeout <= 0 {
		bad("max_clients_per_source %d must be at least 1 and connect_timeout %s positive", c.MaxClientsPerSource, c.ConnectTimeout)
	}
	if c.MaxPacketBytes < protocol.MaxPackBytes+1024 {
		bad("max_packet_bytes %d is below %d (the largest pack plus room for the topic)", c.MaxPacketBytes, protocol.MaxPackBytes+1024)
	}
	if c.SessionExpiry < time.Second || c.SessionExpiry > 136*365*24*time.Hour {
		bad("session_expiry %s must be at least 1s", c.SessionExpiry)
	}
	return errors.Join(errs...)
}

// Embedded is an MQTT broker (mochi-mqtt) whose devices' telemetry goes to
// a Store: each QoS 1 PUBACK is written only after the readings are
// durable. Other topics (status, commands, replies) are brokered as usual.
type Embedded struct {
	cfg    EmbeddedConfig
	core   *core
	ln     net.Listener
	pw     Passwords // nil: no passwords
	anon   bool
	strict bool
	srv    *mqtt.Server
	ran    atomic.Bool
	once   sync.Once // closes ln

	// pending are the hook calls in progress; watch cancels those whose
	// client has gone (taken over, timed out), so a stale read loop never
	// waits on the store forever.
	pmu     sync.Mutex
	pending map[*pending]struct{}
}

type pending struct {
	cl     *mqtt.Client
	cancel context.CancelFunc
}

// watchEvery is how often hook calls are checked for gone clients.
const watchEvery = 250 * time.Millisecond

// NewEmbedded checks cfg (after defaults), reads the TLS files and binds
// the listener, so Addr is known and a busy port is reported at once. Run
// serves; Close releases the listener of an intake that never ran.
func NewEmbedded(cfg EmbeddedConfig, store Store, opts Options) (*Embedded, error) {
	cfg.defaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	e := &Embedded{cfg: cfg, pw: cfg.Passwords, anon: cfg.anonymous(), strict: *cfg.StrictDeviceIdentity,
		pending: map[*pending]struct{}{}}
	tc, err := cfg.TLS.Load()
	if err != nil {
		return nil, fmt.Errorf("intake: embedded: tls: %w", err)
	}
	c, err := newCore("embedded", store, &opts, cfg.MaxInFlight, -1, cfg.Gateway)
	if err != nil {
		return nil, err
	}
	e.core = c
	raw, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("intake: embedded: listen: %w", err)
	}
	c.conns = newLimitListener(raw, cfg.MaxClients, cfg.MaxClientsPerSource, cfg.ConnectTimeout, c.log, c.limit)
	var ln net.Listener = c.conns
	if tc != nil {
		ln = tls.NewListener(ln, tc)
	}
	e.ln = ln
	c.log = c.log.With("listen", ln.Addr().String(), "tls", tc != nil)
	return e, nil
}

// Addr is the address the broker listens on (useful with port 0).
func (e *Embedded) Addr() string { return e.ln.Addr().String() }

// Stats returns the intake's counters.
func (e *Embedded) Stats() Stats { return e.core.stats() }

// Devices returns the device status table (status topics and last wills).
func (e *Embedded) Devices() []Device { return e.core.devices.list() }

// Close releases the listener if Run was never called; after Run it does
// nothing (Run closes everything when its ctx ends). Close is idempotent.
func (e *Embedded) Close() error {
	if e.ran.CompareAndSwap(false, true) {
		e.once.Do(func() { e.ln.Close() })
	}
	return nil
}

// Run serves devices until ctx ends, then cancels the Appends in progress
// (their messages are not acknowledged: devices publish them again),
// disconnects every client and returns nil. It may be called once.
func (e *Embedded) Run(ctx context.Context) error {
	if !e.ran.CompareAndSwap(false, true) {
		return ErrRunning
	}
	defer e.once.Do(func() { e.ln.Close() })
	caps := mqtt.NewDefaultServerCapabilities()
	caps.MaximumClients = int64(e.cfg.MaxClients)
	caps.MaximumSessionExpiryInterval = uint32(min(e.cfg.SessionExpiry/time.Second, 1<<32-1))
	caps.MaximumMessageExpiryInterval = int64(e.cfg.SessionExpiry / time.Second)
	caps.MaximumClientWritesPending = int32(e.cfg.ClientQueue)
	caps.MaximumInflight = uint16(e.cfg.ClientInflight)
	caps.ReceiveMaximum = 64 // MQTT 5 inbound window; the hook handles one message per client at a time anyway
	caps.MaximumPacketSize = uint32(e.cfg.MaxPacketBytes)
	caps.TopicAliasMaximum = 64
	srv := mqtt.New(&mqtt.Options{
		Capabilities:           caps,
		Logger:                 e.core.base.With("component", "mqtt-broker", "listen", e.ln.Addr().String()),
		SysTopicResendInterval: 30,
	})
	e.srv = srv
	if err := srv.AddHook(&hook{e: e, ctx: ctx}, nil); err != nil {
		return fmt.Errorf("intake: embedded: %w", err)
	}
	if err := srv.AddListener(listeners.NewNet("tributary", e.ln)); err != nil {
		return fmt.Errorf("intake: embedded: %w", err)
	}
	if err := srv.Serve(); err != nil {
		srv.Close()
		return fmt.Errorf("intake: embedded: %w", err)
	}
	e.core.connected.Store(true)
	e.core.log.Info("embedded broker serving", "max_clients", e.cfg.MaxClients,
		"anonymous", e.anon, "passwords", e.pw != nil, "strict_identity", e.strict)
	if e.cfg.AllowAnonymous {
		e.core.log.Warn("anonymous MQTT clients are accepted (allow_anonymous): anyone who can reach the listener can publish and subscribe"+
			" without credentials", "listen", e.ln.Addr().String())
	}

	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		e.watch(ctx)
	}()
	<-ctx.Done()
	e.core.connected.Store(false)
	// Hook calls see ctx cancelled: Appends end unacknowledged, so no
	// client read loop holds up srv.Close (which waits for them all).
	srv.Close()
	wg.Wait()
	return nil
}

// watch cancels hook calls whose client connection has closed.
func (e *Embedded) watch(ctx context.Context) {
	t := time.NewTicker(watchEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		e.pmu.Lock()
		for p := range e.pending {
			if p.cl.Closed() {
				p.cancel()
			}
		}
		e.pmu.Unlock()
	}
}

func (e *Embedded) track(ctx context.Context, cl *mqtt.Client) (context.Context, func()) {
	ctx, cancel := context.WithCancel(ctx)
	p := &pending{cl: cl, cancel: cancel}
	e.pmu.Lock()
	e.pending[p] = struct{}{}
	e.pmu.Unlock()
	return ctx, func() {
		e.pmu.Lock()
		delete(e.pending, p)
		e.pmu.Unlock()
		cancel()
	}
}

// identity returns who a client is: its verified certificate's common
// name, else its username; admin for an Admin user.
func (e *Embedded) identity(cl *mqtt.Client) (id string, admin bool) {
	if tc, ok := cl.Net.Conn.(*tls.Conn); ok {
		if cs := tc.ConnectionState(); len(cs.VerifiedChains) > 0 && len(cs.PeerCertificates) > 0 {
			return cs.PeerCertificates[0].Subject.CommonName, false
		}
	}
	u := string(cl.Properties.Username)
	if e.pw != nil && u != "" {
		if known, admin := e.pw.Lookup(u); known {
			return u, admin // authenticate checked the password
		}
	}
	return "", false // anonymous: a username nobody checked is no identity
}

// authenticate decides whether a client may connect: its credentials,
// then its last will.
func (e *Embedded) authenticate(cl *mqtt.Client, pk packets.Packet) bool {
	if refusal := e.credentials(cl, pk); refusal != "" {
		e.refused(cl, refusal)
		return false
	}
	if refusal := e.willRefusal(cl); refusal != "" {
		e.refused(cl, refusal)
		return false
	}
	return true
}

// refused logs (rate-limited) why a client was refused at CONNECT.
func (e *Embedded) refused(cl *mqtt.Client, why string) {
	if ok, n := e.core.limit.Allow("auth"); ok {
		e.core.log.Warn("client refused: "+why, "client_id", truncate(cl.ID, 200),
			"username", truncate(string(cl.Properties.Username), 200), "remote", cl.Net.Remote, "suppressed", n)
	}
}

// credentials checks a client's certificate or password; it returns why
// the client is refused, or "".
func (e *Embedded) credentials(cl *mqtt.Client, pk packets.Packet) string {
	if tc, ok := cl.Net.Conn.(*tls.Conn); ok {
		if cs := tc.ConnectionState(); len(cs.VerifiedChains) > 0 && len(cs.PeerCertificates) > 0 {
			// A certificate signed by ClientCAFile.
			if e.cfg.Gateway != "" && cs.PeerCertificates[0].Subject.CommonName == e.cfg.Gateway {
				return "the certificate's common name is the gateway's own id, reserved for the agent"
			}
			return ""
		}
	}
	user := string(pk.Connect.Username)
	if user != "" && e.pw != nil {
		if e.cfg.Gateway != "" && user == e.cfg.Gateway {
			return "the username is the gateway's own id, reserved for the agent"
		}
		if err := e.pw.Check(cl.Net.Remote, user, pk.Connect.Password); err != nil {
			return err.Error()
		}
		return ""
	}
	if !e.anon {
		return "anonymous clients are not allowed"
	}
	return ""
}

// willRefusal returns why a client's last will is refused, or "": a will
// may go where the client may publish, never on a telemetry topic (a will
// bypasses the store: it would be forwarded but never stored or checked).
func (e *Embedded) willRefusal(cl *mqtt.Client) string {
	if atomic.LoadUint32(&cl.Properties.Will.Flag) == 0 {
		return ""
	}
	topic := cl.Properties.Will.TopicName
	if isTelemetryTopic(topic) {
		return fmt.Sprintf("last will on telemetry topic %q", truncate(topic, 200))
	}
	if !e.mayPublish(cl, topic) {
		return fmt.Sprintf("last will on topic %q, which the client may not publish to", truncate(topic, 200))
	}
	return ""
}

// The ACL: with StrictDeviceIdentity a client reaches only its own device
// topics. Telemetry publishes pass here and are checked (and
// dead-lettered) in OnPublish, so a device under the wrong id is not
// disconnected forever over them.

// mayPublish reports whether cl may publish on topic.
func (e *Embedded) mayPublish(cl *mqtt.Client, topic string) bool {
	if !strings.HasPrefix(topic, protocol.TopicPrefix) || isTelemetryTopic(topic) {
		return true
	}
	id, admin := e.identity(cl)
	if admin {
		return true
	}
	dev, _, _ := strings.Cut(topic[len(protocol.TopicPrefix):], "/")
	if e.cfg.Gateway != "" && dev == e.cfg.Gateway {
		return false // reserved for the agent
	}
	return !e.strict || (id != "" && dev == id)
}

// maySubscribe reports whether cl may subscribe to filter.
func (e *Embedded) maySubscribe(cl *mqtt.Client, filter string) bool {
	id, unrestricted := e.restriction(cl)
	return unrestricted || !filterReachesOthers(filter, id)
}

// restriction returns the device id cl is held to, or unrestricted
// (no StrictDeviceIdentity, or an admin).
func (e *Embedded) restriction(cl *mqtt.Client) (id string, unrestricted bool) {
	if !e.strict {
		return "", true
	}
	return e.identity(cl)
}

// filterReachesOthers reports whether a subscription filter can match a
// device topic (tributary/v1/devices/{device}/...) of a device other than
// id. A shared subscription ($share/{group}/{filter}) is judged by its
// filter.
func filterReachesOthers(filter, id string) bool {
	if rest, ok := strings.CutPrefix(filter, "$share/"); ok {
		_, filter, _ = strings.Cut(rest, "/")
	}
	want := []string{"tributary", "v1", "devices"}
	levels := strings.Split(filter, "/")
	for i, l := range levels {
		if l == "#" {
			return true
		}
		if i == len(want) { // the device level
			return id == "" || l != id
		}
		if l != "+" && l != want[i] {
			return false
		}
	}
	return false // too short to reach a device topic
}

// hook is the mochi hook: authentication, ACL and the telemetry path.
type hook struct {
	mqtt.HookBase
	e   *Embedded
	ctx context.Context // Run's
}

func (h *hook) ID() string { return "tributary-intake" }

func (h *hook) Provides(b byte) bool {
	return bytes.Contains([]byte{mqtt.OnConnect, mqtt.OnConnectAuthenticate, mqtt.OnACLCheck, mqtt.OnPublish, mqtt.OnWillSent}, []byte{b})
}

// OnConnect: the client sent CONNECT in time (ConnectTimeout).
func (h *hook) OnConnect(cl *mqtt.Client, _ packets.Packet) error {
	connected(cl.Net.Conn)
	return nil
}

func (h *hook) OnConnectAuthenticate(cl *mqtt.Client, pk packets.Packet) bool {
	return h.e.authenticate(cl, pk)
}

func (h *hook) OnACLCheck(cl *mqtt.Client, topic string, write bool) bool {
	if write {
		return h.e.mayPublish(cl, topic)
	}
	return h.e.maySubscribe(cl, topic)
}

// OnWillSent records a device's last will on its status topic.
func (h *hook) OnWillSent(cl *mqtt.Client, pk packets.Packet) {
	if device, ok := statusDevice(pk.TopicName); ok {
		h.e.core.status(device, pk.Payload)
	}
}

// OnPublish runs in the publishing client's read loop before mochi writes
// the PUBACK (server.go processPublish). For telemetry it returns only
// after Store.Append returned:
//
//   - appended: the packet, nil: mochi acks and forwards it to
//     subscribers (never retained);
//   - rejected and dead-lettered: packets.CodeSuccessIgnore: mochi acks
//     but neither retains nor forwards it;
//   - not stored (ctx ended, store failed, client gone):
//     packets.ErrRejectPacket, so mochi returns before acking; the
//     client is disconnected so it publishes the message again when it
//     reconnects.
func (h *hook) OnPublish(cl *mqtt.Client, pk packets.Packet) (packets.Packet, error) {
	e := h.e
	topic := pk.TopicName
	if !isTelemetryTopic(topic) {
		if device, ok := statusDevice(topic); ok {
			e.core.status(device, pk.Payload)
		}
		return pk, nil
	}
	pk.FixedHeader.Retain = false
	us, flags := e.core.clock.Now()
	msg := message{topic: topic, payload: pk.Payload, received: us, flags: flags, dup: pk.FixedHeader.Dup}
	if e.strict {
		if id, admin := e.identity(cl); !admin {
			msg.check = func(t protocol.Topic) (string, string) {
				if t.Device == id {
					return "", ""
				}
				return ReasonIdentity, fmt.Sprintf("client %q authenticated as %q published telemetry for device %q",
					truncate(cl.ID, 200), truncate(id, 200), t.Device)
			}
		}
	}
	ctx, done := e.track(h.ctx, cl)
	defer done()
	var accepted bool
	err := e.core.acquire(ctx)
	if err == nil {
		accepted, err = e.core.handle(ctx, &msg)
		e.core.release()
	}
	if err != nil {
		code := packets.ErrServerBusy
		if h.ctx.Err() != nil {
			code = packets.ErrServerShuttingDown
		}
		_ = e.srv.DisconnectClient(cl, code)
		return pk, packets.ErrRejectPacket
	}
	// mochi set the connection's deadline (read and write) before reading
	// this packet; after a long Append it may have passed, and the PUBACK
	// write would fail. The read loop sets it again before the next read.
	if cl.Net.Conn != nil {
		_ = cl.Net.Conn.SetWriteDeadline(time.Now().Add(10 * time.Second))
	}
	if !accepted {
		return pk, packets.CodeSuccessIgnore
	}
	return pk, nil
}
