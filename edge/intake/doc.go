// Package intake takes device telemetry in over MQTT and writes it to the
// gateway's durable store, acknowledging each message to its producer only
// after the store said its readings are durable.
//
// Two intakes share one message path (Store, Clock, metrics, rejection
// handling):
//
//   - External (NewExternal) subscribes to an MQTT broker the site already
//     runs (mosquitto, EMQX, ...), with a persistent session so the broker
//     keeps QoS 1 messages while the agent is down.
//   - Embedded (NewEmbedded) is the broker: devices connect to the agent
//     itself (mochi-mqtt), with optional TLS, passwords, client
//     certificates and per-device topic ACLs.
//
// # Who may connect (Embedded)
//
// Anonymous clients are admitted on a loopback listener, or anywhere when
// EmbeddedConfig.AllowAnonymous says so (a warning at every start); a
// listener reachable from the network with neither Passwords nor
// TLS.ClientCAFile nor AllowAnonymous is refused (ErrUnauthenticated).
// With authentication StrictDeviceIdentity is on unless turned off: a
// device publishes, subscribes and leaves its last will only under its
// own id. A will is checked at CONNECT like a publish, and may never name
// a telemetry topic (mochi sends wills without the OnPublish hook, so it
// would bypass the store). The gateway's own id and readings named
// protocol.HealthPrefix... are the agent's: telemetry with them is
// rejected (ReasonReserved) by both intakes.
//
// Passwords are checked by EmbeddedConfig.Passwords; the agent passes an
// edge/devicecreds Verifier: argon2id hashes in a file, never the
// passwords, verifications cached, failed attempts throttled per source
// address so that CONNECTs cannot make the gateway derive keys forever.
//
// A listener wrapper (limitListener) bounds open connections in total
// (MaxClients) and per source address (MaxClientsPerSource, loopback
// excepted) and closes a connection that sends no CONNECT within
// ConnectTimeout; mochi itself reads CONNECT with no deadline. Each
// refusal is counted (tributary_intake_connections_refused_total).
//
// # Ack after commit
//
// External: paho runs with SetAutoAckDisabled(true) and calls the handler
// on its router goroutine in arrival order (SetOrderMatters(true),
// router.go matchAndDispatch). The handler never blocks: it numbers the
// message and hands it to a goroutine of the intake's own, so many
// messages are appended at once and share the store's group commits.
// Message.Ack (which queues the PUBACK: net.go ackFunc) is called only
// after Store.Append returned nil, and in arrival order, as MQTT 3.1.1
// requires of a client ([MQTT-4.6.0-2]; mosquitto and EMQX would accept
// any order, other brokers need not). A message that is not acknowledged
// (Append failed, shed) therefore holds back the acknowledgements of every
// later one: the session drains, disconnects and reconnects, and the
// broker redelivers from that message on; readings already durable come
// again and the store dedupes them by natural key. An ack paho cannot send
// because its connection ended is dropped (router.go: sendAckChan is nil
// after the router stops), never sent on a later connection.
//
// Embedded: mochi calls the OnPublish hook in the publishing client's read
// loop before it writes the PUBACK (server.go processPublish: hooks.
// OnPublish, then buildAck and WritePacket). The hook returns only after
// Store.Append returned. If Append fails, the hook returns
// packets.ErrRejectPacket (processPublish returns before acking) and
// disconnects the client, so the device keeps the message and publishes it
// again when it reconnects. One client's publishes are therefore handled
// one at a time, while many clients share a commit.
//
// # Bad input
//
// A payload over protocol.MaxPackBytes, a topic or device id that does not
// parse, a SenML error, telemetry under the gateway's id or naming a
// reading like the agent's health, or (Embedded, StrictDeviceIdentity) a
// device publishing under another's id is counted by reason
// (tributary_intake_rejected_total{reason}), logged (rate-limited), handed
// to Store.DeadLetter with the reason ("code: detail") and acknowledged: a
// bad payload never stalls intake and is never redelivered forever.
//
// A reading whose device time is more than Options.FutureMargin (default
// 10 min) after its receive time (a device clock ahead) is not bad input:
// it is stored unchanged, counted (tributary_intake_future_readings_total)
// and logged, rate-limited. The cloud keeps such readings from advancing
// a series' clock (charts, anomaly detectors).
//
// # Bounds
//
// At most MaxInFlight messages are decoded and appended at once (a
// semaphore). External: at most MaxInFlight + MaxQueued messages are
// accepted and unfinished (one goroutine each); beyond that a message is
// shed (left unacknowledged, counted), the session drains and reconnects,
// and the broker redelivers. Inbound messages are not kept in paho's store
// (see outboundStore). Embedded: each client has at most one message in
// the hook, so in-flight messages are bounded by MaxClients; mochi's
// per-client queues, inflight windows, packet size and session expiry are
// set explicitly (EmbeddedConfig). A hook call whose client has gone
// (keepalive expired, session taken over) is cancelled within
// watchEvery, so stale read loops do not pile up behind a blocked store.
//
// # Broker configuration (External)
//
// mosquitto's stock limits drop messages for a persistent subscriber that
// falls behind: max_queued_messages (1,000 per session) and
// max_inflight_messages (20: the most unacknowledged QoS 1 messages it
// sends the agent, which also caps how many messages share a commit).
// Raise both in the deploy configuration: max_inflight_messages about
// MaxInFlight (1000; 0 = unlimited makes the agent shed and reconnect
// under a backlog), max_queued_messages sized to the outage to survive
// (0 = unlimited, bounded by the broker's memory).
package intake
