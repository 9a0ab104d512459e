package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/tributary-iot/tributary/cloud/plan"
)

const planUsage = `usage: tributary-cloud plan [-fleet FILE] [-devices N] [-rate R] ... [-prices FILE] [-json]
       tributary-cloud plan -from http://127.0.0.1:8081 [-devices N] ...

Sizes a Kinesis stream (shards, PUT payload units) and prices a month on
Kinesis provisioned, Kinesis on-demand, MSK provisioned and MSK Serverless,
for a fleet described by flags or a YAML file (flags win), or for the live
traffic of a running tributary-cloud (-from its admin URL; with -devices,
scaled to that many devices). Record sizes are measured with the ingest's
own encoder. Prices come from the dated file of -region embedded in the
binary (deploy/prices/), or -prices FILE.

`

// planCommand runs `plan`: flags, an optional fleet file, then the plan
// on stdout as text or JSON.
func planCommand(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("tributary-cloud plan", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, planUsage); fs.PrintDefaults() }
	var f plan.Fleet
	var sets []func() error // flags win over the file: applied after it
	flagFn := func(name, usage string, set func(string) error) {
		fs.Func(name, usage, func(v string) error { sets = append(sets, func() error { return set(v) }); return nil })
	}
	intFlag := func(p *int) func(string) error {
		return func(v string) (err error) { *p, err = strconv.Atoi(v); return err }
	}
	durFlag := func(p *time.Duration) func(string) error {
		return func(v string) (err error) { *p, err = time.ParseDuration(v); return err }
	}
	floatFlag := func(p *float64) func(string) error {
		return func(v string) (err error) { *p, err = strconv.ParseFloat(v, 64); return err }
	}
	fleetFile := fs.String("fleet", "", "fleet YAML `file` (keys as the flags, with _: see deploy/fleet.example.yaml)")
	flagFn("devices", "number of `N` devices", intFlag(&f.Devices))
	flagFn("rate", "`samples` per second per device (default 1)", floatFlag(&f.Rate))
	flagFn("metrics", "readings of one sample, `name[:unit][=value],...` (default temperature:Cel,humidity:%RH,pressure:Pa)", func(v string) (err error) {
		f.Metrics, err = parseMetrics(v)
		return err
	})
	flagFn("sample", "a device's SenML pack `file` (JSON or CBOR): its readings replace -metrics", func(v string) error { f.Sample = v; return nil })
	flagFn("gateways", "`N` gateways the devices are spread over (default one per 1,000 devices)", intFlag(&f.Gateways))
	flagFn("device-id", "a typical device `id` (its length counts; default sim-00000)", func(v string) error { f.DeviceID = v; return nil })
	flagFn("batch-age", "the agents' cloud.batch_age `duration` (default 1s)", durFlag(&f.BatchAge))
	flagFn("batch-readings", "the agents' cloud.batch_readings, `N` (default 5000)", intFlag(&f.BatchReadings))
	flagFn("retention", "stream retention `duration` (default 24h; 168h is 7 days)", durFlag(&f.Retention))
	flagFn("consumers", "`N` consumer applications reading every record (default 1: the cloud's monitor)", intFlag(&f.Consumers))
	fs.BoolFunc("efo", "consumers use enhanced fan-out (-efo, or -efo=false over a fleet file)", func(v string) error {
		sets = append(sets, func() (err error) { f.EnhancedFanOut, err = strconv.ParseBool(v); return err })
		return nil
	})
	flagFn("poll-interval", "each consumer's GetRecords `interval` per shard (default 200ms)", durFlag(&f.PollInterval))
	flagFn("partitions", "`N` Kafka partitions (default: as many as shards)", intFlag(&f.Partitions))
	flagFn("region", "AWS `region` of the embedded price file (default us-east-1)", func(v string) error { f.Region = v; return nil })
	flagFn("headroom", "capacity above the load, as a `fraction` (default 0.25)", func(v string) error {
		h, err := strconv.ParseFloat(v, 64)
		f.Headroom = &h
		return err
	})
	pricesFile := fs.String("prices", "", "price `file` instead of the embedded one (same format as deploy/prices/us-east-1.yaml)")
	from := fs.String("from", "", "admin `URL` of a running tributary-cloud: plan for its live traffic")
	token := fs.String("token", "", "admin bearer `token` for -from (default $TRIBUTARY_ADMIN_TOKEN)")
	asJSON := fs.Bool("json", false, "print JSON instead of tables")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "tributary-cloud plan: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	fail := func(err error) int { fmt.Fprintf(stderr, "tributary-cloud plan: %v\n", err); return 1 }
	if *fleetFile != "" {
		if err := plan.LoadFleet(*fleetFile, &f); err != nil {
			return fail(err)
		}
	}
	for _, set := range sets {
		if err := set(); err != nil {
			fmt.Fprintf(stderr, "tributary-cloud plan: %v\n", err)
			return 2
		}
	}
	if *token == "" {
		*token = os.Getenv("TRIBUTARY_ADMIN_TOKEN")
	}
	pl, err := runPlan(ctx, &f, *from, *token, *pricesFile)
	if err != nil {
		return fail(err)
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		err = enc.Encode(pl)
	} else {
		err = plan.WriteText(stdout, pl)
	}
	if err != nil {
		return fail(err)
	}
	return 0
}

// runPlan measures (or reads) the traffic and prices it.
func runPlan(ctx context.Context, f *plan.Fleet, from, token, pricesFile string) (*plan.Plan, error) {
	var live plan.Traffic
	if from != "" {
		ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		client := &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone()}
		defer client.CloseIdleConnections()
		t, err := plan.Live(ctx, client, from, token)
		if err != nil {
			return nil, err
		}
		if f.Devices > 0 {
			t = t.Scale(f.Devices)
		}
		f.Devices = max(t.Devices, 1)
		live = t
	} else if f.Devices == 0 {
		return nil, errors.New("devices: required (-devices N or devices: in -fleet), or -from URL for a running cloud's traffic")
	}
	f.SetDefaults()
	if err := f.Validate(); err != nil {
		return nil, err
	}
	if err := f.LoadSample(); err != nil {
		return nil, err
	}
	var p *plan.Prices
	var err error
	if pricesFile != "" {
		p, err = plan.LoadPrices(pricesFile)
	} else {
		p, err = plan.EmbeddedPrices(f.Region)
	}
	if err != nil {
		return nil, err
	}
	t := live
	if from == "" {
		if t, err = plan.Measure(f); err != nil {
			return nil, err
		}
	}
	return plan.Compute(f, t, p), nil
}

// parseMetrics parses name[:unit][=value],...
func parseMetrics(s string) ([]plan.Metric, error) {
	var out []plan.Metric
	for _, item := range strings.Split(s, ",") {
		spec, val, hasVal := strings.Cut(strings.TrimSpace(item), "=")
		name, unit, _ := strings.Cut(spec, ":")
		m := plan.Metric{Name: name, Unit: unit, Value: 21.37}
		if hasVal {
			v, err := strconv.ParseFloat(val, 64)
			if err != nil {
				return nil, fmt.Errorf("-metrics %q: value of %s: %w", s, name, err)
			}
			m.Value = v
		}
		out = append(out, m)
	}
	return out, nil
}
