// Command alerts scores the anomaly detectors against the simulator's
// truth: fixed-seed simulated fleets of BME280 devices (temperature,
// humidity, pressure) with every anomaly kind the simulator injects
// (fleet.AnomalyKinds), planned and injected by simulator/model as
// tributary-sim plans them, are run through cloud/anomaly's Registry with
// the default Config, as tributary-cloud runs it (Observe on every
// reading, Sweep every 10 s), and the alerts are scored against the truth
// with simulator/verify's AlertScorer, as `tributary-sim verify
// -alerts-stream` scores them.
//
// Time is simulated: each device samples its model at the rate, with no
// wall clock, so a run is deterministic and an hour of a fleet takes a few
// seconds. What it leaves out of the live system: the sensors' chips and
// drivers (values are the model's, unquantised), transport and batching
// (the detectors see each reading at its device time, so Sweep sees no
// delivery delay), and the server's grouping of one device's missing-data
// alerts into one (here each metric of a silent device raises its own).
//
//	make bench-alerts     # go run ./simulator/bench/alerts
//	go run ./simulator/bench/alerts -seeds 1,2,3 -devices 100 -duration 1h -json
package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/tributary-iot/tributary/cloud/anomaly"
	"github.com/tributary-iot/tributary/simulator/fleet"
	"github.com/tributary-iot/tributary/simulator/model"
	"github.com/tributary-iot/tributary/simulator/verify"
)

// options is one bench: every fleet gets the same options and its own seed.
type options struct {
	Seeds       []int64
	Devices     int
	Rate        float64       // samples per second per device
	AnomalyRate float64       // anomalies per device-hour
	Duration    time.Duration // simulated
	Tolerance   time.Duration // an alert matches up to this long after an anomaly's end
}

// metrics are what a BME280 device publishes.
var metrics = []string{model.Temperature, model.Humidity, model.Pressure}

// start is the simulated runs' start (a fixed date: the model's diurnal
// and weather waves depend on it).
var start = time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)

// sweepEvery is how often tributary-cloud sweeps for silent series.
const sweepEvery = 10 * time.Second

// planWindow is how much of a run tributary-sim plans at a time; an
// anomaly lasts at most a quarter of it.
const planWindow = time.Hour

func main() {
	var o options
	seeds := flag.String("seeds", "1,2,3", "comma-separated fleet seeds: one fleet each")
	flag.IntVar(&o.Devices, "devices", 100, "devices per fleet")
	flag.Float64Var(&o.Rate, "rate", 2, "samples per second per device")
	flag.Float64Var(&o.AnomalyRate, "anomaly-rate", 12, "anomalies per device-hour")
	flag.DurationVar(&o.Duration, "duration", time.Hour, "simulated run per fleet")
	flag.DurationVar(&o.Tolerance, "tolerance", verify.DefaultAlertTolerance, "alert tolerance after an anomaly's end")
	asJSON := flag.Bool("json", false, "print the reports as JSON")
	flag.Parse()
	err := parseSeeds(*seeds, &o)
	if err == nil {
		err = o.validate()
	}
	if err != nil || flag.NArg() > 0 {
		fmt.Fprintln(os.Stderr, "alerts:", cmpErr(err, "unexpected arguments"))
		flag.Usage()
		os.Exit(2)
	}
	began := time.Now()
	reports := make([]*verify.AlertReport, len(o.Seeds))
	for i, seed := range o.Seeds {
		if reports[i], err = runFleet(seed, o); err != nil {
			fmt.Fprintln(os.Stderr, "alerts:", err)
			os.Exit(1)
		}
	}
	if *asJSON {
		err = json.NewEncoder(os.Stdout).Encode(reports)
	} else {
		err = writeTable(os.Stdout, o, reports)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "alerts:", err)
		os.Exit(1)
	}
	fmt.Fprintf(os.Stderr, "alerts: %d fleets in %s\n", len(o.Seeds), time.Since(began).Round(time.Millisecond))
}

func cmpErr(err error, otherwise string) string {
	if err != nil {
		return err.Error()
	}
	return otherwise
}

func parseSeeds(s string, o *options) error {
	for f := range strings.SplitSeq(s, ",") {
		n, err := strconv.ParseInt(strings.TrimSpace(f), 10, 64)
		if err != nil {
			return fmt.Errorf("alerts: seed %q: %w", f, err)
		}
		o.Seeds = append(o.Seeds, n)
	}
	return nil
}

func (o options) validate() error {
	switch {
	case len(o.Seeds) == 0:
		return errors.New("alerts: no seeds")
	case o.Devices < 1:
		return fmt.Errorf("alerts: %d devices", o.Devices)
	case !(o.Rate >= fleet.MinRate && o.Rate <= fleet.MaxRate):
		return fmt.Errorf("alerts: rate %v, want %v..%v samples/s", o.Rate, fleet.MinRate, fleet.MaxRate)
	case !(o.AnomalyRate > 0):
		return fmt.Errorf("alerts: anomaly rate %v, want > 0", o.AnomalyRate)
	case o.Duration < time.Minute:
		return fmt.Errorf("alerts: duration %s, want at least 1m", o.Duration)
	case o.Tolerance < 0:
		return fmt.Errorf("alerts: negative tolerance %s", o.Tolerance)
	}
	return nil
}

// runFleet simulates one fleet and scores the detectors' alerts.
func runFleet(seed int64, o options) (*verify.AlertReport, error) {
	f, err := model.NewFleet(seed, start)
	if err != nil {
		return nil, err
	}
	devices := make([]*model.Device, o.Devices)
	ids := make([]string, o.Devices)
	for i := range devices {
		ids[i] = fmt.Sprintf("sim-%05d", i)
		devices[i] = f.Device(ids[i])
	}
	end := start.Add(o.Duration)
	events, err := plan(f, ids, end, o.AnomalyRate)
	if err != nil {
		return nil, err
	}
	if err := f.Inject(events...); err != nil {
		return nil, fmt.Errorf("alerts: inject: %w", err)
	}
	reg := anomaly.NewRegistry(anomaly.Config{}, 0)
	var alerts []anomaly.Alert
	published := make([]uint64, len(devices))
	step := time.Duration(float64(time.Second) / o.Rate)
	nextSweep := start.Add(sweepEvery)
	for t := start; t.Before(end); t = t.Add(step) {
		for i, d := range devices {
			if d.Dropout(t) {
				continue
			}
			published[i] += uint64(len(metrics))
			for _, m := range metrics {
				_, evs := reg.Observe(ids[i], m, t, d.Value(m, t))
				alerts = append(alerts, evs...)
			}
		}
		if !t.Before(nextSweep) {
			alerts = append(alerts, reg.Sweep(t)...)
			nextSweep = nextSweep.Add(sweepEvery)
		}
	}
	for i, id := range ids {
		events = append(events, model.Event{Device: id, Kind: model.KindPublished, Start: start, End: end, Readings: published[i]})
	}
	truth, err := verify.NewTruth(events)
	if err != nil {
		return nil, err
	}
	sc := verify.NewAlertScorer(truth, o.Tolerance)
	for _, a := range alerts {
		sc.AddAlert(verify.Alert{ID: a.ID, Event: a.Event.String(), Device: a.Device, Metric: a.Metric, Time: a.Time,
			Score: a.Score, Kind: a.Kind.String(), Value: a.Value, Start: a.Start, End: a.End})
	}
	return sc.Report(fmt.Sprintf("seed %d", seed)), nil
}

// plan draws the anomalies of a run as tributary-sim does: anomalyRate
// per device-hour split evenly over fleet.AnomalyKinds and, for the kinds
// that hit one metric, over the metrics; planned an hour at a time, each
// kind with the model's default durations capped at a quarter of that.
func plan(f *model.Fleet, ids []string, end time.Time, anomalyRate float64) ([]model.Event, error) {
	var out []model.Event
	for from := start; from.Before(end); from = from.Add(planWindow) {
		to := from.Add(planWindow)
		if to.After(end) {
			to = end
		}
		window := to.Sub(from)
		spec := model.PlanSpec{Devices: ids, Metrics: metrics, Start: from, End: to, Gap: min(model.DefaultGap, window/10)}
		for _, k := range fleet.AnomalyKinds {
			r := model.DefaultRate(k)
			r.PerHour = anomalyRate / float64(len(fleet.AnomalyKinds))
			if k != model.KindDropout {
				r.PerHour /= float64(len(metrics))
			}
			r.MaxDuration = min(r.MaxDuration, window/4)
			r.MinDuration = min(r.MinDuration, r.MaxDuration/2)
			spec.Rates = append(spec.Rates, r)
		}
		evs, err := f.Plan(spec)
		if err != nil {
			return nil, fmt.Errorf("alerts: plan: %w", err)
		}
		out = append(out, evs...)
	}
	return out, nil
}

// writeTable prints one markdown row per fleet and one for all of them.
func writeTable(w io.Writer, o options, reports []*verify.AlertReport) error {
	var b strings.Builder
	fmt.Fprintf(&b, "%d devices (BME280: %s), %g samples/s, %g anomalies per device-hour, %s simulated per fleet, tolerance %s\n\n",
		o.Devices, strings.Join(metrics, ", "), o.Rate, o.AnomalyRate, o.Duration, o.Tolerance)
	b.WriteString("| fleet | injected | alerts | precision | recall | recall at open |")
	for _, k := range fleet.AnomalyKinds {
		b.WriteString(" " + k + " |")
	}
	b.WriteString("\n|---|---|---|---|---|---|" + strings.Repeat("---|", len(fleet.AnomalyKinds)) + "\n")
	var all verify.AlertReport
	all.ByKind = map[string]verify.KindScore{}
	for _, r := range reports {
		row(&b, r.Stream, r)
		all.Anomalies += r.Anomalies
		all.Detected += r.Detected
		all.DetectedAtOpen += r.DetectedAtOpen
		all.Alerts += r.Alerts
		all.Matched += r.Matched
		for k, s := range r.ByKind {
			t := all.ByKind[k]
			t.Anomalies += s.Anomalies
			t.Detected += s.Detected
			all.ByKind[k] = t
		}
	}
	row(&b, "all", &all)
	b.WriteString("\nAn incident is one alert (its open event): precision is the share of incidents that opened in an injected anomaly. " +
		"Recall (and per kind: detected / injected) counts an anomaly in which an incident opened or an open incident raised a new alarm (an update event); recall at open counts opens only. ")
	var follow uint64
	falseKind := map[string]uint64{}
	for _, r := range reports {
		follow += r.FollowUps
		for k, n := range r.FalseByKind {
			falseKind[k] += n
		}
	}
	fmt.Fprintf(&b, "Update and resolve events: %d.\nAlerts that match no anomaly, by the detector's kind:", follow)
	for _, k := range anomaly.Kinds() {
		fmt.Fprintf(&b, " %s %d,", k, falseKind[k.String()])
	}
	b.WriteString("\n")
	_, err := io.WriteString(w, b.String())
	return err
}

func row(b *strings.Builder, name string, r *verify.AlertReport) {
	fmt.Fprintf(b, "| %s | %d | %d | %s | %s | %s |", name, r.Anomalies, r.Alerts, pct(r.Matched, r.Alerts), pct(r.Detected, r.Anomalies), pct(r.DetectedAtOpen, r.Anomalies))
	for _, k := range fleet.AnomalyKinds {
		s := r.ByKind[k]
		fmt.Fprintf(b, " %s (%d/%d) |", pct(s.Detected, s.Anomalies), s.Detected, s.Anomalies)
	}
	b.WriteString("\n")
}

func pct(a, b uint64) string {
	if b == 0 {
		return "n/a"
	}
	return fmt.Sprintf("%.1f %%", 100*float64(a)/float64(b))
}
