// Package logtest checks the JSON log lines a binary writes, for tests:
// every line is one JSON object, no object has a key twice (Loki and
// Elastic reject or mangle such lines, and encoding/json does not notice
// them), and every value under a key that names a duration is a Go
// duration string ("1.5s"), not a number.
package logtest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/tributary-iot/tributary/internal/jsonkeys"
)

// ErrBadLine is wrapped by the errors Check and CheckLine return.
var ErrBadLine = errors.New("logtest: bad log line")

// Summary counts what Check read.
type Summary struct {
	Lines     int // JSON lines read
	Durations int // values under duration keys, all valid
}

// Check checks every line of data (blank lines are skipped). It returns
// what it read and one error per bad line, joined.
func Check(data []byte) (Summary, error) {
	var sum Summary
	var errs []error
	for i, line := range bytes.Split(data, []byte("\n")) {
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		sum.Lines++
		n, err := CheckLine(line)
		if err != nil {
			errs = append(errs, fmt.Errorf("line %d: %w", i+1, err))
		}
		sum.Durations += n
	}
	return sum, errors.Join(errs...)
}

// CheckLine checks one line: a single JSON object without duplicate keys
// at any depth, durations as Go duration strings. It returns how many
// duration values it checked.
func CheckLine(line []byte) (int, error) {
	if t := bytes.TrimSpace(line); len(t) == 0 || t[0] != '{' {
		return 0, fmt.Errorf("%w: not a JSON object: %s", ErrBadLine, line)
	}
	n := 0
	err := jsonkeys.Walk(line, func(path, key string, v any) error {
		if !DurationKey(key) {
			return nil
		}
		switch v := v.(type) {
		case json.Delim:
			return nil // a group: its members are checked on their own
		case string:
			if _, err := time.ParseDuration(v); err != nil {
				return fmt.Errorf("duration %q is %q, want a Go duration string such as \"1.5s\"", path, v)
			}
			n++
			return nil
		default:
			return fmt.Errorf("duration %q logged as %v, want a Go duration string such as \"1.5s\"", path, v)
		}
	})
	if err != nil {
		return n, fmt.Errorf("%w: %w: %s", ErrBadLine, err, line)
	}
	return n, nil
}

// durationWords are the words of a key (split on "_", "-" and ".") that
// say its value is a duration.
var durationWords = map[string]bool{
	"timeout": true, "interval": true, "every": true, "backoff": true, "age": true, "wait": true,
	"delay": true, "duration": true, "elapsed": true, "took": true, "latency": true, "uptime": true,
	"ttl": true, "period": true, "silence": true,
	"ns": true, "us": true, "ms": true, "secs": true, "seconds": true,
}

// DurationKey reports whether a log key names a duration (drain_timeout,
// retry_wait_ms, took, ...).
func DurationKey(key string) bool {
	for _, w := range strings.FieldsFunc(strings.ToLower(key), func(r rune) bool { return r == '_' || r == '-' || r == '.' }) {
		if durationWords[w] {
			return true
		}
	}
	return false
}

// Writer collects log output for a test: an io.Writer safe for concurrent
// use that keeps what was written and wakes up Wait at every write.
type Writer struct {
	mu      sync.Mutex
	buf     bytes.Buffer
	changed chan struct{} // closed and replaced at every write
}

// Write appends p.
func (w *Writer) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(p)
	if w.changed != nil {
		close(w.changed)
		w.changed = nil
	}
	return len(p), nil
}

// Bytes is a copy of what was written so far.
func (w *Writer) Bytes() []byte {
	w.mu.Lock()
	defer w.mu.Unlock()
	return bytes.Clone(w.buf.Bytes())
}

// String is what was written so far.
func (w *Writer) String() string { return string(w.Bytes()) }

// Wait waits for a complete JSON line whose "msg" is msg and returns its
// members, or ctx's error when ctx ends first.
func (w *Writer) Wait(ctx context.Context, msg string) (map[string]any, error) {
	for {
		w.mu.Lock()
		data := w.buf.Bytes()
		if i := bytes.LastIndexByte(data, '\n'); i >= 0 {
			data = data[:i]
		} else {
			data = nil
		}
		for line := range bytes.SplitSeq(data, []byte("\n")) {
			var m map[string]any
			if json.Unmarshal(line, &m) == nil && m["msg"] == msg {
				w.mu.Unlock()
				return m, nil
			}
		}
		if w.changed == nil {
			w.changed = make(chan struct{})
		}
		ch := w.changed
		w.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return nil, fmt.Errorf("logtest: no line %q: %w", msg, ctx.Err())
		}
	}
}
