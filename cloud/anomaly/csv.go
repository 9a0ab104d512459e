package anomaly

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"time"
)

// TimeLayout is the timestamp layout of NAB's CSV files. They carry no
// zone; Score reads them as UTC.
const TimeLayout = "2006-01-02 15:04:05"

// maxLine bounds one CSV line (a NAB row is under 40 bytes).
const maxLine = 4096

// Errors of the CSV reader. Score reports bad input as a *CSVError
// wrapping one of these.
var (
	// ErrHeader: the first line is not "timestamp,value".
	ErrHeader = errors.New("anomaly: bad header")
	// ErrRow: a row does not have exactly two fields.
	ErrRow = errors.New("anomaly: bad row")
	// ErrTimestamp: a timestamp is not "YYYY-MM-DD hh:mm:ss".
	ErrTimestamp = errors.New("anomaly: bad timestamp")
	// ErrValue: a value is not a finite number.
	ErrValue = errors.New("anomaly: bad value")
	// ErrLineTooLong: a line is longer than 4 KiB.
	ErrLineTooLong = errors.New("anomaly: line too long")
)

// CSVError locates bad input.
type CSVError struct {
	Line int    // 1-based; the header is line 1
	Err  error  // one of ErrHeader, ErrRow, ErrTimestamp, ErrValue, ErrLineTooLong
	Text string // the offending line, shortened
}

func (e *CSVError) Error() string {
	if e.Text == "" {
		return fmt.Sprintf("%v on line %d", e.Err, e.Line)
	}
	return fmt.Sprintf("%v on line %d: %q", e.Err, e.Line, e.Text)
}

func (e *CSVError) Unwrap() error { return e.Err }

// Score runs one detector, NewDetector(cfg), over a series in the CSV
// format of the Numenta Anomaly Benchmark: a header "timestamp,value",
// then one reading per row, "YYYY-MM-DD hh:mm:ss,number". It writes the
// header "timestamp,value,anomaly_score" and one row per input row, in
// order, with the timestamp and value as read and the point's Score.
// Blank lines are skipped and CRLF line ends accepted; rows are the unit,
// so repeated or backward timestamps are scored like any other. Bad input
// stops it with a *CSVError naming the line; what was written before
// stays written.
func Score(r io.Reader, w io.Writer, cfg Config) error {
	d := NewDetector(cfg)
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 256), maxLine)
	bw := bufio.NewWriterSize(w, 64<<10)
	line := 0
	header := false
	var out []byte
	for sc.Scan() {
		line++
		text := bytes.TrimSuffix(sc.Bytes(), []byte{'\r'})
		if len(bytes.TrimSpace(text)) == 0 {
			continue
		}
		if !header {
			if !isHeader(text) {
				return &CSVError{Line: line, Err: ErrHeader, Text: shorten(text)}
			}
			header = true
			if _, err := bw.WriteString("timestamp,value,anomaly_score\n"); err != nil {
				return fmt.Errorf("anomaly: write: %w", err)
			}
			continue
		}
		ts, val, t, v, err := parseRow(text)
		if err != nil {
			bw.Flush()
			return &CSVError{Line: line, Err: err, Text: shorten(text)}
		}
		res := d.Update(t, v)
		out = append(out[:0], ts...)
		out = append(out, ',')
		out = append(out, val...)
		out = append(out, ',')
		out = strconv.AppendFloat(out, res.Score, 'f', -1, 64)
		out = append(out, '\n')
		if _, err := bw.Write(out); err != nil {
			return fmt.Errorf("anomaly: write: %w", err)
		}
	}
	if err := sc.Err(); err != nil {
		bw.Flush()
		if errors.Is(err, bufio.ErrTooLong) {
			return &CSVError{Line: line + 1, Err: ErrLineTooLong}
		}
		return fmt.Errorf("anomaly: read: %w", err)
	}
	if !header {
		return &CSVError{Line: 1, Err: ErrHeader}
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("anomaly: write: %w", err)
	}
	return nil
}

func isHeader(text []byte) bool {
	name, rest, ok := bytes.Cut(text, []byte{','})
	return ok && string(bytes.TrimSpace(name)) == "timestamp" && string(bytes.TrimSpace(rest)) == "value"
}

// parseRow splits and parses one data row; ts and val are the fields as
// written, trimmed.
func parseRow(text []byte) (ts, val []byte, t time.Time, v float64, err error) {
	ts, val, ok := bytes.Cut(text, []byte{','})
	if !ok || bytes.IndexByte(val, ',') >= 0 {
		return nil, nil, time.Time{}, 0, ErrRow
	}
	ts, val = bytes.TrimSpace(ts), bytes.TrimSpace(val)
	if len(ts) != len(TimeLayout) {
		return nil, nil, time.Time{}, 0, ErrTimestamp
	}
	if t, err = time.Parse(TimeLayout, string(ts)); err != nil {
		return nil, nil, time.Time{}, 0, ErrTimestamp
	}
	if v, err = strconv.ParseFloat(string(val), 64); err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
		return nil, nil, time.Time{}, 0, ErrValue
	}
	return ts, val, t, v, nil
}

func shorten(b []byte) string {
	const n = 64
	if len(b) > n {
		return string(b[:n]) + "…"
	}
	return string(b)
}
