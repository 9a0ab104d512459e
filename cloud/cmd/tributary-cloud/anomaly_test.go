package main

import (
	"bytes"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestAnomalyScore pipes a NAB-format series with one spike through
// `anomaly score` (stdin to stdout, and file to file) and checks the
// output's shape and that the spike is the most anomalous row.
func TestAnomalyScore(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	var in strings.Builder
	in.WriteString("timestamp,value\n")
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	const n, spike = 1500, 1200
	for i := range n {
		v := 20 + 3*math.Sin(2*math.Pi*float64(i)/288) + rng.NormFloat64()*0.2
		if i == spike {
			v += 15
		}
		fmt.Fprintf(&in, "%s,%.3f\n", t0.Add(time.Duration(i)*5*time.Minute).Format("2006-01-02 15:04:05"), v)
	}

	var stdout, stderr bytes.Buffer
	code := anomalyCommand([]string{"score"}, strings.NewReader(in.String()), &stdout, &stderr)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
	if lines[0] != "timestamp,value,anomaly_score" || len(lines) != n+1 {
		t.Fatalf("header %q, %d rows: want the NAB header and %d rows", lines[0], len(lines)-1, n)
	}
	inLines := strings.Split(strings.TrimSpace(in.String()), "\n")
	best, bestAt := -1.0, -1
	for i, l := range lines[1:] {
		f := strings.Split(l, ",")
		if len(f) != 3 || f[0]+","+f[1] != inLines[i+1] {
			t.Fatalf("row %d = %q: want the input row %q and a score", i, l, inLines[i+1])
		}
		s, err := strconv.ParseFloat(f[2], 64)
		if err != nil || s < 0 || s > 1 {
			t.Fatalf("row %d score %q: want a number in [0,1]", i, f[2])
		}
		if s > best {
			best, bestAt = s, i
		}
	}
	if bestAt != spike || best < 0.5 {
		t.Errorf("highest score %.3f at row %d, want >= 0.5 at the spike (row %d)", best, bestAt, spike)
	}

	// Files, and the same output.
	dir := t.TempDir()
	inPath, outPath := filepath.Join(dir, "in.csv"), filepath.Join(dir, "out.csv")
	os.WriteFile(inPath, []byte(in.String()), 0o600)
	if code := anomalyCommand([]string{"score", "-in", inPath, "-out", outPath}, nil, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	if got, _ := os.ReadFile(outPath); !bytes.Equal(got, stdout.Bytes()) {
		t.Error("file output differs from stdout output")
	}

	// Bad input names the line.
	stderr.Reset()
	code = anomalyCommand([]string{"score"}, strings.NewReader("timestamp,value\n2026-01-01 00:00:00,1\n2026-01-01 00:05:00,abc\n"), &bytes.Buffer{}, &stderr)
	if code != 1 || !strings.Contains(stderr.String(), "line 3") {
		t.Errorf("bad value: exit %d, %q: want 1 and the line number", code, stderr.String())
	}
	if code := anomalyCommand(nil, nil, &bytes.Buffer{}, &bytes.Buffer{}); code != 2 {
		t.Errorf("no subcommand: exit %d, want 2", code)
	}
}
