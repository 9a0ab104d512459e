package model

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"time"
)

// Event kinds. The first six are anomalies the model itself produces
// (Device.Inject); the last three are faults the fleet produces, recorded
// with the same Event type so that one truth file holds everything.
const (
	// KindSpike adds Magnitude to the metric from Start to End: one short
	// excursion.
	KindSpike = "spike"
	// KindLevelShift adds Magnitude to the metric from Start to End: a step.
	KindLevelShift = "level_shift"
	// KindDrift adds a ramp rising linearly from 0 at Start to Magnitude at
	// End.
	KindDrift = "drift"
	// KindStuck freezes the metric at its value at Start until End.
	KindStuck = "stuck"
	// KindNoiseBurst multiplies the metric's noise by Magnitude.
	KindNoiseBurst = "noise_burst"
	// KindDropout silences the whole device (Metric empty): Device.Dropout
	// reports true and the fleet sends nothing.
	KindDropout = "dropout"

	// KindDisconnect is a fleet fault: the device's connection drops.
	KindDisconnect = "disconnect"
	// KindClockSkew is a fleet fault: the device's clock is off by
	// Magnitude seconds.
	KindClockSkew = "clock_skew"
	// KindMalformed is a fleet fault: the device sends malformed payloads.
	KindMalformed = "malformed"

	// KindPublished is not an event but a tally, written once per device
	// when a fleet run ends (after every node stopped): Readings is the
	// number of readings the device published (acknowledged by the broker
	// at QoS 1, written at QoS 0; node.Stats.ReadingsPublished), and every
	// one of them carries a device time in [Start, End) (the run on the
	// device's own clock, skew included). End-to-end verifiers count
	// expected readings from these lines. It is not in Kinds: it cannot be
	// injected.
	KindPublished = "published"
)

// Kinds returns every kind the model knows, anomalies first.
func Kinds() []string {
	return []string{
		KindSpike, KindLevelShift, KindDrift, KindStuck, KindNoiseBurst, KindDropout,
		KindDisconnect, KindClockSkew, KindMalformed,
	}
}

// Errors.
var (
	// ErrInvalidEvent wraps every complaint about an Event.
	ErrInvalidEvent = errors.New("model: invalid event")
	// ErrClosed is returned by a TruthWriter after Close.
	ErrClosed = errors.New("model: truth writer closed")
)

// metricKind reports whether kind changes a metric's values (and so needs
// a Metric).
func metricKind(kind string) bool {
	switch kind {
	case KindSpike, KindLevelShift, KindDrift, KindStuck, KindNoiseBurst:
		return true
	}
	return false
}

// knownKind reports whether kind is one of Kinds.
func knownKind(kind string) bool {
	switch kind {
	case KindSpike, KindLevelShift, KindDrift, KindStuck, KindNoiseBurst, KindDropout,
		KindDisconnect, KindClockSkew, KindMalformed:
		return true
	}
	return false
}

// Event is one anomaly or fault: what happened to which device (and
// metric), from Start (inclusive) to End (exclusive), and how strongly.
// Magnitude is in the metric's unit for spike, level_shift and drift, a
// noise factor for noise_burst, seconds for clock_skew, and unused (0)
// otherwise.
//
// In JSON (one truth line) the fields are device, metric (empty for
// device-wide events), kind, start, end (RFC 3339, UTC, milliseconds),
// magnitude and, on published lines only, readings.
type Event struct {
	Device    string
	Metric    string
	Kind      string
	Start     time.Time
	End       time.Time
	Magnitude float64
	// Readings is the count of a KindPublished line; 0 (and absent from
	// the JSON) otherwise.
	Readings uint64
}

// Active reports whether t is in [Start, End).
func (e Event) Active(t time.Time) bool {
	return !t.Before(e.Start) && t.Before(e.End)
}

// Validate checks what any recorded event needs: a device, a kind, an End
// not before Start and a finite Magnitude. Device.Inject checks more.
func (e Event) Validate() error {
	switch {
	case e.Device == "":
		return fmt.Errorf("%w: no device", ErrInvalidEvent)
	case e.Kind == "":
		return fmt.Errorf("%w: no kind (device %q)", ErrInvalidEvent, e.Device)
	case e.End.Before(e.Start):
		return fmt.Errorf("%w: %s on %q ends (%s) before it starts (%s)", ErrInvalidEvent,
			e.Kind, e.Device, e.End.Format(timeFormat), e.Start.Format(timeFormat))
	case math.IsNaN(e.Magnitude) || math.IsInf(e.Magnitude, 0):
		return fmt.Errorf("%w: %s on %q has magnitude %v", ErrInvalidEvent, e.Kind, e.Device, e.Magnitude)
	}
	return nil
}

// timeFormat is RFC 3339 with milliseconds.
const timeFormat = "2006-01-02T15:04:05.000Z07:00"

type eventJSON struct {
	Device    string  `json:"device"`
	Metric    string  `json:"metric"`
	Kind      string  `json:"kind"`
	Start     string  `json:"start"`
	End       string  `json:"end"`
	Magnitude float64 `json:"magnitude"`
	Readings  uint64  `json:"readings,omitempty"`
}

// MarshalJSON writes the truth-file form of e.
func (e Event) MarshalJSON() ([]byte, error) {
	return json.Marshal(eventJSON{
		Device:    e.Device,
		Metric:    e.Metric,
		Kind:      e.Kind,
		Start:     e.Start.UTC().Format(timeFormat),
		End:       e.End.UTC().Format(timeFormat),
		Magnitude: e.Magnitude,
		Readings:  e.Readings,
	})
}

// UnmarshalJSON reads the truth-file form of an event. Times may have any
// RFC 3339 precision.
func (e *Event) UnmarshalJSON(b []byte) error {
	var j eventJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	start, err := time.Parse(time.RFC3339Nano, j.Start)
	if err != nil {
		return fmt.Errorf("%w: start: %w", ErrInvalidEvent, err)
	}
	end, err := time.Parse(time.RFC3339Nano, j.End)
	if err != nil {
		return fmt.Errorf("%w: end: %w", ErrInvalidEvent, err)
	}
	*e = Event{
		Device: j.Device, Metric: j.Metric, Kind: j.Kind,
		Start: start, End: end, Magnitude: j.Magnitude, Readings: j.Readings,
	}
	return nil
}
