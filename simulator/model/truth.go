package model

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
)

// truthBufferSize bounds what a TruthWriter holds before writing through.
const truthBufferSize = 64 << 10

// maxTruthLine bounds one line read by ReadTruth.
const maxTruthLine = 64 << 10

// TruthWriter writes events as JSON lines, the ground truth that detectors
// are scored against. It buffers at most 64 KiB (a Write that does not fit
// writes through, blocking on the underlying writer), is safe for
// concurrent use, and keeps each line whole.
type TruthWriter struct {
	mu     sync.Mutex
	w      *bufio.Writer
	file   *os.File // set by CreateTruth: Close syncs and closes it
	closed bool
	err    error // first write error; sticky
}

// NewTruthWriter returns a TruthWriter on w. Close flushes but does not
// close w: the caller owns it.
func NewTruthWriter(w io.Writer) *TruthWriter {
	return &TruthWriter{w: bufio.NewWriterSize(w, truthBufferSize)}
}

// CreateTruth creates (or truncates) the file at path and returns a
// TruthWriter that owns it: Close flushes, syncs and closes the file.
func CreateTruth(path string) (*TruthWriter, error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("model: create truth file: %w", err)
	}
	tw := NewTruthWriter(f)
	tw.file = f
	return tw, nil
}

// Write appends one event as a JSON line. It validates the event first.
func (tw *TruthWriter) Write(e Event) error {
	if err := e.Validate(); err != nil {
		return err
	}
	line, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("model: encode event: %w", err)
	}
	line = append(line, '\n')
	tw.mu.Lock()
	defer tw.mu.Unlock()
	switch {
	case tw.closed:
		return ErrClosed
	case tw.err != nil:
		return tw.err
	}
	if _, err := tw.w.Write(line); err != nil {
		tw.err = fmt.Errorf("model: write truth: %w", err)
		return tw.err
	}
	return nil
}

// Flush writes buffered lines to the underlying writer.
func (tw *TruthWriter) Flush() error {
	tw.mu.Lock()
	defer tw.mu.Unlock()
	if tw.closed {
		return ErrClosed
	}
	return tw.flushLocked()
}

func (tw *TruthWriter) flushLocked() error {
	if tw.err != nil {
		return tw.err
	}
	if err := tw.w.Flush(); err != nil {
		tw.err = fmt.Errorf("model: flush truth: %w", err)
	}
	return tw.err
}

// Close flushes and, for a writer from CreateTruth, syncs and closes the
// file. It is idempotent: later calls return nil.
func (tw *TruthWriter) Close() error {
	tw.mu.Lock()
	defer tw.mu.Unlock()
	if tw.closed {
		return nil
	}
	tw.closed = true
	err := tw.flushLocked()
	if tw.file != nil {
		if serr := tw.file.Sync(); serr != nil && err == nil {
			err = fmt.Errorf("model: sync truth: %w", serr)
		}
		if cerr := tw.file.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("model: close truth: %w", cerr)
		}
	}
	return err
}

// ReadTruthFile reads the truth file at path, as CreateTruth wrote it, with
// ReadTruth; an error names the file.
func ReadTruthFile(path string) ([]Event, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("model: open truth file: %w", err)
	}
	defer f.Close()
	events, err := ReadTruth(f)
	if err != nil {
		return events, fmt.Errorf("%w (in %s)", err, path)
	}
	return events, nil
}

// ReadTruth reads the JSON lines a TruthWriter wrote. Blank lines are
// skipped; a line that is not a valid event is an error naming its number.
func ReadTruth(r io.Reader) ([]Event, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), maxTruthLine)
	var events []Event
	for n := 1; sc.Scan(); n++ {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 {
			continue
		}
		var e Event
		if err := json.Unmarshal(line, &e); err != nil {
			return events, fmt.Errorf("model: truth line %d: %w", n, err)
		}
		if err := e.Validate(); err != nil {
			return events, fmt.Errorf("model: truth line %d: %w", n, err)
		}
		events = append(events, e)
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return events, fmt.Errorf("model: truth line longer than %d bytes: %w", maxTruthLine, err)
		}
		return events, fmt.Errorf("model: read truth: %w", err)
	}
	return events, nil
}
