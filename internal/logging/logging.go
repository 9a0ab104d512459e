// Package logging builds the log/slog logger of a tributary binary from its
// log format and level: text or JSON lines on one writer, with durations
// written as Go duration strings ("1.5s") in both formats.
package logging

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
)

// The log formats.
const (
	FormatText = "text"
	FormatJSON = "json"
)

// ErrInvalid is wrapped by the errors of Validate and New.
var ErrInvalid = errors.New("logging: invalid setting")

// Validate checks a format and a level ("" is allowed for both).
func Validate(format, level string) error {
	var errs []error
	if format != "" && format != FormatText && format != FormatJSON {
		errs = append(errs, invalid(fmt.Sprintf("log_format: %q: want text or json", format)))
	}
	if _, err := parseLevel(level); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// invalid is a bad setting; it names the config key (and flag) to fix and
// matches ErrInvalid.
type invalid string

func (e invalid) Error() string        { return string(e) }
func (e invalid) Is(target error) bool { return target == ErrInvalid }

func parseLevel(level string) (slog.Level, error) {
	var lv slog.Level
	if level == "" {
		return slog.LevelInfo, nil
	}
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return lv, invalid(fmt.Sprintf("log_level: %q: want debug, info, warn or error", level))
	}
	return lv, nil
}

// New returns a logger that writes lines of the format at the level (and
// above) to w.
func New(w io.Writer, format, level string) (*slog.Logger, error) {
	if err := Validate(format, level); err != nil {
		return nil, err
	}
	lv, _ := parseLevel(level)
	opts := &slog.HandlerOptions{Level: lv, ReplaceAttr: ReplaceAttr}
	if format == FormatJSON {
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return slog.New(slog.NewTextHandler(w, opts)), nil
}

// ReplaceAttr writes a time.Duration as a Go duration string ("1.5s",
// "-250ms"), which log pipelines read without knowing the unit; slog's
// JSON handler would write integer nanoseconds. It is New's
// slog.HandlerOptions.ReplaceAttr.
func ReplaceAttr(_ []string, a slog.Attr) slog.Attr {
	if a.Value.Kind() == slog.KindDuration {
		a.Value = slog.StringValue(a.Value.Duration().String())
	}
	return a
}
