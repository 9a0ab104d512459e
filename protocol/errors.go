package protocol

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
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

	cause error // the error Msg wraps, if any
}

func (e *SenMLError) Error() string {
	label := ""
	if e.Label != "" {
		label = "label " + strconv.Quote(e.Label)
	}
	return describe("senml", "record", e.Index, label, e.Err, e.Msg)
}

// Unwrap returns Err and, when the detail wraps one, the underlying error.
func (e *SenMLError) Unwrap() []error { return unwrapBoth(e.Err, e.cause) }

func senmlErr(index int, label string, err error, format string, args ...any) *SenMLError {
	e := &SenMLError{Index: index, Label: label, Err: err}
	e.Msg, e.cause = detail(format, args...)
	return e
}

// BatchError reports what is wrong with an uplink batch or a stream record,
// and where (reading index, -1 for the envelope).
type BatchError struct {
	Index int
	Field string
	Err   error
	Msg   string

	cause error // the error Msg wraps, if any: a stream record's *SenMLError, a device id's error
}

func (e *BatchError) Error() string {
	prefix := "protocol: batch"
	if errors.Is(e.Err, ErrBadRecord) {
		prefix = "protocol: stream record"
	}
	return describe(prefix, "reading", e.Index, e.Field, e.Err, e.Msg)
}

// Unwrap returns Err and, when the detail wraps one, the underlying error.
func (e *BatchError) Unwrap() []error { return unwrapBoth(e.Err, e.cause) }

func batchErr(index int, field string, err error, format string, args ...any) *BatchError {
	e := &BatchError{Index: index, Field: field, Err: err}
	e.Msg, e.cause = detail(format, args...)
	return e
}

// describe formats "prefix[: item index][: field]: err[: msg]".
func describe(prefix, item string, index int, field string, err error, msg string) string {
	var b strings.Builder
	b.WriteString(prefix)
	if index >= 0 {
		fmt.Fprintf(&b, ": %s %d", item, index)
	}
	if field != "" {
		b.WriteString(": ")
		b.WriteString(field)
	}
	fmt.Fprintf(&b, ": %v", err)
	if msg != "" {
		b.WriteString(": ")
		b.WriteString(msg)
	}
	return b.String()
}

// detail formats an error's message; a %w verb in format also keeps the
// wrapped error, so errors.Is and errors.As see it.
func detail(format string, args ...any) (msg string, cause error) {
	if format == "" {
		return "", nil
	}
	e := fmt.Errorf(format, args...)
	return e.Error(), errors.Unwrap(e)
}

func unwrapBoth(err, cause error) []error {
	if cause == nil {
		return []error{err}
	}
	return []error{err, cause}
}
