package anomaly

import (
	"encoding/binary"
	"fmt"
	"hash/fnv"
	"math"
	"time"
)

// Event says what an Alert tells about its incident.
type Event uint8

// Events of an incident: one open, any number of updates, one resolve.
const (
	EventOpen    Event = iota // the series became anomalous
	EventUpdate               // it still is, and the incident changed (a new alarm, a higher peak, another kind)
	EventResolve              // it returned to normal
	numEvents
)

var eventNames = [numEvents]string{"open", "update", "resolve"}

// String returns the event's name.
func (e Event) String() string {
	if e < numEvents {
		return eventNames[e]
	}
	return fmt.Sprintf("event(%d)", uint8(e))
}

// MarshalText writes the name.
func (e Event) MarshalText() ([]byte, error) { return marshalName(eventNames[:], e, "event") }

// UnmarshalText reads a name.
func (e *Event) UnmarshalText(b []byte) error { return unmarshalName(eventNames[:], b, e, "event") }

// Range is a range of values, both ends included.
type Range struct {
	Low  float64 `json:"low"`
	High float64 `json:"high"`
}

// Reasons an incident resolved (Alert.Reason).
const (
	ReasonNormal    = "normal"    // its values and scores were back to normal for Config.AlertHoldoff points
	ReasonSettled   = "settled"   // its scores were normal for settleFactor times that, though its values stayed outside the expected range: a new normal
	ReasonResumed   = "resumed"   // a missing-data incident: a point arrived
	ReasonForgotten = "forgotten" // the Registry forgot the series (its bound, or Forget)
)

// settleFactor: an incident whose values stay outside their expected
// range, but whose scores have been normal for this many quiet periods,
// is resolved as settled.
const settleFactor = 10

// rangeWidth is the half-width of the expected range, in running
// standard deviations.
const rangeWidth = 4

// incident is the open incident of a series (point anomalies; missing
// data is a missingIncident), fixed-size state.
type incident struct {
	open     bool
	id       string
	start    time.Time
	kind     Kind
	peak     float64
	exp      Range
	quiet    int // consecutive points with normal scores and values
	calm     int // consecutive points with normal scores
	sinceUpd int // points since the last open or update
	// missing: the incident is a missing-data incident's, followed on
	// this series after it resumed (values are not compared with a
	// range: the series may have moved while it was silent).
	missing *missingIncident
}

// missingIncident is an open missing-data incident of a device (Metric
// "") or of one of its series: the series that went silent in one sweep
// share it, and the first of them to resume resolves it.
type missingIncident struct {
	alert    Alert // the open event
	series   int   // silent series that point at it
	resuming int   // series that resumed and are not yet back to normal
	resolved bool
}

// incidentID is an incident's id: a hash of its series and start, so the
// same incident found again (a redelivered batch after a restart) gets the
// same id.
func incidentID(device, metric string, start time.Time) string {
	h := fnv.New64a()
	h.Write([]byte(device))
	h.Write([]byte{0})
	h.Write([]byte(metric))
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], uint64(start.UnixNano()))
	h.Write(b[:])
	return fmt.Sprintf("%016x", h.Sum64())
}

// expected is the range of values the detector expects now: its running
// mean ± rangeWidth running standard deviations (both over about the
// last 500 points), widened by twice the noise scale (mean |Δx|) so that
// it is not empty on a flat series.
func (d *Detector) expected() Range {
	w := rangeWidth*math.Sqrt(max(d.vvar, 0)) + 2*d.sigma
	return Range{Low: d.vmean - w, High: d.vmean + w}
}

// learning reports whether the detector is still learning: in its
// warm-up, or before its slowest pattern memory has adapted its
// vigilance once to what follows its learning period (ARTime adapts it
// every patT/2 steps), so that its scores are not yet calibrated enough
// to open incidents on.
func (d *Detector) learning() bool {
	n := d.cfg.Warmup
	for i := range d.pat {
		n = max(n, d.pat[i].step*(patT+patT/2))
	}
	return d.n <= n
}

// openIncident starts the incident of a alarm a (kind, time, value,
// score) with the range expected before it, and returns its open event.
func (e *regEntry) openIncident(a Alert, exp Range) Alert {
	e.inc = incident{open: true, id: incidentID(a.Device, a.Metric, a.Time), start: a.Time,
		kind: a.Kind, peak: a.Score, exp: exp}
	return e.event(EventOpen, a)
}

// event fills a's incident fields from the open incident.
func (e *regEntry) event(ev Event, a Alert) Alert {
	a.ID, a.Event, a.Kind, a.Peak, a.Start, a.Expected = e.inc.id, ev, e.inc.kind, e.inc.peak, e.inc.start, e.inc.exp
	return a
}

// followIncident advances the open incident by one point with the
// detector's result res (alarm: res.Score reached the threshold): it
// returns an update event for a new alarm (at most one per quiet period)
// and a resolve event when the series is back to normal.
func (e *regEntry) followIncident(cfg *Config, res Result, t time.Time, v float64) (Alert, bool) {
	inc := &e.inc
	inc.sinceUpd++
	raw := 0.0
	for _, s := range res.Scores {
		raw = max(raw, s)
	}
	a := Alert{Device: e.key.Device, Metric: e.key.Metric, Time: t, Score: res.Score, Kind: res.Kind, Value: v}
	if res.Score >= cfg.AlertThreshold {
		inc.quiet, inc.calm = 0, 0
		changed := res.Score > inc.peak
		inc.peak = max(inc.peak, res.Score)
		if changed || inc.sinceUpd > cfg.AlertHoldoff {
			inc.sinceUpd = 0
			return e.event(EventUpdate, a), true
		}
		return Alert{}, false
	}
	if raw >= cfg.AlertThreshold/2 {
		inc.quiet, inc.calm = 0, 0
		return Alert{}, false
	}
	inc.calm++
	if inc.missing != nil || v >= inc.exp.Low && v <= inc.exp.High {
		inc.quiet++
	} else {
		inc.quiet = 0
	}
	var reason string
	switch {
	case inc.quiet >= cfg.AlertHoldoff:
		reason = ReasonNormal
	case inc.calm >= settleFactor*cfg.AlertHoldoff:
		reason = ReasonSettled
	default:
		return Alert{}, false
	}
	a = e.event(EventResolve, a)
	a.Score, a.End, a.Reason = 0, t, reason
	m := inc.missing
	*inc = incident{}
	if m != nil {
		// The missing-data incident resolves when every series that
		// resumed is back to normal, and none is still silent.
		m.resuming--
		if m.resolved || m.series > 0 || m.resuming > 0 {
			return Alert{}, false
		}
		m.resolved = true
		a.Reason, a.Metric = ReasonResumed, m.alert.Metric
	}
	return a, true
}

// forgetIncident resolves the open incident of a series the registry
// forgets, at the series' last point.
func (e *regEntry) forgetIncident() (Alert, bool) {
	if !e.inc.open {
		return Alert{}, false
	}
	a := e.event(EventResolve, Alert{Device: e.key.Device, Metric: e.key.Metric, Time: e.det.prevT, Value: e.det.prevV})
	a.End, a.Reason = e.det.prevT, ReasonForgotten
	e.inc = incident{}
	return a, true
}
