package logging_test

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/tributary-iot/tributary/internal/logging"
	"github.com/tributary-iot/tributary/internal/logging/logtest"
)

func TestDurationsAsStrings(t *testing.T) {
	for _, format := range []string{"json", "text"} {
		var buf bytes.Buffer
		log, err := logging.New(&buf, format, "debug")
		if err != nil {
			t.Fatal(err)
		}
		log.With("drain_timeout", 30*time.Second).WithGroup("g").Debug("hello", "took", 1500*time.Millisecond, "n", 3)
		out := buf.String()
		for _, want := range []string{"30s", "1.5s"} {
			if !strings.Contains(out, want) {
				t.Errorf("%s: %q lacks %q", format, out, want)
			}
		}
		if strings.Contains(out, "1500000000") {
			t.Errorf("%s: nanoseconds in %q", format, out)
		}
		if format == "json" {
			if sum, err := logtest.Check(buf.Bytes()); err != nil || sum.Durations != 2 {
				t.Errorf("%+v %v", sum, err)
			}
		}
	}
}

func TestLevelAndFormat(t *testing.T) {
	var buf bytes.Buffer
	log, err := logging.New(&buf, "", "warn")
	if err != nil {
		t.Fatal(err)
	}
	log.Info("dropped")
	log.Warn("kept")
	if out := buf.String(); strings.Contains(out, "dropped") || !strings.Contains(out, "msg=kept") {
		t.Errorf("text at warn: %q", out)
	}
	for _, tc := range []struct{ format, level, want string }{
		{"xml", "", `log_format: "xml"`},
		{"json", "loud", `log_level: "loud"`},
	} {
		_, err := logging.New(&buf, tc.format, tc.level)
		if !errors.Is(err, logging.ErrInvalid) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q %q: %v", tc.format, tc.level, err)
		}
	}
}
