package agent

import (
	"time"

	"github.com/tributary-iot/tributary/edge/clock"
	"github.com/tributary-iot/tributary/edge/intake"
	"github.com/tributary-iot/tributary/edge/local"
	"github.com/tributary-iot/tributary/edge/uplink"
)

// Health is the /healthz document. Every key is snake_case; times are
// RFC 3339 strings, durations Go duration strings ("1.5s") except where a
// key names its unit (oldest_unsent_seconds). Keys marked "omitted when
// ..." are left out then. The HTTP status is 503 while Status is
// "failing", 200 otherwise.
type Health struct {
	// Status is "ok", "degraded" (readings flow, but something needs a
	// look: an unsynchronised clock, a damaged queue file moved aside) or "failing" (the uplink is failing,
	// or the queue is full under the block policy).
	Status  string   `json:"status"`
	Reasons []string `json:"reasons,omitempty"` // why not ok; omitted when ok
	Gateway string   `json:"gateway"`
	Version string   `json:"version,omitempty"`
	Uptime  string   `json:"uptime"` // a Go duration, rounded to the second
	// MQTT is where readings come from: "external tcp://host:1883" or
	// "embedded 127.0.0.1:1883".
	MQTT   string       `json:"mqtt"`
	Queue  HealthQueue  `json:"queue"`
	Uplink HealthUplink `json:"uplink"`
	Clock  HealthClock  `json:"clock"`
	Intake HealthIntake `json:"intake"`
	Local  *HealthLocal `json:"local,omitempty"` // omitted without local sensors
}

// HealthQueue summarises the durable queue.
type HealthQueue struct {
	Depth            int64   `json:"depth"`                 // readings not yet acknowledged by the cloud
	FileBytes        int64   `json:"file_bytes"`            // size of the queue file (the quota applies to it)
	QuotaBytes       int64   `json:"quota_bytes"`           // queue.max_bytes
	OldestUnsentSecs float64 `json:"oldest_unsent_seconds"` // age of the oldest unsent reading; 0 when empty
	Dropped          uint64  `json:"dropped"`               // readings dropped by the drop-oldest policy
	Duplicates       uint64  `json:"duplicates"`            // redeliveries dropped (natural key seen before)
	DeadLetters      int     `json:"dead_letters"`          // rejected payloads kept for inspection
	Blocked          bool    `json:"blocked"`               // full under the block policy: producers wait
	Policy           string  `json:"policy"`                // block or drop-oldest
	// DamagedFiles are damaged queue files moved aside
	// (queue.on_corrupt: quarantine) and still in the data folder: the
	// status is "degraded" until they are deleted. Omitted when none.
	DamagedFiles []string `json:"damaged_files,omitempty"`
}

// HealthUplink summarises the uplink to the cloud since the start.
type HealthUplink struct {
	Error           string         `json:"error,omitempty"` // why the uplink is failing; omitted when it is not
	BatchesSent     uint64         `json:"batches_sent"`    // batches the cloud acknowledged
	ReadingsAcked   uint64         `json:"readings_acked"`  // readings the cloud acknowledged (refused ones included)
	Requests        uint64         `json:"requests"`        // POSTs, retries included
	Retries         uint64         `json:"retries"`
	Splits          uint64         `json:"splits"` // ranges split after a 413 or bisected after a 400
	BytesRaw        uint64         `json:"bytes_raw"`
	BytesCompressed uint64         `json:"bytes_compressed"`
	Failures        HealthFailures `json:"failures"`
	OldBatches      uint64         `json:"old_batches"`   // batches from the backlog (oldest) end
	FreshBatches    uint64         `json:"fresh_batches"` // batches from the fresh end
	BacklogSeqs     uint64         `json:"backlog_seqs"`  // an upper bound of the backlog
	ParkedRanges    int            `json:"parked_ranges"` // ranges the cloud refused, retried slowly
	ParkedReadings  int            `json:"parked_readings"`
	InFlight        int            `json:"in_flight"`                 // requests in progress
	Backoff         string         `json:"backoff"`                   // current retry backoff, a Go duration
	LastSuccess     *time.Time     `json:"last_success,omitempty"`    // omitted before the first
	LastError       string         `json:"last_error,omitempty"`      // omitted before the first
	LastErrorTime   *time.Time     `json:"last_error_time,omitempty"` // omitted before the first

	// ReadingsRefused: acknowledged readings the cloud did not store (the
	// gateway is at a per-gateway cap), deleted all the same; RefusedBy by
	// reason (uplink.Refused*), LastRefusedReason the cloud's words.
	ReadingsRefused   uint64            `json:"readings_refused"`
	RefusedBy         map[string]uint64 `json:"refused_by,omitempty"`          // omitted when none
	LastRefusedReason string            `json:"last_refused_reason,omitempty"` // omitted when none
	LastRefusedTime   *time.Time        `json:"last_refused_time,omitempty"`   // omitted when none
}

// HealthFailures counts failed uplink requests by cause.
type HealthFailures struct {
	Network      uint64 `json:"network"`      // no HTTP response
	Malformed    uint64 `json:"malformed"`    // 400
	Unauthorized uint64 `json:"unauthorized"` // 401, 403
	TooLarge     uint64 `json:"too_large"`    // 413
	Throttled    uint64 `json:"throttled"`    // 429, 503
	Other4xx     uint64 `json:"other_4xx"`
	Other5xx     uint64 `json:"other_5xx"`
	Ack          uint64 `json:"ack"`     // acknowledged, but the queue's Ack failed
	BadAck       uint64 `json:"bad_ack"` // a 2xx whose acknowledgement does not match the batch (kept, retried)
}

// HealthClock is the gateway clock's state.
type HealthClock struct {
	Synced     bool       `json:"synced"`                 // false: readings are flagged as unsynchronised
	Reason     string     `json:"reason,omitempty"`       // why not synced; omitted when synced
	Kernel     string     `json:"kernel"`                 // synchronised, unsynchronised or unknown
	Wall       time.Time  `json:"wall"`                   // the gateway's time of this observation
	LastJump   string     `json:"last_jump,omitempty"`    // size of the last jump, a Go duration; omitted when none
	LastJumpAt *time.Time `json:"last_jump_at,omitempty"` // omitted when none
	Jumps      uint64     `json:"jumps"`
}

// HealthIntake counts the MQTT intake's messages since the start.
type HealthIntake struct {
	Connected        bool              `json:"connected"` // external: connected and subscribed; embedded: serving
	Connects         uint64            `json:"connects"`  // external sessions established
	Messages         uint64            `json:"messages"`
	Duplicates       uint64            `json:"duplicates"` // marked redelivered (DUP) by the broker
	Readings         uint64            `json:"readings"`
	Acked            uint64            `json:"acked"`
	Rejected         uint64            `json:"rejected"`
	RejectedBy       map[string]uint64 `json:"rejected_by,omitempty"` // by reason (intake.Reason*); omitted when none
	AppendErrors     uint64            `json:"append_errors"`
	DeadLetterErrors uint64            `json:"dead_letter_errors"`
	Shed             uint64            `json:"shed"` // left unacknowledged over the in-flight bound
	InFlight         int64             `json:"in_flight"`
	Waiting          int64             `json:"waiting"`
	StatusMessages   uint64            `json:"status_messages"`
	Devices          int               `json:"devices"` // devices in the status table
}

// HealthLocal counts the local sensor sampling since the start.
type HealthLocal struct {
	Samples      uint64 `json:"samples"`
	Readings     uint64 `json:"readings"`
	SenseErrors  uint64 `json:"sense_errors"`
	OpenErrors   uint64 `json:"open_errors"`
	AppendErrors uint64 `json:"append_errors"`
	Rejected     uint64 `json:"rejected"`
	MissedTicks  uint64 `json:"missed_ticks"`
	SensorsOpen  int    `json:"sensors_open"`
	Sensors      int    `json:"sensors"`
}

func healthUplink(s uplink.Stats, err error) HealthUplink {
	h := HealthUplink{
		BatchesSent: s.BatchesSent, ReadingsAcked: s.ReadingsAcked, Requests: s.Requests, Retries: s.Retries,
		Splits: s.Splits, BytesRaw: s.BytesRaw, BytesCompressed: s.BytesCompressed,
		ReadingsRefused: s.ReadingsRefused, RefusedBy: s.RefusedBy, LastRefusedReason: s.LastRefusedReason,
		LastRefusedTime: timeOrNil(s.LastRefusedTime),
		Failures: HealthFailures{Network: s.Failures.Network, Malformed: s.Failures.Malformed,
			Unauthorized: s.Failures.Unauthorized, TooLarge: s.Failures.TooLarge, Throttled: s.Failures.Throttled,
			Other4xx: s.Failures.Other4xx, Other5xx: s.Failures.Other5xx, Ack: s.Failures.Ack, BadAck: s.Failures.BadAck},
		OldBatches: s.OldBatches, FreshBatches: s.FreshBatches, BacklogSeqs: s.BacklogSeqs,
		ParkedRanges: s.ParkedRanges, ParkedReadings: s.ParkedReadings, InFlight: s.InFlight,
		Backoff: s.Backoff.String(), LastSuccess: timeOrNil(s.LastSuccess), LastError: s.LastError,
		LastErrorTime: timeOrNil(s.LastErrorTime),
	}
	if err != nil {
		h.Error = err.Error()
	}
	return h
}

func healthClock(s clock.Status) HealthClock {
	h := HealthClock{Synced: s.Synced, Reason: s.Reason, Kernel: s.Kernel.String(), Wall: s.Wall,
		LastJumpAt: timeOrNil(s.LastJumpAt), Jumps: s.Jumps}
	if s.LastJump != 0 {
		h.LastJump = s.LastJump.String()
	}
	return h
}

func healthIntake(s intake.Stats) HealthIntake {
	return HealthIntake{Connected: s.Connected, Connects: s.Connects, Messages: s.Messages, Duplicates: s.Duplicates,
		Readings: s.Readings, Acked: s.Acked, Rejected: s.Rejected, RejectedBy: s.RejectedBy,
		AppendErrors: s.AppendErrors, DeadLetterErrors: s.DeadLetterErrors, Shed: s.Shed, InFlight: s.InFlight,
		Waiting: s.Waiting, StatusMessages: s.StatusMessages, Devices: s.Devices}
}

func healthLocal(s local.Stats) *HealthLocal {
	return &HealthLocal{Samples: s.Samples, Readings: s.Readings, SenseErrors: s.SenseErrors, OpenErrors: s.OpenErrors,
		AppendErrors: s.AppendErrors, Rejected: s.Rejected, MissedTicks: s.MissedTicks, SensorsOpen: s.SensorsOpen,
		Sensors: s.Sensors}
}

func timeOrNil(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}
