package protocol

// Gateway health readings. The edge agent reports its own health as
// ordinary readings of the device named after its gateway id, so they travel
// with the telemetry; the cloud tells them apart by HealthPrefix. README.md,
// "Gateway health readings", gives each one's kind and unit.
const (
	// HealthPrefix starts the name of every gateway health reading.
	HealthPrefix = "agent."

	HealthQueueDepth   = HealthPrefix + "queue.depth"             // readings stored and not yet acknowledged
	HealthQueueBytes   = HealthPrefix + "queue.file_bytes"        // size of the queue file
	HealthOldestUnsent = HealthPrefix + "queue.oldest_unsent_age" // age of the oldest unacknowledged reading
	HealthDropped      = HealthPrefix + "queue.dropped"           // readings dropped by the drop-oldest policy
	HealthClockSynced  = HealthPrefix + "clock.synced"            // the gateway clock is known to be synchronised
	HealthUplinkOK     = HealthPrefix + "uplink.ok"               // the last upload succeeded
)
