package verify

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/tributary-iot/tributary/protocol"
)

// Record is one stream record as read.
type Record struct {
	Shard        string
	Sequence     string
	PartitionKey string
	Arrival      time.Time // ApproximateArrivalTimestamp
	Read         time.Time // when the verifier got it
	Data         []byte
}

// rkey is a reading's natural key within its device: the metric interned.
type rkey struct {
	t int64 // device time, µs
	m uint32
}

type devState struct {
	seen       map[rkey]struct{}
	received   uint64
	dup        uint64
	outOfOrder uint64
	last       int64 // latest device time seen so far
}

// Checker compares stream records with a Truth. Feed it every record of a
// device in stream order (Add), then ask for the Report. It is not safe
// for concurrent use.
type Checker struct {
	truth   *Truth
	stamp   Stamper
	metrics map[string]uint32
	devices map[string]*devState

	records, decodeErrors, keyMismatch uint64
	health                             uint64
	healthDevices                      map[string]uint64
	lat                                histogram
	negative                           uint64
	scratch                            []protocol.Reading
}

// NewChecker returns a Checker against t that measures latency to stamp
// (nil: ArrivalStamp).
func NewChecker(t *Truth, stamp Stamper) *Checker {
	if stamp == nil {
		stamp = ArrivalStamp{}
	}
	return &Checker{truth: t, stamp: stamp, metrics: map[string]uint32{}, devices: map[string]*devState{},
		healthDevices: map[string]uint64{}}
}

// Add takes one record. A record that does not decode is counted, not
// fatal.
func (c *Checker) Add(r *Record) {
	c.records++
	rec, err := protocol.DecodeRecordInto(c.scratch[:0], r.Data)
	if err != nil {
		c.decodeErrors++
		return
	}
	c.scratch = rec.Readings[:0]
	if rec.Device != r.PartitionKey {
		c.keyMismatch++
	}
	stamp := c.stamp.Stamp(r)
	c.AddReadings(rec.Readings, stamp)
}

// AddReadings takes the readings of one record (each with Device set),
// stamped with the record's delivery time.
func (c *Checker) AddReadings(rs []protocol.Reading, stamp time.Time) {
	for i := range rs {
		rd := &rs[i]
		if strings.HasPrefix(rd.Name, protocol.HealthPrefix) {
			c.health++
			c.healthDevices[rd.Device]++
			continue
		}
		d := c.devices[rd.Device]
		if d == nil {
			d = &devState{seen: map[rkey]struct{}{}, last: rd.Time}
			c.devices[strings.Clone(rd.Device)] = d
		}
		m, ok := c.metrics[rd.Name]
		if !ok {
			m = uint32(len(c.metrics))
			c.metrics[strings.Clone(rd.Name)] = m
		}
		d.received++
		k := rkey{t: rd.Time, m: m}
		if _, dup := d.seen[k]; dup {
			d.dup++
			continue
		}
		d.seen[k] = struct{}{}
		if rd.Time < d.last {
			d.outOfOrder++
		}
		d.last = max(d.last, rd.Time)
		if !stamp.IsZero() {
			lat := stamp.Sub(time.UnixMicro(rd.Time).Add(-c.truth.Skew[rd.Device])).Microseconds()
			if lat < 0 {
				c.negative++
			}
			c.lat.add(lat)
		}
	}
}

// Counts are the reading counts of a device or of the whole stream.
type Counts struct {
	Expected   uint64 `json:"expected"`     // published, says the truth
	Received   uint64 `json:"received"`     // in the stream, duplicates included
	Unique     uint64 `json:"unique"`       // distinct natural keys in the stream
	Lost       uint64 `json:"lost"`         // expected but not in the stream
	Duplicated uint64 `json:"duplicated"`   // extra copies of a natural key
	Unexpected uint64 `json:"unexpected"`   // in the stream but not in the truth
	OutOfOrder uint64 `json:"out_of_order"` // readings whose device time is before an earlier one of the device in the stream
}

func (c *Counts) add(o Counts) {
	c.Expected += o.Expected
	c.Received += o.Received
	c.Unique += o.Unique
	c.Lost += o.Lost
	c.Duplicated += o.Duplicated
	c.Unexpected += o.Unexpected
	c.OutOfOrder += o.OutOfOrder
}

// Bad reports whether the counts fail the check: anything lost,
// duplicated or out of order.
func (c Counts) Bad() bool { return c.Lost != 0 || c.Duplicated != 0 || c.OutOfOrder != 0 }

// DeviceReport is one device's counts.
type DeviceReport struct {
	Device string `json:"device"`
	Counts
	// InTruth is false for a device the truth does not know: all its
	// readings are unexpected.
	InTruth bool `json:"in_truth"`
	// OutsideSpan counts unique readings outside the device's published
	// span (part of Unexpected).
	OutsideSpan uint64 `json:"outside_span,omitempty"`
	// LargestGap, for a device with losses, is the longest stretch of
	// device time without a reading within its span (the first and last
	// readings bound it, or the span's ends).
	LargestGap *Gap `json:"largest_gap,omitempty"`
}

// Gap is a stretch of device time without readings.
type Gap struct {
	From    time.Time `json:"from"`
	To      time.Time `json:"to"`
	Seconds float64   `json:"seconds"`
}

// Result is what the Checker found.
type Result struct {
	Records        uint64            `json:"records"`
	DecodeErrors   uint64            `json:"decode_errors"`  // records that are not valid stream records
	KeyMismatches  uint64            `json:"key_mismatches"` // records whose partition key is not their device
	Totals         Counts            `json:"totals"`
	Health         uint64            `json:"health_readings"` // gateway health readings (agent.*), not compared
	HealthGateways map[string]uint64 `json:"health_gateways,omitempty"`
	Latency        Latency           `json:"latency"`
	Devices        []DeviceReport    `json:"devices"` // worst first: lost, duplicated, out of order, unexpected, then by id
}

// Result compares what was added with the truth.
func (c *Checker) Result() *Result {
	res := &Result{Records: c.records, DecodeErrors: c.decodeErrors, KeyMismatches: c.keyMismatch,
		Health: c.health, Latency: c.lat.summary(fmt.Sprint(c.stamp), c.negative)}
	if len(c.healthDevices) > 0 {
		res.HealthGateways = c.healthDevices
	}
	for id, tally := range c.truth.Devices {
		res.Devices = append(res.Devices, c.device(id, &tally, c.devices[id]))
	}
	for id, d := range c.devices {
		if _, ok := c.truth.Devices[id]; !ok {
			res.Devices = append(res.Devices, c.device(id, nil, d))
		}
	}
	for _, d := range res.Devices {
		res.Totals.add(d.Counts)
	}
	slices.SortFunc(res.Devices, func(a, b DeviceReport) int {
		for _, k := range [][2]uint64{{a.Lost, b.Lost}, {a.Duplicated, b.Duplicated}, {a.OutOfOrder, b.OutOfOrder}, {a.Unexpected, b.Unexpected}} {
			if k[0] != k[1] {
				if k[0] > k[1] {
					return -1
				}
				return 1
			}
		}
		return strings.Compare(a.Device, b.Device)
	})
	return res
}

func (c *Checker) device(id string, tally *Tally, d *devState) DeviceReport {
	r := DeviceReport{Device: id, InTruth: tally != nil}
	if tally != nil {
		r.Expected = tally.Readings
	}
	if d == nil {
		r.Lost = r.Expected
		if tally != nil && r.Lost > 0 {
			r.LargestGap = &Gap{From: tally.Start, To: tally.End, Seconds: tally.End.Sub(tally.Start).Seconds()}
		}
		return r
	}
	r.Received, r.Unique, r.Duplicated, r.OutOfOrder = d.received, uint64(len(d.seen)), d.dup, d.outOfOrder
	if tally == nil {
		r.Unexpected = r.Unique
		return r
	}
	from, to := tally.Start.UnixMicro(), tally.End.UnixMicro()
	var inSpan uint64
	for k := range d.seen {
		if k.t >= from && k.t < to {
			inSpan++
		}
	}
	r.OutsideSpan = r.Unique - inSpan
	r.Unexpected = r.OutsideSpan
	if inSpan > r.Expected {
		r.Unexpected += inSpan - r.Expected
	} else {
		r.Lost = r.Expected - inSpan
	}
	if r.Lost > 0 {
		r.LargestGap = largestGap(d, from, to)
	}
	return r
}

// largestGap finds the longest stretch of [from, to) without a reading.
func largestGap(d *devState, from, to int64) *Gap {
	ts := make([]int64, 0, len(d.seen)+2)
	ts = append(ts, from)
	for k := range d.seen {
		if k.t >= from && k.t < to {
			ts = append(ts, k.t)
		}
	}
	ts = append(ts, to)
	slices.Sort(ts)
	var best [2]int64
	for i := 1; i < len(ts); i++ {
		if ts[i]-ts[i-1] > best[1]-best[0] {
			best = [2]int64{ts[i-1], ts[i]}
		}
	}
	return &Gap{From: time.UnixMicro(best[0]).UTC(), To: time.UnixMicro(best[1]).UTC(),
		Seconds: float64(best[1]-best[0]) / 1e6}
}
