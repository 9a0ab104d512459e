package plan_test

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tributary-iot/tributary/cloud/plan"
	"github.com/tributary-iot/tributary/protocol"
)

func constraint(t *testing.T, c plan.Capacity, name string) plan.Constraint {
	t.Helper()
	for _, x := range c.Constraints {
		if x.Name == name {
			return x
		}
	}
	t.Fatalf("no constraint %s", name)
	return plan.Constraint{}
}

// The shard count is the largest of the four constraints, with headroom.
func TestShards(t *testing.T) {
	p := prices(t, func(*plan.Prices) {})
	for _, c := range []struct {
		name     string
		headroom float64
		edit     func(*plan.Fleet)
		traffic  plan.Traffic
		shards   int
		binding  string
	}{
		// 10,000 records/s of 100 bytes: records bind (10), bytes need 1.
		{"records", 0, nil, plan.Uniform(1, 10_000, 100, 0, 1), 10, "write_records"},
		// 25% headroom: 12,500 records/s.
		{"records with headroom", 0.25, nil, plan.Uniform(1, 10_000, 100, 0, 1), 13, "write_records"},
		// 100 records/s of 35 KB: 3.4 MiB/s.
		{"bytes", 0, nil, plan.Uniform(1, 100, 35<<10, 0, 1), 4, "write_bytes"},
		// 3 consumers share 2 MiB/s a shard: 3 × 1.5 MiB/s = 4.5 MiB/s out.
		{"shared reads", 0, func(f *plan.Fleet) { f.Consumers = 3 },
			plan.Uniform(1, 150, 10<<10, 0, 1), 3, "read_bytes"},
		// With enhanced fan-out each consumer has its own 2 MiB/s: writes bind.
		{"fan-out", 0, func(f *plan.Fleet) { f.Consumers, f.EnhancedFanOut = 3, true },
			plan.Uniform(1, 150, 10<<10, 0, 1), 2, "write_bytes"},
		// 6 consumers polling every 200 ms: 30 calls/s a shard, never met.
		{"read calls", 0, func(f *plan.Fleet) { f.Consumers, f.PollInterval = 6, 200*time.Millisecond },
			plan.Uniform(1, 10, 100, 0, 1), 1, "write_bytes"},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := fleet(t, c.headroom, c.edit)
			pl := plan.Compute(f, c.traffic, p)
			if pl.Capacity.Shards != c.shards || pl.Capacity.Binding != c.binding {
				t.Errorf("%d shards bound by %s, want %d by %s (%+v)", pl.Capacity.Shards, pl.Capacity.Binding, c.shards, c.binding, pl.Capacity.Constraints)
			}
			rc := constraint(t, pl.Capacity, "read_calls")
			if unmet := rc.Shards == 0; unmet != (c.name == "read calls") {
				t.Errorf("read_calls %+v", rc)
			}
			if c.name == "read calls" && !strings.Contains(rc.Note, "1.2s") {
				t.Errorf("read_calls note %q: want the poll interval that fits (6 consumers: 1.2s)", rc.Note)
			}
		})
	}
}

// A device whose samples are further apart than the batch period sends a
// record per sample, and that record is exactly what the ingest's encoder
// makes of one sample.
func TestMeasureOneSamplePerRecord(t *testing.T) {
	f := fleet(t, 0, func(f *plan.Fleet) { f.Devices, f.Rate = 500, 0.5 })
	tr, err := plan.Measure(f)
	if err != nil {
		t.Fatal(err)
	}
	var rs []protocol.Reading
	for _, m := range plan.DefaultMetrics {
		rs = append(rs, protocol.Reading{Device: f.DeviceID, Name: m.Name, Unit: m.Unit, Kind: protocol.KindFloat,
			Value: m.Value, Time: 1_796_000_123_456_789, Received: 1_796_000_123_458_001})
	}
	rec, err := protocol.AppendRecord(nil, f.Gateway, rs)
	if err != nil {
		t.Fatal(err)
	}
	want := float64(len(rec) + len(f.DeviceID))
	if tr.RecordsPerSec != 250 || tr.ReadingsPerSec != 750 || tr.BytesPerRecord != want || tr.ReadingsPerRecord != 3 {
		t.Errorf("%+v: want 250 records/s of %v bytes, 3 readings each", tr, want)
	}
	if tr.PutUnitsPerSec != 250 || tr.BilledInBytesPerSec != 250*1024 {
		t.Errorf("billing units %+v: want one PUT unit and 1 KB per record", tr)
	}
}

// Batching as the agent does it: a batch every batch_age, or sooner when
// batch_readings fill; one record per device per batch.
func TestMeasureBatching(t *testing.T) {
	for _, c := range []struct {
		name              string
		edit              func(*plan.Fleet)
		recordsPerSec     float64
		readingsPerRecord float64
	}{
		// 10 samples/s, a batch a second: one 30-reading record a second.
		{"batch_age", func(f *plan.Fleet) { f.Devices, f.Rate = 100, 10 }, 100, 30},
		// 10,000 devices on one gateway at 3 readings/s: a batch fills
		// 5,000 readings every 1/6 s, so each sample is its own record.
		{"batch_readings, sparse", func(f *plan.Fleet) { f.Devices, f.Gateways = 10_000, 1 }, 10_000, 3},
		// 1,000 devices at 10 samples/s on one gateway: 30,000 readings/s,
		// a batch every 1/6 s holds 10/6 samples of a device.
		{"batch_readings, dense", func(f *plan.Fleet) { f.Devices, f.Gateways, f.Rate = 1000, 1, 10 }, 6000, 5},
		// 5 s batches of 100 samples/s: 1,500 readings a device a batch,
		// split at 25 KiB by the encoder.
		{"split", func(f *plan.Fleet) { f.Devices, f.Rate, f.BatchAge = 1, 100, 5*time.Second }, 0, 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := fleet(t, 0, c.edit)
			tr, err := plan.Measure(f)
			if err != nil {
				t.Fatal(err)
			}
			if c.recordsPerSec == 0 { // the split case
				records := tr.RecordsPerSec * 5 // per batch
				if records < 2 || tr.BytesPerRecord > float64(protocol.TargetRecordBytes+len(f.DeviceID)) || tr.PutUnitsPerSec != tr.RecordsPerSec {
					t.Errorf("%+v: want several records a batch, each under 25 KiB and 1 PUT unit", tr)
				}
				return
			}
			if d := tr.RecordsPerSec - c.recordsPerSec; d > 1e-6 || d < -1e-6 {
				t.Errorf("records/s %v, want %v", tr.RecordsPerSec, c.recordsPerSec)
			}
			if d := tr.ReadingsPerRecord - c.readingsPerRecord; d > 1e-6 || d < -1e-6 {
				t.Errorf("readings per record %v, want %v", tr.ReadingsPerRecord, c.readingsPerRecord)
			}
		})
	}
	// More readings per record cost fewer bytes per reading (the record's
	// header is shared).
	one, _ := plan.Measure(fleet(t, 0, func(f *plan.Fleet) { f.Devices = 10 }))
	ten, _ := plan.Measure(fleet(t, 0, func(f *plan.Fleet) { f.Devices, f.BatchAge = 10, 10*time.Second }))
	if ten.BytesPerReading >= one.BytesPerReading {
		t.Errorf("bytes per reading: %v with 10 s batches, %v with 1 s", ten.BytesPerReading, one.BytesPerReading)
	}
}

// Retention above 24 h adds extended retention; above 7 days, long-term.
func TestRetentionLines(t *testing.T) {
	p := prices(t, func(*plan.Prices) {})
	tr := plan.Uniform(1, 1000, 1000, 0, 1)
	for _, c := range []struct {
		retention time.Duration
		extended  bool
		longTerm  bool
	}{{24 * time.Hour, false, false}, {72 * time.Hour, true, false}, {30 * 24 * time.Hour, true, true}} {
		pl := plan.Compute(fleet(t, 0, func(f *plan.Fleet) { f.Retention = c.retention }), tr, p)
		for _, engine := range []string{"Kinesis provisioned", "Kinesis on-demand"} {
			var ext, long bool
			for _, l := range estimate(t, pl, engine).Lines {
				ext = ext || strings.HasPrefix(l.Item, "extended retention")
				long = long || strings.HasPrefix(l.Item, "long-term retention")
			}
			if ext != c.extended || long != c.longTerm {
				t.Errorf("%s, retention %v: extended %v long-term %v", engine, c.retention, ext, long)
			}
		}
	}
	// 30 days keep 23 days beyond the first 7 in long-term storage.
	pl := plan.Compute(fleet(t, 0, func(f *plan.Fleet) { f.Retention = 30 * 24 * time.Hour }), tr, p)
	for _, l := range estimate(t, pl, "Kinesis provisioned").Lines {
		if want := 1000 * 1000 * 23 * 86400.0 / plan.GB; l.Item == "long-term retention (beyond 7 days)" && l.Quantity != want {
			t.Errorf("long-term GB-month %v, want %v", l.Quantity, want)
		}
	}
}

// The text says which price file and date it used; JSON round-trips.
func TestOutput(t *testing.T) {
	f := fleet(t, 0.25, func(f *plan.Fleet) { f.Devices = 10_000 })
	tr, err := plan.Measure(f)
	if err != nil {
		t.Fatal(err)
	}
	pl := plan.Compute(f, tr, prices(t, func(*plan.Prices) {}))
	var b bytes.Buffer
	if err := plan.WriteText(&b, pl); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"embedded:us-east-1.yaml", "as of " + pl.Prices.AsOf, "Kinesis provisioned", "Kinesis on-demand",
		"MSK provisioned", "MSK Serverless", "PUT payload units", "10,000 devices"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("text lacks %q:\n%s", want, b.String())
		}
	}
	raw, err := json.Marshal(pl)
	if err != nil {
		t.Fatal(err)
	}
	var back plan.Plan
	if err := json.Unmarshal(raw, &back); err != nil || back.Capacity.Shards != pl.Capacity.Shards || len(back.Estimates) != 4 || back.Prices.AsOf == "" {
		t.Errorf("JSON round trip: %v %+v", err, back.Capacity)
	}
}

// A device's own SenML pack sets the readings of a sample: kinds, names
// and values as published.
func TestMeasureSample(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sample.json")
	pack := `[{"bn":"boiler-7/","n":"state","vs":"heating"},{"n":"flow","u":"l/min","v":12.25},{"n":"alarm","vb":false}]`
	if err := os.WriteFile(path, []byte(pack), 0o600); err != nil {
		t.Fatal(err)
	}
	f := fleet(t, 0, func(f *plan.Fleet) { f.Devices, f.Rate, f.Sample = 10, 0.5, path })
	if err := f.LoadSample(); err != nil {
		t.Fatal(err)
	}
	tr, err := plan.Measure(f)
	if err != nil {
		t.Fatal(err)
	}
	rs, err := protocol.DecodeSenML([]byte(pack), protocol.DecodeOptions{Device: f.DeviceID})
	if err != nil {
		t.Fatal(err)
	}
	for i := range rs {
		rs[i].Time, rs[i].Received = 1_796_000_123_456_789, 1_796_000_123_458_001
	}
	rec, err := protocol.AppendRecord(nil, f.Gateway, rs)
	if err != nil {
		t.Fatal(err)
	}
	if tr.ReadingsPerRecord != 3 || tr.BytesPerRecord != float64(len(rec)+len(f.DeviceID)) || tr.RecordsPerSec != 5 {
		t.Errorf("%+v: want 5 records/s of 3 readings, %d bytes", tr, len(rec)+len(f.DeviceID))
	}
	f.Sample = filepath.Join(t.TempDir(), "none.json")
	if err := f.LoadSample(); err == nil || !strings.Contains(err.Error(), "none.json") {
		t.Errorf("missing sample: %v", err)
	}
	if err := os.WriteFile(path, []byte(`{"not":"a pack"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	f.Sample = path
	if err := f.LoadSample(); err == nil || !strings.Contains(err.Error(), "SenML pack") {
		t.Errorf("bad sample: %v", err)
	}
}
