// Package node is the sensor-node runtime: it samples sensors on their
// schedules and publishes their readings as SenML-CBOR packs over MQTT,
// buffers them while the broker is unreachable, announces itself with a
// birth message and a last will, and obeys commands.
//
// # Topics
//
//	tributary/v1/devices/{device}/telemetry     SenML-CBOR packs (protocol.TelemetryTopic), QoS 1 by default
//	tributary/v1/devices/{device}/status        retained Status: birth on every connect, the last will, shutdown
//	tributary/v1/devices/{device}/cmd/{name}    commands in: interval, ping (protocol.CommandFilter)
//	tributary/v1/devices/{device}/reply/{name}  a Reply to each command (ReplyTopic)
//
// # Sampling
//
// One goroutine and one timer sample every sensor. Each sensor has its
// own interval; its ticks fall where the node's clock shows a multiple of
// the interval (plus Config.Phase) and stay on that grid (next = prev +
// interval, measured on the monotonic clock). When sampling falls behind
// (a slow Sense, an overloaded host), the ticks that passed are skipped
// and counted in Stats.MissedTicks. The readings of a sample share one
// time, the node's Clock when Sense returned, and go into one pack;
// Config.BatchSamples > 1 coalesces several samples per pack. A failed
// Sense is counted and logged (at most once a minute per sensor) and
// produces no reading.
//
// # Buffering and delivery
//
// The bound on what is held in RAM is the node's, not paho's. Packs wait
// in the node's FIFO queue, which holds at most Config.BufferReadings
// readings; when it is full the oldest packs are dropped and every reading
// in them is counted in Stats.Dropped. A single sender goroutine per node
// moves packs from the queue to paho only while the connection is open
// (IsConnectionOpen), and at most Config.MaxInflight of them are
// unacknowledged at a time. It waits on the oldest in-flight token and
// reaps tokens in order, so no goroutine is started per publish.
//
// Paho is used so that it never queues on its own: auto-reconnect and
// connect-retry are off (with auto-reconnect on, paho accepts publishes
// while reconnecting and stores them without bound, and on resume it
// completes the original tokens as if they had succeeded), and the session
// is clean with an in-memory store. When a connection is lost, paho
// completes every pending publish token with an error before reporting the
// loss; the sender puts those packs back at the front of the queue, in
// order, and reconnects itself with jittered exponential backoff
// (Config.ReconnectBackoff up to MaxReconnectBackoff). Packs are therefore
// published in order, and a pack whose PUBACK was lost with the
// connection is published again: delivery is at least once, and readings
// carry a natural key (device, name, time) for deduplication. At QoS 0 a
// pack counts as published once paho wrote it.
//
// # Status and commands
//
// On every connect the node publishes a retained birth Status ("online",
// its firmware, sensors and intervals) on the status topic, whose retained
// last will is {"state":"offline","reason":"lost"}. On a clean stop (ctx
// done) it flushes the queue for at most Config.DrainTimeout, publishes
// {"state":"offline","reason":"shutdown"} and disconnects, so the broker
// discards the will; readings still unpublished are counted in
// Stats.Unsent. Commands: cmd/interval changes the sampling interval of
// one sensor or all (see Reply for payloads) and republishes the birth
// status; cmd/ping replies with the node's Stats.
//
// # Cost
//
// A connected node runs 12 goroutines: its own two (sampler, and the
// sender that runs Run) and paho v1.5.1's ten per connection. Measured
// with BenchmarkFleet (2,000 nodes, one 3-measurement sensor each, 1 s
// interval, against mosquitto): about 40 KB of goroutine stacks and 17 KB
// of heap per node, plus what the buffer holds while disconnected (the
// encoded pack, ~25-40 bytes a reading). Sampling, encoding and queueing a
// sample allocates nothing (BenchmarkSample); packs are recycled through a
// pool once acknowledged.
//
// A connection returned by Options.Dial may be closed from outside to
// simulate a network cut: the node wraps it so that paho sees a lost
// connection at once (paho ignores "use of closed network connection"
// errors, taking them for its own Close).
package node
