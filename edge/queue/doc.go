// Package queue is the gateway's durable queue: readings are acknowledged
// to producers only once they are on disk, and deleted only when the cloud
// has acknowledged them.
//
// # Guarantees
//
//   - Durable before acknowledged: Append returns only after the bbolt
//     commit holding its readings is fsynced. Ack returns only after the
//     deletion is. Killed at any instant (kill -9, power cut), the queue
//     reopens with every acknowledged reading intact, nothing acknowledged
//     as deleted back, and no damage; the power-failure test re-executes the
//     test binary and kills it with SIGKILL mid-stream to prove it.
//   - Atomic appends: an Append's readings are stored together or not at
//     all, with consecutive sequence numbers (seqs) that only grow; seqs are
//     never reused within an epoch, and a new file gets a new random epoch.
//   - At most once per natural key: a reading whose (device, name, time) is
//     among the last DedupeWindow stored ones (a QoS 1 redelivery, a retry
//     after a crash) is dropped and counted, also across restarts. Keys are
//     compared by a 64-bit salted hash: two distinct keys collide with
//     probability about n²/2⁶⁵ per window (1e-9 for n = 200,000).
//   - Bounded: the database file never grows past MaxBytes (free pages
//     included). When full, Block makes Append wait (TryAppend fails with
//     ErrFull) until acknowledgements free space; DropOldest deletes the
//     oldest readings, counts each one (AppendResult.Dropped,
//     Stats.Dropped) and logs each drop event with its seq range.
//   - Damage is reported, not served: Open checks every reachable page of
//     an existing file before bbolt maps it (error ErrCorrupt, never a
//     crash), and each entry carries a CRC-32C: Read moves a damaged entry
//     to the dead letters and counts it instead of returning garbage or
//     stalling. With Options.OnCorrupt Quarantine, Open moves a damaged
//     file aside instead (renamed queue.db.damaged-{UTC time}, never
//     deleted; DamagedFiles lists them) and starts a new queue with a new
//     epoch; Queue.Quarantined says so. A file locked by another process
//     is never taken for damaged.
//
// # File layout
//
// One bbolt file (page size 4 KiB, freelist not persisted) with buckets:
//
//	meta         "format" → 1; "epoch" → random nonzero uint64;
//	             "salt" → dedupe hash salt; "state" → next seq and the
//	             lifetime counters (appended, duplicates, dropped, acked,
//	             corrupt, next dead-letter key); all big-endian uint64
//	entries      8-byte big-endian seq → encoded reading (see encoding.go:
//	             CRC, kind byte, varints, length-prefixed strings; ~50 bytes)
//	dedupe       8-byte seq of the first hash → up to 64 8-byte hashes of
//	             the natural keys of consecutive stored seqs
//	deadletters  8-byte sequence → encoded DeadLetter
//
// Depth, bytes, the head and the in-memory dedupe set are rebuilt at Open
// by one scan. Keys are appended in order, so the buckets are written with
// FillPercent 1.0.
//
// # Group commit
//
// One writer goroutine owns all write transactions. Append encodes and
// hashes its readings on the caller's goroutine, then queues a request;
// the writer takes everything pending (up to MaxBatch readings, default
// 20,000; one Append is never split) plus pending acks and dead letters,
// writes them in one transaction, commits with fsync and releases all
// callers. It starts the next commit as soon as the previous returns, so
// batches grow with load without any timer. The request channels are
// bounded (256 requests beyond the batch in progress): past that, Append
// blocks, honouring its context; that is the queue's backpressure, and it
// reaches MQTT clients as delayed PUBACKs.
//
// # Quota
//
// bbolt never shrinks its file and grows it in steps of AllocSize, set to
// MaxBytes/32 (32 KiB to 16 MiB). Before each commit the writer estimates
// the pages the new entries need (simulating bbolt's page packing) against
// the free pages plus the growth room left under the limit, and admits
// appends in FIFO order while they fit. bbolt's own MaxSize is set on
// every transaction as a hard stop: if an estimate is short, bbolt refuses
// the commit (nothing is written), the writer estimates more
// conservatively and retries. Appends may use the file up to MaxBytes
// minus a reserve (8 pages + MaxBytes/256) kept for acknowledgements,
// which may use it all, so an Ack can always commit. Near the quota the
// writer briefly holds off readers when starting a transaction so that
// bbolt reuses every page freed by earlier commits (pages freed by a
// transaction are reusable only by later ones, so DropOldest deletes the
// oldest entries in one commit and stores the new readings in the next).
// The dedupe window is capped at MaxBytes/64 keys (1/8 of the file) and
// the dead letters at MaxBytes/16 bytes, so bookkeeping cannot starve
// readings. A file found larger than MaxBytes (the quota was lowered) is
// compacted at Open, or as soon as enough pages are free.
//
// # Limits
//
// MaxBytes is 0 (unlimited) or at least 1 MiB. One Append may take at most
// a quarter of MaxBytes (ErrTooLarge). Open reads the whole file twice
// (verification, then bbolt's freelist rebuild), about a second per GiB
// from flash. Memory: the dedupe set keeps between DedupeWindow and twice
// as many keys in two generations of maps (it forgets a generation at a
// time), roughly 10-20 bytes per key: a few MB for 200,000.
package queue
