package protocol

// Limits shared by every tier. A producer that exceeds one gets an error
// naming the limit; nothing is truncated silently.
const (
	// MaxPackBytes is the largest SenML pack (one MQTT payload) accepted.
	MaxPackBytes = 256 << 10
	// MaxPackRecords is the most SenML records one pack may hold.
	MaxPackRecords = 4096
	// MaxNameBytes is the longest resolved SenML name (metric name).
	MaxNameBytes = 255
	// MaxUnitBytes is the longest unit string.
	MaxUnitBytes = 32
	// MaxStringValueBytes is the longest vs (string) or vd (data) value.
	MaxStringValueBytes = 16 << 10
	// MaxDeviceIDBytes is the longest device id (see ValidDeviceID).
	MaxDeviceIDBytes = 128
	// MaxBatchReadings is the most readings one uplink batch may carry.
	MaxBatchReadings = 50_000
	// MaxBatchBytes is the largest encoded (uncompressed) uplink batch.
	MaxBatchBytes = 8 << 20
	// MaxRecordBytes is the largest stream record (the Kinesis limit).
	MaxRecordBytes = 1 << 20
	// TargetRecordBytes is the size stream records are split at where
	// possible: Kinesis bills PUT payload units of 25 KiB.
	TargetRecordBytes = 25 << 10
	// MaxTimeMicros bounds every time (absolute value, µs since the epoch:
	// 2^32 s, in the year 2106). Below it, a float64 of seconds holds every
	// microsecond exactly, so times survive SenML unchanged.
	MaxTimeMicros = maxTimeSeconds * 1_000_000
	// RelativeTimeLimit: a resolved SenML time below 2^28 seconds is relative
	// to the receiver's clock (RFC 8428 section 4.5.3).
	RelativeTimeLimit = 1 << 28
)

// maxTimeSeconds is MaxTimeMicros in seconds.
const maxTimeSeconds = 1 << 32
