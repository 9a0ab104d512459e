package protocol

import (
	"bytes"
	"fmt"
	"math"
	"time"
)

// Kind says which value a Reading carries. SenML allows exactly one value
// field per record, or none when the record carries a sum.
type Kind uint8

const (
	KindNone   Kind = iota // no value: the reading carries only a Sum
	KindFloat              // SenML v
	KindString             // SenML vs
	KindBool               // SenML vb
	KindData               // SenML vd
)

func (k Kind) String() string {
	switch k {
	case KindNone:
		return "none"
	case KindFloat:
		return "float"
	case KindString:
		return "string"
	case KindBool:
		return "bool"
	case KindData:
		return "data"
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// Flags qualify a reading's times.
type Flags uint8

const (
	// FlagReceiverTime: the device sent no absolute time (none, or a time
	// relative to reception), so Time was derived from the receiver's clock.
	FlagReceiverTime Flags = 1 << iota
	// FlagClockUnsynced: the gateway's clock was not known to be synchronised
	// when it received the reading, so Received (and any receiver-derived
	// Time) may be wrong.
	FlagClockUnsynced
)

// Reading is one measurement: the unit of everything Tributary carries.
//
// Times are microseconds since the Unix epoch (UTC), at most MaxTimeMicros
// in absolute value (the year 2106). Microseconds are exact in a float64 of
// seconds in that range, so a time survives SenML's floating-point seconds
// unchanged; use time.UnixMicro to convert.
type Reading struct {
	Device string // device id (see ValidDeviceID)
	Name   string // resolved SenML name: the metric, e.g. "temperature"
	Unit   string // SenML unit, e.g. "Cel"; may be empty

	Kind  Kind    // which of the value fields below is set
	Value float64 // KindFloat
	Str   string  // KindString
	Bool  bool    // KindBool
	Data  []byte  // KindData

	HasSum bool    // Sum is set
	Sum    float64 // SenML s: an integrated value, e.g. a meter's total

	Time     int64 // device time, µs since epoch (see FlagReceiverTime)
	Received int64 // gateway receive time, µs since epoch; 0 if not yet received
	Flags    Flags
}

// Key is a reading's natural key: a reading published twice (a QoS 1
// redelivery, a retried upload) has the same key, so consumers can process
// idempotently.
type Key struct {
	Device string
	Name   string
	Time   int64
}

// Key returns the reading's natural key.
func (r *Reading) Key() Key { return Key{Device: r.Device, Name: r.Name, Time: r.Time} }

// DeviceTime returns Time as a time.Time.
func (r *Reading) DeviceTime() time.Time { return time.UnixMicro(r.Time).UTC() }

// Equal reports whether two readings are identical field by field (NaN is
// never stored, so plain float comparison is exact).
func (r *Reading) Equal(o *Reading) bool {
	return r.Device == o.Device && r.Name == o.Name && r.Unit == o.Unit &&
		r.Kind == o.Kind && r.Value == o.Value && r.Str == o.Str && r.Bool == o.Bool &&
		bytes.Equal(r.Data, o.Data) && r.HasSum == o.HasSum && r.Sum == o.Sum &&
		r.Time == o.Time && r.Received == o.Received && r.Flags == o.Flags
}

// String formats the reading for logs.
func (r *Reading) String() string {
	var v string
	switch r.Kind {
	case KindFloat:
		v = fmt.Sprint(r.Value)
	case KindString:
		v = fmt.Sprintf("%q", r.Str)
	case KindBool:
		v = fmt.Sprint(r.Bool)
	case KindData:
		v = fmt.Sprintf("%d bytes", len(r.Data))
	default:
		v = "-"
	}
	if r.HasSum {
		v += fmt.Sprintf(" sum=%v", r.Sum)
	}
	return fmt.Sprintf("%s/%s=%s%s@%s", r.Device, r.Name, v, r.Unit,
		r.DeviceTime().Format(time.RFC3339Nano))
}

// Validate checks a reading against the contract: a valid device id and name,
// exactly one value kind (or none with a sum), finite numbers, sizes within
// the limits. index is used in the error (pass -1 when not in a list).
func (r *Reading) Validate() error { return r.validate(-1) }

func (r *Reading) validate(index int) error {
	bad := func(field string, err error, format string, args ...any) error {
		return batchErr(index, field, err, format, args...)
	}
	if !ValidDeviceID(r.Device) {
		return bad("device", ErrBadDeviceID, "%q does not match %s", truncate(r.Device), DeviceIDPattern)
	}
	if !ValidName(r.Name) {
		return bad("name", ErrBadName, "%q is not a valid SenML name", truncate(r.Name))
	}
	if len(r.Unit) > MaxUnitBytes {
		return bad("unit", ErrTooLarge, "unit is %d bytes, limit %d", len(r.Unit), MaxUnitBytes)
	}
	switch r.Kind {
	case KindNone:
		if !r.HasSum {
			return bad("value", ErrNoValue, "")
		}
	case KindFloat:
		if !finite(r.Value) {
			return bad("value", ErrBadNumber, "")
		}
	case KindString:
		if len(r.Str) > MaxStringValueBytes {
			return bad("value", ErrTooLarge, "string value is %d bytes, limit %d", len(r.Str), MaxStringValueBytes)
		}
	case KindBool:
	case KindData:
		if len(r.Data) > MaxStringValueBytes {
			return bad("value", ErrTooLarge, "data value is %d bytes, limit %d", len(r.Data), MaxStringValueBytes)
		}
	default:
		return bad("kind", ErrType, "unknown kind %d", r.Kind)
	}
	if r.Kind != KindString && r.Str != "" || r.Kind != KindData && r.Data != nil ||
		r.Kind != KindFloat && r.Value != 0 || r.Kind != KindBool && r.Bool {
		return bad("value", ErrMultipleValues, "kind is %s but another value field is set", r.Kind)
	}
	if r.HasSum && !finite(r.Sum) {
		return bad("sum", ErrBadNumber, "")
	}
	if r.Time <= -MaxTimeMicros || r.Time >= MaxTimeMicros {
		return bad("time", ErrBadNumber, "time %d µs out of range", r.Time)
	}
	if r.Received <= -MaxTimeMicros || r.Received >= MaxTimeMicros {
		return bad("received", ErrBadNumber, "receive time %d µs out of range", r.Received)
	}
	return nil
}

func finite(f float64) bool { return !math.IsNaN(f) && !math.IsInf(f, 0) }

func truncate(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}

// ValidName reports whether s is a valid resolved SenML name (RFC 8428
// section 4.5.1): 1 to MaxNameBytes characters from A-Z a-z 0-9 - : . / _,
// starting with a letter or digit.
func ValidName(s string) bool {
	if len(s) == 0 || len(s) > MaxNameBytes || !alnum(s[0]) {
		return false
	}
	for i := 1; i < len(s); i++ {
		c := s[i]
		if !alnum(c) && c != '-' && c != ':' && c != '.' && c != '/' && c != '_' {
			return false
		}
	}
	return true
}

func alnum(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

// microsFromSeconds converts SenML seconds to microseconds, rounding to the
// nearest microsecond (a float64 of seconds this century resolves ~0.24 µs).
func microsFromSeconds(s float64) int64 { return int64(math.Round(s * 1e6)) }

// secondsFromMicros converts microseconds to SenML seconds; the result is
// the float64 nearest the exact decimal, so it converts back unchanged.
func secondsFromMicros(us int64) float64 {
	return float64(us) / 1e6
}
