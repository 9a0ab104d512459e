// Package ingest is the cloud's POST /v1/ingest: it authenticates a
// gateway's batch, writes the readings it has not stored before to the
// stream as per-device records, and acknowledges the batch.
//
// # Request
//
// "Authorization: Bearer <token>" names the gateway (401 when missing,
// unknown or revoked; 403 when the batch is another gateway's). The token
// is checked on the headers alone (a hash lookup): a request that fails
// it holds nothing, and its connection is closed without reading its body
// (HTTP/2: its stream is reset), so forged tokens, even naming a real gateway's id, cannot take that
// gateway's slots or anyone's.
//
// Then the request takes one of its gateway's Options.MaxInFlightPerGateway
// slots (default 8), held to the answer, or is answered 429 with
// Retry-After at once (tributary_ingest_gateway_busy_total{gateway}). The
// body is read under that slot only, within Options.ReadTimeout (default
// 2m, else 408), into a buffer that grows as bytes arrive: a slow sender
// holds its own gateway's slots, never the shared ones. Decoding and
// writing take one of the Options.MaxInFlight shared slots (default 32;
// 503 with Retry-After after SlotWait). Bodies being read cost at most
// MaxInFlightPerGateway × MaxBytes per gateway with a token. The body
// is a protocol.Batch (Content-Type application/vnd.tributary.batch+cbor,
// else 415) compressed per Content-Encoding: zstd, gzip or identity (else
// 415). It is read through a limit of Options.MaxBytes (default and at
// most protocol.MaxBatchBytes) both as received and decompressed, so a
// zip bomb costs a small multiple of that in memory and is answered 413.
// protocol.DecodeBatch errors are 400 with its message (413 for too many
// readings or a value over its limit); the decoder allocates in proportion
// to the readings a body carries, not to what it declares (a string table
// or row count), so a stream of tiny bombs leaves memory flat. A reading
// whose time is not absolute (before 2^28 s) is 400 too, because a stream
// record cannot carry it. Nothing of a refused batch is written. Every error is JSON
// {"error": "..."}; 429 and 503 carry Retry-After. A 200 answers
// {"gateway", "epoch", "first", "last", "stored", "duplicates", "refused"}
// and, when refused is not 0, "refused_reason" (see Per-gateway caps).
//
// # Stream records
//
// The batch's new readings are grouped by device (each device's in seq
// order) and encoded with protocol.EncodeRecords, split at 25 KiB,
// partition key the device id, and written to Options.Stream with
// Backend.Put in calls of at most 500 records and 5 MiB. When no device
// has records in two calls (the usual case: one record per device per
// batch) the calls run concurrently, so a store with group commit (the
// embedded one) makes them durable in one fsync; otherwise they run one
// after the other, keeping each device's records in order. Entries the
// backend throttles are retried with a short jittered backoff until
// Options.ThrottleWait (1s) after the writes began; then the answer is
// 429. A backend error is 503, and so is an ack log that cannot be
// written (a full disk: the message says so).
//
// # Per-gateway caps
//
// A gateway may send at most Options.MaxDevicesPerGateway devices (default
// 10,000, the agent's own intake bound) and Options.MaxSeriesPerGateway
// series, (device, metric) pairs (default 100,000): what one gateway,
// misconfigured or compromised, can make the cloud and the stream's
// consumers keep. The defaults fit one large gateway; with many gateways,
// lower them so that no single one can take all the places of the
// fleet-wide bounds downstream (the monitor's 10,000 devices and 4,096
// charted series, the detectors' anomaly.max_series). A gateway's first
// devices and series are admitted, in seq order; a reading of a new device
// when the gateway has its maximum, or of a new series when it has its
// maximum, is refused. Refused readings are not
// written, but the batch's whole range is acknowledged: the gateway deletes
// them instead of retrying for ever, and they are not lost silently. The
// 200 answer counts them ("refused") and says why ("refused_reason"), the
// cloud counts them per gateway (tributary_ingest_capped_readings_total
// {gateway, cap=devices|series}) and logs them (one line per gateway per
// minute). A resend of such a batch is answered as a duplicate.
//
// What was admitted is kept in the ack log's file (one key per series,
// saved before the batch is written; the day it was last sent is saved
// hourly by Run), so a restart changes nothing about which devices get
// through. A series not sent for Options.SeriesTTL (default 30 days) stops
// counting (Run), so retired devices free their place. The state is
// bounded by the caps: about 75 bytes per series with ten metrics per
// device (TestSeriesCapsMemory), at most 150, so 7.5 to 15 MB for a gateway
// at the default cap; tributary_ingest_tracked_series counts them. Lowering
// a cap refuses new series only; those admitted stay until they expire.
//
// # Deduplication
//
// The ack log (a bbolt file) keeps, per (gateway, epoch), the set of
// acknowledged seqs as sorted, merged ranges: normally one range (the
// contiguous prefix) and a few islands while a backlog drains. A batch
// whose seqs are all in the set is answered 200 again without writing; a
// batch that overlaps it writes only its other seqs. Requests of one
// (gateway, epoch) are serialised, so two overlapping requests can never
// both write a seq. The state is bounded: at most Options.MaxSpans ranges
// per epoch (the lowest are forgotten past it, counted), and an epoch idle
// for Options.EpochTTL (30 days) is forgotten (Run). Forgetting never
// loses readings; a resend of forgotten seqs is stored again.
//
// # Order of events and the at-least-once window
//
// For a batch with new seqs, under its (gateway, epoch) lock:
//
//  1. the new seqs are recorded as pending in the ack log (fsync);
//  2. their records are written with Backend.Put (durable on return);
//  3. the outcome is recorded (fsync): the batch's whole range becomes
//     acknowledged and leaves pending;
//  4. the answer is 200.
//
// A crash before 2 writes nothing. A crash after 3 loses only the answer:
// the gateway resends and the batch is recognised. A crash between the
// first durable Put in 2 and the fsync of 3 (the time of the remaining
// Put calls of that one batch plus one commit, typically milliseconds)
// leaves records in the stream that are not acknowledged; so does a
// backend that cannot say whether it wrote an entry (a timeout, a lost
// connection to Kinesis: ErrOutcomeUnknown, or a Put that fails as a
// whole). Such seqs stay pending, with the time they were marked.
//
// When the backend can be read back (Scanner: the embedded store), the
// next run reads the records that arrived from the oldest pending mark
// until its start, and keeps the natural keys of the readings of the
// gateways with pending seqs (at most 500,000). When such a gateway
// resends pending seqs, the readings found are acknowledged without being
// written again (tributary_ingest_recovered_readings_total): no
// duplicates across a crash. Without a Scanner (Kinesis), or for readings
// not found, the resend writes them again: they may then be in the stream
// twice, and tributary_ingest_possible_duplicate_readings_total counts
// them (an upper bound). Pending seqs are never silent: the next run logs
// them at start and tributary_ingest_uncertain_readings counts them until
// they are resent. Consumers can deduplicate by the natural key (device,
// name, time) in any case.
//
// A backend whose writes go on after Put reported them unknown (Settler:
// the Kafka producer keeps retrying them) would land them beside their
// resend: the gateway resends after its 503, often as a batch re-cut to
// another range, whose records then differ from those still in flight.
// So when a batch carries seqs still pending and the backend is a Settler
// and a Scanner, the ingest (under the batch's (gateway, epoch) lock, one
// such recovery at a time) first waits for the backend to settle, then
// reads the stream back from that key's oldest pending mark to now
// (reading at most 200,000 records), acknowledges the pending readings it
// finds without writing them again (counted in recovered_readings_total)
// and writes the rest, now known not to be in the stream
// (tributary_ingest_live_recoveries_total counts these recoveries). The
// wait and the reading share one Options.PutTimeout; a backend that has
// not settled by then, or a stream that cannot be read, is answered 503
// (live_recovery_failures_total): an unknown outcome is never
// acknowledged, and the gateway retries later. Past the 200,000 records,
// the readings not found are written again and count as possible
// duplicates. The memory is that of the batch (the natural keys of its
// pending readings). The embedded store and Kinesis are no Settlers: for
// them nothing of this changes.
//
// Outcomes that are known are exact: when some records are written and
// others are throttled or refused, the written seqs are acknowledged
// (unless that would fragment the set past MaxSpans; then they stay
// pending and count as possible duplicates) and the rest are cleared from
// pending, so the gateway's resend writes only what is missing.
//
// Backend writes run to completion (bounded by Options.PutTimeout) even
// when the client disconnects, so a gateway's timeout does not open the
// window; graceful shutdown (http.Server.Shutdown) lets requests in
// progress finish before Close.
//
// # Metrics
//
// tributary_ingest_requests_total{code}, request_seconds,
// requests_in_flight, busy_total, gateway_busy_total{gateway},
// slow_bodies_total, capped_readings_total{gateway, cap}, tracked_series,
// received_bytes_total{form=wire|raw},
// readings_total, duplicate_readings_total, duplicate_batches_total,
// backend_put_seconds, throttled_records_total,
// possible_duplicate_readings_total, uncertain_readings,
// recovered_readings_total, live_recoveries_total,
// live_recovery_failures_total,
// forgotten_ranges_total, expired_epochs_total.
package ingest
