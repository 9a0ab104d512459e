package fleet

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"sync/atomic"
	"syscall"
	"time"
)

// Totals are the fleet's counters: the sum of its nodes' node.Stats plus
// what the fleet itself did.
type Totals struct {
	Connected         int    `json:"connected"`          // devices connected to the broker now (0 in the final summary)
	Samples           uint64 `json:"samples"`            // samples taken (dropout samples included)
	DropoutSamples    uint64 `json:"dropout_samples"`    // samples that published nothing because of a dropout
	SenseErrors       uint64 `json:"sense_errors"`       // failed samples
	Rejected          uint64 `json:"rejected"`           // measurements not published (NaN, bad name)
	MissedTicks       uint64 `json:"missed_ticks"`       // ticks skipped because sampling fell behind
	ReadingsPublished uint64 `json:"readings_published"` // readings acknowledged by the broker (QoS 1)
	PacksPublished    uint64 `json:"packs_published"`    // MQTT messages acknowledged
	Dropped           uint64 `json:"dropped"`            // readings dropped from full buffers
	Unsent            uint64 `json:"unsent"`             // readings still buffered when their node stopped
	Buffered          int    `json:"buffered"`           // readings waiting to be published now
	Reconnects        uint64 `json:"reconnects"`         // connections after each device's first
	Severed           uint64 `json:"severed"`            // connections cut by disconnect storms
	MalformedSent     uint64 `json:"malformed_sent"`     // malformed payloads acknowledged by the broker
	MalformedFailed   uint64 `json:"malformed_failed"`   // malformed payloads that could not be published
}

// Summary is the end-of-run report, written as JSON to Config.Summary.
// Counts are exact: they are the nodes' own counters after every node
// stopped.
type Summary struct {
	Devices    int       `json:"devices"`
	Rate       float64   `json:"rate"`
	Seed       int64     `json:"seed"`
	Sensors    string    `json:"sensors"`
	Start      time.Time `json:"start"`       // the run's start (plan window start)
	Stop       time.Time `json:"stop"`        // when sampling stopped
	End        time.Time `json:"end"`         // when every node had flushed and disconnected
	RunSeconds float64   `json:"run_seconds"` // Stop - Start

	Totals
	MaxConnected  int              `json:"max_connected"`  // most devices connected at once (checked every second)
	EverConnected int              `json:"ever_connected"` // devices that opened a connection at least once
	Truth         map[string]int64 `json:"truth"`          // truth lines by kind

	// The simulator process's resources over the whole run.
	CPUUserSeconds   float64 `json:"cpu_user_seconds"`
	CPUSystemSeconds float64 `json:"cpu_system_seconds"`
	MaxRSSBytes      int64   `json:"max_rss_bytes"`
}

// String is the one-line human summary.
func (s *Summary) String() string {
	return fmt.Sprintf("tributary-sim: %d devices, %.1fs: %d readings in %d messages published (%.0f readings/s), "+
		"%d samples, %d dropped, %d unsent, %d sense errors, %d reconnects, %d severed, %d malformed sent, %d truth events; "+
		"cpu %.1fs, max rss %d MiB",
		s.Devices, s.RunSeconds, s.ReadingsPublished, s.PacksPublished, float64(s.ReadingsPublished)/max(s.RunSeconds, 1e-9),
		s.Samples, s.Dropped, s.Unsent, s.SenseErrors, s.Reconnects, s.Severed, s.MalformedSent, s.truthTotal(),
		s.CPUUserSeconds+s.CPUSystemSeconds, s.MaxRSSBytes>>20)
}

func (s *Summary) truthTotal() int64 {
	var n int64
	for _, v := range s.Truth {
		n += v
	}
	return n
}

func (s *Summary) writeFile(path string) error {
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return fmt.Errorf("fleet: summary: %w", err)
	}
	if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("fleet: write summary: %w", err)
	}
	return nil
}

// malformedStats counts the malformed payloads.
type malformedStats struct {
	sent, failed atomic.Uint64
}

// totals sums the nodes' counters now.
func (r *runner) totals() Totals {
	var t Totals
	for _, d := range r.devices {
		st := d.node.Stats()
		if st.Connected {
			t.Connected++
		}
		t.Samples += st.Samples
		t.SenseErrors += st.SenseErrors
		t.Rejected += st.Rejected
		t.MissedTicks += st.MissedTicks
		t.ReadingsPublished += st.ReadingsPublished
		t.PacksPublished += st.PacksPublished
		t.Dropped += st.Dropped
		t.Unsent += st.Unsent
		t.Buffered += st.Buffered
		t.Reconnects += st.Reconnects
		t.DropoutSamples += d.quiet.Load()
		t.Severed += d.link.severed()
	}
	t.MalformedSent = r.malformed.sent.Load()
	t.MalformedFailed = r.malformed.failed.Load()
	return t
}

// progress checks the fleet every second (for MaxConnected) and logs a
// progress line every StatsEvery, until done closes.
func (r *runner) progress(ctx context.Context, done <-chan struct{}) {
	every := r.cfg.StatsEvery
	tick := time.NewTicker(min(time.Second, max(every, 100*time.Millisecond)))
	defer tick.Stop()
	last, lastAt := Totals{}, time.Now()
	for {
		select {
		case <-done:
			return
		case now := <-tick.C:
			t := r.totals()
			r.maxConnected = max(r.maxConnected, t.Connected)
			if every <= 0 || now.Sub(lastAt) < every-50*time.Millisecond {
				continue
			}
			dt := now.Sub(lastAt).Seconds()
			r.log.Info("progress",
				"connected", t.Connected,
				"devices", len(r.devices),
				"readings_per_s", round1(float64(t.ReadingsPublished-last.ReadingsPublished)/dt),
				"messages_per_s", round1(float64(t.PacksPublished-last.PacksPublished)/dt),
				"samples_per_s", round1(float64(t.Samples-last.Samples)/dt),
				"readings", t.ReadingsPublished,
				"messages", t.PacksPublished,
				"buffered", t.Buffered,
				"dropped", t.Dropped,
				"sense_errors", t.SenseErrors,
				"reconnects", t.Reconnects,
				"severed", t.Severed,
				"malformed", t.MalformedSent,
				"stopping", ctx.Err() != nil)
			last, lastAt = t, now
		}
	}
}

func round1(v float64) float64 { return float64(int64(v*10+0.5)) / 10 }

// summary builds the final summary once every node has stopped.
func (r *runner) summary(stop time.Time) *Summary {
	t := r.totals()
	s := &Summary{
		Devices: r.cfg.Devices, Rate: r.cfg.Rate, Seed: r.cfg.Seed, Sensors: r.cfg.Sensors,
		Start: r.start, Stop: stop, End: time.Now().UTC(),
		RunSeconds:   stop.Sub(r.start).Seconds(),
		Totals:       t,
		MaxConnected: r.maxConnected,
	}
	for _, d := range r.devices {
		if d.link.dialled() {
			s.EverConnected++
		}
	}
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) == nil {
		s.CPUUserSeconds = time.Duration(ru.Utime.Nano()).Seconds()
		s.CPUSystemSeconds = time.Duration(ru.Stime.Nano()).Seconds()
		s.MaxRSSBytes = int64(ru.Maxrss) * 1024 // kilobytes on Linux
	}
	return s
}
