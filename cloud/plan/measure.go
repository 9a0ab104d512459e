package plan

import (
	"fmt"
	"math"

	"github.com/tributary-iot/tributary/protocol"
)

// Kinesis billing units.
const (
	PutPayloadUnitBytes = 25 << 10 // a PUT payload unit: 25 KB of one record
	OnDemandUnitBytes   = 1 << 10  // on-demand data in: each record rounded up to 1 KB
	GB                  = 1 << 30  // AWS meters GB as 2^30 bytes
	MiB                 = 1 << 20
)

// Traffic is what a fleet writes to the stream, per second. Byte rates
// count the data and the partition key, as Kinesis does for its
// throughput limits; the billing units (PUT payload units, on-demand's
// 1 KB) round each record's data payload up, as AWS's pricing page
// describes them.
type Traffic struct {
	Devices        int     `json:"devices"`
	ReadingsPerSec float64 `json:"readings_per_sec"`
	RecordsPerSec  float64 `json:"records_per_sec"`
	BytesPerSec    float64 `json:"bytes_per_sec"`
	// PutUnitsPerSec: each record's size in 25 KB units, rounded up.
	PutUnitsPerSec float64 `json:"put_payload_units_per_sec"`
	// BilledInBytesPerSec: each record rounded up to 1 KB (on-demand).
	BilledInBytesPerSec float64 `json:"on_demand_billed_bytes_per_sec"`

	ReadingsPerRecord float64 `json:"readings_per_record"`
	BytesPerRecord    float64 `json:"bytes_per_record"`
	BytesPerReading   float64 `json:"bytes_per_reading"`

	// Source says where the figures come from.
	Source string `json:"source"`
}

// group is one device's records from one batch.
type group struct {
	records, bytes, putUnits, billedIn float64
}

func (g group) scale(k float64) group {
	return group{g.records * k, g.bytes * k, g.putUnits * k, g.billedIn * k}
}

func (g group) add(h group) group {
	return group{g.records + h.records, g.bytes + h.bytes, g.putUnits + h.putUnits, g.billedIn + h.billedIn}
}

// Measure works out a fleet's traffic the way the agent batches and the
// ingest writes: a gateway sends a batch every batch_age, or sooner when
// batch_readings fill it; the ingest writes each device's readings of a
// batch as one SenML-CBOR record (split at 25 KiB), encoded here with
// protocol.EncodeRecords, the ingest's own encoder. f must be valid (see
// Fleet.Validate).
func Measure(f *Fleet) (Traffic, error) {
	m := float64(f.readingsPerSample())
	perGateway := f.Rate * m * float64(f.Devices) / float64(f.Gateways)
	period := min(f.BatchAge.Seconds(), float64(f.BatchReadings)/perGateway)
	// Samples of one device in one batch: at least one (a device whose
	// sample interval is longer than the batch period sends one record
	// per sample).
	n := max(1, f.Rate*period)
	lo, hi := math.Floor(n), math.Ceil(n)
	g, err := encodeGroup(f, int(lo))
	if err != nil {
		return Traffic{}, err
	}
	if hi != lo {
		g2, err := encodeGroup(f, int(hi))
		if err != nil {
			return Traffic{}, err
		}
		w := n - lo
		g = g.scale(1 - w).add(g2.scale(w))
	}
	perSec := float64(f.Devices) * f.Rate / n // groups per second, fleet-wide
	t := Traffic{
		Devices:             f.Devices,
		ReadingsPerSec:      float64(f.Devices) * f.Rate * m,
		RecordsPerSec:       perSec * g.records,
		BytesPerSec:         perSec * g.bytes,
		PutUnitsPerSec:      perSec * g.putUnits,
		BilledInBytesPerSec: perSec * g.billedIn,
		Source: fmt.Sprintf("fleet: %d readings per sample, %.3g samples per device per record group (batch every %.3gs), encoded with protocol.EncodeRecords",
			f.readingsPerSample(), n, period),
	}
	t.derive()
	return t, nil
}

// derive fills the per-record figures from the rates.
func (t *Traffic) derive() {
	if t.RecordsPerSec > 0 {
		t.ReadingsPerRecord = t.ReadingsPerSec / t.RecordsPerSec
		t.BytesPerRecord = t.BytesPerSec / t.RecordsPerSec
	}
	if t.ReadingsPerSec > 0 {
		t.BytesPerReading = t.BytesPerSec / t.ReadingsPerSec
	}
}

// baseTime is a device time in 2026, in µs: the encoding of a time
// depends on its magnitude, so it is a realistic one.
const baseTime = 1_796_000_000_000_000

// encodeGroup encodes samples samples of one device as the ingest does and
// sums what Kinesis would meter.
func encodeGroup(f *Fleet, samples int) (group, error) {
	tmpl := f.sample
	if tmpl == nil {
		for _, m := range f.Metrics {
			tmpl = append(tmpl, protocol.Reading{Name: m.Name, Unit: m.Unit, Kind: protocol.KindFloat, Value: m.Value})
		}
	}
	rs := make([]protocol.Reading, 0, samples*len(tmpl))
	step := int64(1e6 / f.Rate)
	for s := range samples {
		// Devices stamp their own clock: µs jitter, as real samples have.
		t := baseTime + int64(s)*step + int64(s*7919%1000)
		for _, r := range tmpl {
			r.Device, r.Time, r.Received = f.DeviceID, t, t+1537 // Flags kept: a device without a clock costs an fl label
			rs = append(rs, r)
		}
	}
	key := len(protocol.PartitionKey(f.DeviceID))
	var g group
	err := protocol.EncodeRecords(f.Gateway, rs, 0, func(data []byte, _ []protocol.Reading) error {
		units, billed := RecordUnits(len(data))
		g.records++
		g.bytes += float64(len(data) + key)
		g.putUnits += float64(units)
		g.billedIn += float64(billed)
		return nil
	})
	if err != nil {
		return group{}, fmt.Errorf("plan: encoding a sample record: %w", err)
	}
	return g, nil
}

// RecordUnits is what AWS bills for one record of data bytes: its PUT
// payload units (25 KB each, rounded up: a 5 KB record is 1 unit, a 45 KB
// record 2) and its on-demand data in (rounded up to 1 KB: 4.5 KB counts
// as 5 KB).
func RecordUnits(data int) (putUnits, billedInBytes int) {
	putUnits = max(1, (data+PutPayloadUnitBytes-1)/PutPayloadUnitBytes)
	billedInBytes = max(1, (data+OnDemandUnitBytes-1)/OnDemandUnitBytes) * OnDemandUnitBytes
	return putUnits, billedInBytes
}

// Uniform is the traffic of records that are all alike: recordsPerSec
// records of dataBytes data and keyBytes partition key, each carrying
// readingsPerRecord readings. It is how a worked example or a measured
// mean record is priced.
func Uniform(devices int, recordsPerSec float64, dataBytes, keyBytes int, readingsPerRecord float64) Traffic {
	units, billed := RecordUnits(dataBytes)
	t := Traffic{
		Devices:             devices,
		ReadingsPerSec:      recordsPerSec * readingsPerRecord,
		RecordsPerSec:       recordsPerSec,
		BytesPerSec:         recordsPerSec * float64(dataBytes+keyBytes),
		PutUnitsPerSec:      recordsPerSec * float64(units),
		BilledInBytesPerSec: recordsPerSec * float64(billed),
		Source:              fmt.Sprintf("%g records/s of %d bytes", recordsPerSec, dataBytes+keyBytes),
	}
	t.derive()
	return t
}
