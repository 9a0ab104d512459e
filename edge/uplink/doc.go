// Package uplink ships readings from the gateway's durable queue to the
// cloud's ingest API (POST {URL}/v1/ingest, a protocol.Batch compressed
// with zstd or gzip, "Authorization: Bearer <token>") and deletes them from
// the queue only once the cloud has acknowledged them.
//
// # Guarantees
//
//   - A reading is deleted from the queue (Source.Ack) only after a 2xx
//     from the cloud for a batch that holds it, whose body parses as the
//     cloud's acknowledgement ({"gateway", "epoch", "first", "last", ...})
//     and names this gateway and exactly the batch's epoch and sequence
//     range. Every other outcome keeps it: nothing is dropped, by the
//     uplink, for any answer. A 2xx with another body (a proxy's or
//     captive portal's page, another gateway's answer) is retried like a
//     5xx, counted (tributary_uplink_failures_total{cause="bad_ack"}) and
//     logged.
//   - The token never crosses the network unencrypted unless asked to: a
//     plain http:// URL is accepted only to this host (127.0.0.1, ::1,
//     localhost) or with Config.Insecure.
//   - A batch is a contiguous seq range [first, last] of one queue epoch.
//     Batches never overlap one another; a range is never sent twice at
//     the same time. A batch is re-sent only when its answer was not a
//     2xx (a lost acknowledgement, a timeout); the cloud deduplicates by
//     (gateway, epoch, seq), so each reading is stored once.
//   - Delivery is at least once across restarts: what was sent but not
//     yet acknowledged when the gateway stopped is sent again.
//   - A batch whose epoch is no longer the queue's is never acked.
//
// # Batching
//
// A batch holds at most Config.MaxReadings readings (default 5,000) and
// Config.MaxBytes encoded bytes before compression (default 1 MiB; a
// single larger reading travels alone). The byte limit is kept with an
// upper bound computed as readings are added, following
// protocol.AppendBatch, so it holds without encoding twice. A partial
// batch of fresh readings is sent when its oldest reading has waited
// Config.MaxAge (default 1s) since the gateway received it (and never more
// than MaxAge after the uplink first saw it, whatever the clock says).
// Config.MaxInFlight requests (default 2) run at once. Encoders and
// buffers are reused: steady state costs a few allocations per batch and
// none per reading.
//
// # Backlog
//
// Two cursors walk the queue. At start everything stored is backlog; fresh
// readings are those numbered after the queue's tail. Whenever more than a
// batch has piled up at the fresh end (after an outage, on a slow link),
// the fresh cursor jumps to the newest batch's worth and what it skipped
// joins the backlog. When both ends have a batch ready, about
// Config.BacklogShare of the batches (default 0.5, by smooth weighted
// round robin) come from the oldest end and the rest from the fresh end,
// so live data keeps flowing while a backlog drains; when only one end
// has data it gets every batch. The backlog end skips ranges in flight and
// gaps (readings the queue dropped); when it meets the fresh end there is
// one cursor again.
//
// # Retries
//
// All requests share one retry gate, so an outage or a Retry-After pauses
// the whole uplink rather than each batch separately:
//
//   - network errors, timeouts (Config.RequestTimeout, default 30s), 5xx,
//     429, and 4xx other than those below: retry after exponential backoff
//     with full jitter (a delay drawn from [0, b], b from 500ms doubling
//     to 60s, growing once per round of failures, reset by a success);
//   - 429 and 503 with Retry-After (seconds or an HTTP date): no request
//     before that time (plus up to an eighth more; capped at an hour);
//   - 401 and 403: logged as "token rejected for gateway X", counted,
//     reported by Health, and retried with the same backoff: it never
//     spins, and it recovers by itself when the token is fixed;
//   - 413: the batch is split in half and each half sent (recursively);
//     later batches are limited to half the refused size;
//   - 400 (malformed): a bug in the gateway or the cloud, never a reason
//     to lose data. The cloud's JSON error message is logged at Error and
//     counted. The batch is bisected to isolate what the cloud refuses:
//     halves it takes are acknowledged; a refused half is bisected again,
//     down to single readings, unless both halves of a split are refused
//     (then the fault is not one reading but, say, a version or gateway
//     problem, and both are kept whole). Refused ranges are parked: kept
//     in the queue, not acked, retried every Backoff.Max, reported by
//     Health (ErrRefused) and Stats.ParkedReadings, while other batches
//     keep flowing. Past 16 parked ranges or two batches of parked
//     readings the uplink stops forming batches and only retries the
//     parked ones: a cloud that refuses everything gets one request per
//     range per Backoff.Max, not a flood, and nothing is deleted. A
//     reading the gateway itself cannot encode is handled the same way.
//
// The queue's Ack failing after a 2xx is retried with backoff; if the
// gateway stops first, the batch is sent again after a restart and the
// cloud deduplicates it.
//
// # Shutdown
//
// When Run's context ends, no new batch is formed and no retry or parked
// wait continues; requests in progress may finish, and be acked, for up
// to Config.DrainTimeout (default 10s), after which they are abandoned
// (their readings stay in the queue) and Run returns an error saying so.
//
// # Observability
//
// Stats returns counters (batches and readings acked, requests, retries,
// splits, raw and compressed bytes, failures by cause, batches from each
// end) and state (in flight, backoff, parked readings, last success, last
// error). WithRegisterer exports the same as tributary_uplink_* metrics.
// Repeated failures are logged at most once a minute per kind, with the
// number suppressed.
package uplink
