package main

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/tributary-iot/tributary/simulator/verify"
)

const verifyUsage = `usage: tributary-sim verify -truth FILE [-endpoint URL | -kafka BROKERS] [-stream NAME] [-alerts-stream NAME] [flags]

Reads the whole stream through the Kinesis API (or, with -kafka, the
Kafka topic of that name, every partition) and compares it with the
truth file of a tributary-sim run: readings expected, received, lost,
duplicated, unexpected, out of order, and latency. Exit status 0 when
nothing was lost, duplicated or out of order, 1 otherwise (or when the
check could not be done), 2 on bad flags.

`

// runVerify is `tributary-sim verify`.
func runVerify(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("tributary-sim verify", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		cc      = verify.ClientConfig{}
		cfg     verify.Config
		truth   = fs.String("truth", "", "the run's truth `file` (required)")
		from    = fs.String("from", "", "start every shard AT_TIMESTAMP `time` (RFC 3339) instead of TRIM_HORIZON, to skip earlier runs")
		latency = fs.String("latency", "arrival", "latency end: arrival (the record's ApproximateArrivalTimestamp) or read (when the verifier read it)")
		asJSON  = fs.Bool("json", false, "print the report as JSON on stdout")
		show    = fs.Int("show-devices", 20, "devices with problems listed in the text report (-1: all)")
		brokers = fs.String("kafka", "", "read Kafka instead of Kinesis: bootstrap `brokers`, host:port[,host:port...] (-endpoint and the AWS flags are then unused)")
		useTLS  = fs.Bool("kafka-tls", false, "with -kafka: connect with TLS (the system's root certificates, e.g. Amazon MSK)")
	)
	fs.StringVar(&cc.Endpoint, "endpoint", "http://127.0.0.1:4567", "Kinesis API base `URL` (empty: Amazon Kinesis, credentials from the default AWS chain)")
	fs.StringVar(&cc.Region, "region", "us-east-1", "AWS `region`")
	fs.StringVar(&cc.AccessKeyID, "access-key-id", "", "access key id to sign with (default: a dummy one with -endpoint, the AWS chain without)")
	fs.StringVar(&cc.SecretAccessKey, "secret-access-key", "", "secret key to sign with")
	fs.StringVar(&cfg.Stream, "stream", verify.DefaultStream, "telemetry stream `name`")
	fs.StringVar(&cfg.AlertsStream, "alerts-stream", "", "also score the alerts in this stream (e.g. alerts) against the injected anomalies")
	fs.DurationVar(&cfg.AlertTolerance, "alert-tolerance", verify.DefaultAlertTolerance, "an alert up to this long after an anomaly's end still detects it")
	fs.DurationVar(&cfg.Settle, "settle", verify.DefaultSettle, "stop once caught up and no record arrived for this long")
	fs.DurationVar(&cfg.Timeout, "timeout", verify.DefaultTimeout, "deadline of the whole read")
	fs.DurationVar(&cfg.Poll, "poll", 200*time.Millisecond, "pause between reads of a quiet stream")
	fs.DurationVar(&cfg.ProgressEvery, "progress", 5*time.Second, "progress line interval on stderr (0: none)")
	fs.Usage = func() {
		fmt.Fprint(stderr, verifyUsage)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	usageErr := func(format string, a ...any) int {
		fmt.Fprintf(stderr, "tributary-sim verify: "+format+"\n", a...)
		return 2
	}
	if fs.NArg() > 0 {
		return usageErr("unexpected argument %q (flags only; see -h)", fs.Arg(0))
	}
	if *useTLS && *brokers == "" {
		return usageErr("-kafka-tls goes with -kafka BROKERS")
	}
	if *brokers != "" && slices.Contains(strings.Split(*brokers, ","), "") {
		return usageErr("-kafka %q: want host:port[,host:port...]", *brokers)
	}
	if *truth == "" {
		return usageErr("-truth FILE is required: the truth file tributary-sim -truth wrote")
	}
	if *from != "" {
		t, err := time.Parse(time.RFC3339Nano, *from)
		if err != nil {
			return usageErr("-from %q: want an RFC 3339 time, e.g. 2026-11-25T10:00:00Z", *from)
		}
		cfg.From = t
	}
	switch *latency {
	case "arrival":
		cfg.Stamp = verify.ArrivalStamp{}
	case "read":
		cfg.Stamp = verify.ReadStamp{}
	default:
		return usageErr("-latency %q: want arrival or read", *latency)
	}
	if cfg.ProgressEvery > 0 {
		cfg.Progress = func(st verify.ReadStats) { fmt.Fprintln(stderr, verify.ProgressLine(st)) }
	} else {
		cfg.ProgressEvery = 0
	}
	if err := cfg.Validate(); err != nil {
		return usageErr("%v", err)
	}

	t, err := verify.LoadTruth(*truth)
	if err != nil {
		fmt.Fprintf(stderr, "tributary-sim verify: %v\n", err)
		return 1
	}
	var src verify.Source
	if *brokers != "" {
		opts := []kgo.Opt{kgo.SeedBrokers(strings.Split(*brokers, ",")...)}
		if *useTLS {
			opts = append(opts, kgo.DialTLSConfig(&tls.Config{MinVersion: tls.VersionTLS12}))
		}
		src = verify.KafkaSource{Opts: opts}
	} else {
		client, err := verify.NewClient(ctx, cc)
		if err != nil {
			fmt.Fprintf(stderr, "tributary-sim verify: %v\n", err)
			return 1
		}
		src = verify.KinesisSource{API: client}
	}
	rep, err := verify.RunSource(ctx, src, t, cfg)
	if err != nil {
		fmt.Fprintf(stderr, "tributary-sim verify: %v\n", err)
		return 1
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		err = enc.Encode(rep)
	} else {
		err = rep.WriteText(stdout, *show)
	}
	if err != nil {
		fmt.Fprintf(stderr, "tributary-sim verify: %v\n", err)
		return 1
	}
	if !rep.OK {
		return 1
	}
	return 0
}
