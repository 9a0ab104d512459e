package anomaly_test

import (
	"bufio"
	"bytes"
	"errors"
	"strconv"
	"strings"
	"testing"

	"github.com/tributary-iot/tributary/cloud/anomaly"
)

func TestScoreRows(t *testing.T) {
	var in strings.Builder
	in.WriteString("timestamp,value\r\n")
	s := clean(2, 1)
	for i := range s.v {
		in.WriteString(s.t[i].Format(anomaly.TimeLayout) + "," + strconv.FormatFloat(s.v[i], 'g', -1, 64) + "\n")
		if i == 10 {
			in.WriteString("\n") // blank lines are skipped
		}
	}
	var out bytes.Buffer
	if err := anomaly.Score(strings.NewReader(in.String()), &out, anomaly.Config{}); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	if lines[0] != "timestamp,value,anomaly_score" {
		t.Errorf("header %q", lines[0])
	}
	if len(lines)-1 != len(s.v) {
		t.Fatalf("%d rows out, %d in", len(lines)-1, len(s.v))
	}
	d := anomaly.NewDetector(anomaly.Config{})
	for i, l := range lines[1:] {
		f := strings.Split(l, ",")
		if len(f) != 3 || f[0] != s.t[i].Format(anomaly.TimeLayout) || f[1] != strconv.FormatFloat(s.v[i], 'g', -1, 64) {
			t.Fatalf("row %d: %q", i, l)
		}
		got, err := strconv.ParseFloat(f[2], 64)
		if want := d.Update(s.t[i], s.v[i]).Score; err != nil || got != want {
			t.Fatalf("row %d: score %q, the detector says %v", i, f[2], want)
		}
	}
}

func TestScoreBadInput(t *testing.T) {
	long := strings.Repeat("9", 5000)
	cases := []struct {
		name, in string
		line     int
		err      error
	}{
		{"empty", "", 1, anomaly.ErrHeader},
		{"blank only", "\n\n", 1, anomaly.ErrHeader},
		{"wrong header", "time,value\n", 1, anomaly.ErrHeader},
		{"three columns header", "timestamp,value,label\n", 1, anomaly.ErrHeader},
		{"no comma", "timestamp,value\n2014-04-01 00:00:00 5\n", 2, anomaly.ErrRow},
		{"extra field", "timestamp,value\n2014-04-01 00:00:00,5,6\n", 2, anomaly.ErrRow},
		{"bad time", "timestamp,value\n2014-04-01 00:00:00,5\n2014-04-01T00:05:00,6\n", 3, anomaly.ErrTimestamp},
		{"bad date", "timestamp,value\n2014-13-01 00:00:00,5\n", 2, anomaly.ErrTimestamp},
		{"bad value", "timestamp,value\n\n2014-04-01 00:00:00,five\n", 3, anomaly.ErrValue},
		{"NaN", "timestamp,value\n2014-04-01 00:00:00,NaN\n", 2, anomaly.ErrValue},
		{"Inf", "timestamp,value\n2014-04-01 00:00:00,+Inf\n", 2, anomaly.ErrValue},
		{"long line", "timestamp,value\n2014-04-01 00:00:00,1\n2014-04-01 00:05:00," + long + "\n", 3, anomaly.ErrLineTooLong},
	}
	for _, c := range cases {
		var out bytes.Buffer
		err := anomaly.Score(strings.NewReader(c.in), &out, anomaly.Config{})
		var ce *anomaly.CSVError
		if !errors.As(err, &ce) || ce.Line != c.line || !errors.Is(err, c.err) {
			t.Errorf("%s: %v, want %v on line %d", c.name, err, c.err, c.line)
		}
	}
}

func TestScoreHeaderOnly(t *testing.T) {
	var out bytes.Buffer
	if err := anomaly.Score(strings.NewReader(" timestamp , value \n"), &out, anomaly.Config{}); err != nil {
		t.Fatal(err)
	}
	if out.String() != "timestamp,value,anomaly_score\n" {
		t.Errorf("got %q", out.String())
	}
}

// FuzzScore: Score never panics, and on success writes exactly one row
// per data row with a score in [0, 1].
func FuzzScore(f *testing.F) {
	f.Add("timestamp,value\n2014-04-01 00:00:00,5\n2014-04-01 00:05:00,6\n")
	f.Add("timestamp,value\r\n2014-04-01 00:00:00,1e308\r\n\r\n2014-04-01 00:00:00,-1e308\r\n")
	f.Add("timestamp,value\n2014-04-01 00:00:00,x\n")
	f.Add("timestamp\n")
	f.Fuzz(func(t *testing.T, in string) {
		var out bytes.Buffer
		err := anomaly.Score(strings.NewReader(in), &out, anomaly.Config{Warmup: 1})
		if err != nil {
			var ce *anomaly.CSVError
			if !errors.As(err, &ce) || ce.Line < 1 {
				t.Fatalf("error %v is not a *CSVError with a line", err)
			}
			return
		}
		rows := 0
		for l := range strings.Lines(in) {
			if strings.TrimSpace(l) != "" {
				rows++
			}
		}
		sc := bufio.NewScanner(&out)
		n := 0
		for sc.Scan() {
			n++
			if n == 1 {
				continue
			}
			f := strings.Split(sc.Text(), ",")
			x, err := strconv.ParseFloat(f[len(f)-1], 64)
			if err != nil || !(x >= 0 && x <= 1) {
				t.Fatalf("row %q: score out of [0, 1]", sc.Text())
			}
		}
		if n != rows {
			t.Fatalf("%d lines out for %d non-blank lines in", n, rows)
		}
	})
}
