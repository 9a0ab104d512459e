package model_test

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tributary-iot/tributary/simulator/model"
)

func TestEventJSON(t *testing.T) {
	e := model.Event{
		Device: "node-1", Metric: "temperature", Kind: model.KindSpike,
		Start: time.Date(2026, 3, 1, 12, 0, 1, 234_000_000, time.UTC),
		End:   time.Date(2026, 3, 1, 12, 0, 3, 0, time.UTC), Magnitude: -7.5,
	}
	var buf bytes.Buffer
	tw := model.NewTruthWriter(&buf)
	if err := tw.Write(e); err != nil {
		t.Fatal(err)
	}
	if err := tw.Flush(); err != nil {
		t.Fatal(err)
	}
	want := `{"device":"node-1","metric":"temperature","kind":"spike","start":"2026-03-01T12:00:01.234Z","end":"2026-03-01T12:00:03.000Z","magnitude":-7.5}` + "\n"
	if buf.String() != want {
		t.Errorf("line:\n got %s\nwant %s", buf.String(), want)
	}
	// Another zone is written in UTC.
	local := e
	local.Start = e.Start.In(time.FixedZone("X", 3600))
	got, _ := local.MarshalJSON()
	if !strings.Contains(string(got), `"start":"2026-03-01T12:00:01.234Z"`) {
		t.Errorf("not UTC: %s", got)
	}
}

func TestTruthRoundTrip(t *testing.T) {
	events, err := newFleet(t, 4).Plan(planSpec(20))
	if err != nil {
		t.Fatal(err)
	}
	events = append(events, model.Event{Device: "node-000", Kind: model.KindMalformed, Start: t0, End: t0})
	path := filepath.Join(t.TempDir(), "truth.jsonl")
	tw, err := model.CreateTruth(path)
	if err != nil {
		t.Fatal(err)
	}
	// Concurrent writers: lines stay whole; order is free.
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := w; i < len(events); i += 4 {
				if err := tw.Write(events[i]); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := tw.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if err := tw.Write(events[0]); !errors.Is(err, model.ErrClosed) {
		t.Errorf("Write after Close: %v, want ErrClosed", err)
	}
	got, err := model.ReadTruthFile(path)
	if err != nil {
		t.Fatal(err)
	}
	key := func(a, b model.Event) int {
		return strings.Compare(a.Device+a.Metric+a.Kind+a.Start.String(), b.Device+b.Metric+b.Kind+b.Start.String())
	}
	slices.SortFunc(got, key)
	slices.SortFunc(events, key)
	if len(got) != len(events) {
		t.Fatalf("read %d events, wrote %d", len(got), len(events))
	}
	for i := range got {
		// time.Time from parsing differs in representation only: compare
		// with Equal.
		g, w := got[i], events[i]
		if !g.Start.Equal(w.Start) || !g.End.Equal(w.End) {
			t.Fatalf("event %d times: got %+v want %+v", i, g, w)
		}
		g.Start, g.End = w.Start, w.End
		if !reflect.DeepEqual(g, w) {
			t.Fatalf("event %d: got %+v want %+v", i, g, w)
		}
	}
}

func TestTruthWriterRejects(t *testing.T) {
	tw := model.NewTruthWriter(&bytes.Buffer{})
	for _, e := range []model.Event{
		{Kind: model.KindSpike, Start: t0, End: t0},
		{Device: "d", Start: t0, End: t0},
		{Device: "d", Kind: "x", Start: t0, End: t0.Add(-1)},
	} {
		if err := tw.Write(e); !errors.Is(err, model.ErrInvalidEvent) {
			t.Errorf("Write(%+v) = %v, want ErrInvalidEvent", e, err)
		}
	}
}

type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }

func TestTruthWriterStickyError(t *testing.T) {
	tw := model.NewTruthWriter(failWriter{})
	e := model.Event{Device: "d", Kind: model.KindDropout, Start: t0, End: t0.Add(time.Second)}
	if err := tw.Write(e); err != nil {
		t.Fatalf("buffered write failed early: %v", err)
	}
	if err := tw.Flush(); err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Errorf("Flush = %v, want disk full", err)
	}
	if err := tw.Write(e); err == nil {
		t.Error("Write after a failed flush succeeded")
	}
	if err := tw.Close(); err == nil {
		t.Error("Close after a failed flush succeeded")
	}
}

func TestReadTruthErrors(t *testing.T) {
	for name, in := range map[string]string{
		"syntax":     "{\"device\":\"a\"\n",
		"bad time":   `{"device":"a","kind":"spike","start":"yesterday","end":"2026-03-01T00:00:00Z"}`,
		"no device":  `{"kind":"spike","start":"2026-03-01T00:00:00Z","end":"2026-03-01T00:00:00Z"}`,
		"long line":  strings.Repeat(" ", 70<<10) + "{}",
		"line 3 bad": "\n" + `{"device":"a","kind":"spike","start":"2026-03-01T00:00:00Z","end":"2026-03-01T00:00:01Z"}` + "\nnope\n",
	} {
		_, err := model.ReadTruth(strings.NewReader(in))
		if err == nil {
			t.Errorf("%s: no error", name)
			continue
		}
		if name == "line 3 bad" && !strings.Contains(err.Error(), "line 3") {
			t.Errorf("%s: error %q does not name line 3", name, err)
		}
	}
}

func TestReadTruthFileErrors(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "missing.jsonl")
	if _, err := model.ReadTruthFile(missing); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("ReadTruthFile(missing) = %v, want fs.ErrNotExist", err)
	}
	bad := filepath.Join(t.TempDir(), "bad.jsonl")
	if err := os.WriteFile(bad, []byte("\nnope\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := model.ReadTruthFile(bad); err == nil || !strings.Contains(err.Error(), "line 2") || !strings.Contains(err.Error(), bad) {
		t.Errorf("ReadTruthFile(bad) = %v, want an error naming line 2 of %s", err, bad)
	}
}

// FuzzReadTruth feeds arbitrary input to the truth reader: it must not
// panic, and what it accepts must survive a write and a read unchanged.
func FuzzReadTruth(f *testing.F) {
	f.Add(`{"device":"a","metric":"temperature","kind":"spike","start":"2026-03-01T00:00:00.000Z","end":"2026-03-01T00:00:02.500Z","magnitude":4}`)
	f.Add(`{"device":"a","metric":"","kind":"dropout","start":"2026-03-01T00:00:00Z","end":"2026-03-01T01:00:00+01:00","magnitude":0}` + "\n\n")
	f.Add("{}\n[]\n")
	f.Fuzz(func(t *testing.T, in string) {
		events, err := model.ReadTruth(strings.NewReader(in))
		if err != nil {
			return
		}
		var buf bytes.Buffer
		tw := model.NewTruthWriter(&buf)
		for _, e := range events {
			if err := tw.Write(e); err != nil {
				t.Fatalf("accepted event %+v does not write: %v", e, err)
			}
		}
		if err := tw.Close(); err != nil {
			t.Fatal(err)
		}
		again, err := model.ReadTruth(&buf)
		if err != nil || len(again) != len(events) {
			t.Fatalf("re-read: %d events, %v; want %d", len(again), err, len(events))
		}
		for i := range again {
			a, e := again[i], events[i]
			if a.Device != e.Device || a.Metric != e.Metric || a.Kind != e.Kind || a.Magnitude != e.Magnitude ||
				!a.Start.Equal(e.Start.Truncate(time.Millisecond)) || !a.End.Equal(e.End.Truncate(time.Millisecond)) {
				t.Fatalf("event %d changed: %+v became %+v", i, e, a)
			}
		}
	})
}

// TestPublishedLine: the published tally adds one optional field,
// readings, that older readers ignore and other lines never carry.
func TestPublishedLine(t *testing.T) {
	e := model.Event{
		Device: "node-1", Kind: model.KindPublished,
		Start:    time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC),
		End:      time.Date(2026, 3, 1, 12, 10, 0, 1_000_000, time.UTC),
		Readings: 1800,
	}
	b, err := e.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	want := `{"device":"node-1","metric":"","kind":"published","start":"2026-03-01T12:00:00.000Z","end":"2026-03-01T12:10:00.001Z","magnitude":0,"readings":1800}`
	if string(b) != want {
		t.Errorf("line:\n got %s\nwant %s", b, want)
	}
	got, err := model.ReadTruth(strings.NewReader(string(b) + "\n"))
	if err != nil || len(got) != 1 || got[0] != e {
		t.Errorf("read back %+v, %v; want %+v", got, err, e)
	}
	spike, _ := model.Event{Device: "d", Metric: "m", Kind: model.KindSpike, Start: e.Start, End: e.End}.MarshalJSON()
	if strings.Contains(string(spike), "readings") {
		t.Errorf("an anomaly line carries readings: %s", spike)
	}
}
