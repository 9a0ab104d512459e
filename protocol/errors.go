package protocol

import (
	"errors"
	"fmt"
)

// Sentinel errors. Decoders wrap them in *SenMLError or *BatchError, so test
// with errors.Is.
var (
	ErrSyntax         = errors.New("malformed encoding")
	ErrEmpty          = errors.New("empty pack")
	ErrTooLarge       = errors.New("too large")
	ErrTooMany        = errors.New("too many records")
	ErrBadName        = errors.New("invalid name")
	ErrNoValue        = errors.New("record has neither a value nor a sum")
	ErrMultipleValues = errors.New("record has more than one value field")
	ErrVersion        = errors.New("unsupported version")
	ErrMustUnderstand = errors.New("unknown must-understand label")
	ErrType           = errors.New("field has the wrong type")
	ErrBadNumber      = errors.New("number is NaN, infinite or out of range")
	ErrDuplicateLabel = errors.New("label appears twice in one record")
	ErrBadDeviceID    = errors.New("invalid device id")
	ErrBadTopic       = errors.New("not a tributary topic")
	ErrBadBatch       = errors.New("invalid batch")
	ErrBadRecord      = errors.New("invalid stream record")
)

// SenMLError reports what is wrong with a SenML pack and where: the index of
// the offending record (-1 for the pack as a whole) and the label involved.
type SenMLError struct {
	Index int    // record index in the pack, -1 for the pack itself
	Label string // SenML label ("n", "bt", "vd", ...), "" when not tied to one
	Err   error  // one of the sentinel errors above
	Msg   string // detail for humans
}

func (e *SenMLError) Error() string {
	where := "senml"
	if e.Index >= 0 {
		where = fmt.Sprintf("senml: record %d", e.Index)
	}
	if e.Label != "" {
		where += fmt.Sprintf(": label %q", e.Label)
	}
	if e.Msg != "" {
		return fmt.Sprintf("%s: %v: %s", where, e.Err, e.Msg)
	}
	return fmt.Sprintf("%s: %v", where, e.Err)
}

func (e *SenMLError) Unwrap() error { return e.Err }

func senmlErr(index int, label string, err error, format string, args ...any) *SenMLError {
	e := &SenMLError{Index: index, Label: label, Err: err}
	if format != "" {
		e.Msg = fmt.Sprintf(format, args...)
	}
	return e
}

// BatchError reports what is wrong with an uplink batch or a stream record,
// and where (reading index, -1 for the envelope).
type BatchError struct {
	Index int
	Field string
	Err   error
	Msg   string
}

func (e *BatchError) Error() string {
	where := "protocol: batch"
	if e.Err == ErrBadRecord || errors.Is(e.Err, ErrBadRecord) {
		where = "protocol: stream record"
	}
	if e.Index >= 0 {
		where += fmt.Sprintf(": reading %d", e.Index)
	}
	if e.Field != "" {
		where += ": " + e.Field
	}
	if e.Msg != "" {
		return fmt.Sprintf("%s: %v: %s", where, e.Err, e.Msg)
	}
	return fmt.Sprintf("%s: %v", where, e.Err)
}

func (e *BatchError) Unwrap() error { return e.Err }

func batchErr(index int, field string, err error, format string, args ...any) *BatchError {
	e := &BatchError{Index: index, Field: field, Err: err}
	if format != "" {
		e.Msg = fmt.Sprintf(format, args...)
	}
	return e
}
