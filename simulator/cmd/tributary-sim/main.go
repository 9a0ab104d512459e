// Command tributary-sim runs a fleet of simulated sensor nodes — the real
// firmware runtime on simulated chips fed by a deterministic model — against
// an MQTT broker, with anomalies and faults injected and recorded in a
// truth file.
//
//	tributary-sim -broker tcp://127.0.0.1:1883 -devices 100 -rate 1 -duration 1m -truth truth.jsonl
//	tributary-sim verify -truth truth.jsonl -endpoint http://127.0.0.1:4567 [-alerts-stream alerts]
//
// The verify subcommand reads the cloud's stream through the Kinesis API
// and checks it against the truth file (package simulator/verify).
//
// See simulator/README.md for every flag.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	_ "net/http/pprof"
	"os"
	"os/signal"
	"runtime/pprof"
	"strings"
	"syscall"

	"github.com/tributary-iot/tributary/simulator/fleet"
)

// version is set by the linker (-X main.version=...).
var version = "dev"

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// options are the flags that are not fleet configuration.
type options struct {
	config     string
	cpuProfile string
	memProfile string
	pprofAddr  string
	version    bool
}

func bind(fs *flag.FlagSet, c *fleet.Config, o *options) {
	fs.StringVar(&o.config, "config", "", "YAML config `file` (flags win over it)")
	fs.StringVar(&o.cpuProfile, "cpuprofile", "", "write a CPU profile to `file`")
	fs.StringVar(&o.memProfile, "memprofile", "", "write a heap profile to `file` at the end")
	fs.StringVar(&o.pprofAddr, "pprof", "", "serve net/http/pprof on `addr` (e.g. 127.0.0.1:6060)")
	fs.BoolVar(&o.version, "version", false, "print the version and exit")

	fs.StringVar(&c.Broker, "broker", c.Broker, "MQTT broker `URL` (tcp://HOST:PORT)")
	fs.IntVar(&c.Devices, "devices", c.Devices, "number of simulated devices")
	fs.Float64Var(&c.Rate, "rate", c.Rate, "samples per second per device (0.1..100)")
	fs.DurationVar(&c.Duration, "duration", c.Duration, "how long to run (0: until SIGINT/SIGTERM)")
	fs.Int64Var(&c.Seed, "seed", c.Seed, "seed of every random choice (values, anomalies, faults)")
	fs.StringVar(&c.Prefix, "prefix", c.Prefix, "device id prefix (ids are PREFIX00000, PREFIX00001, ...)")
	fs.StringVar(&c.Sensors, "sensors", c.Sensors, "sensor `profile`: bme280, sht3x or mixed")
	fs.Float64Var(&c.ConnectRate, "connect-rate", c.ConnectRate, "new MQTT connections per second, fleet-wide")
	fs.IntVar(&c.QoS, "qos", c.QoS, "QoS of telemetry (0 or 1)")
	fs.StringVar(&c.Truth, "truth", c.Truth, "write injected anomalies and faults to `file` (JSON lines)")
	fs.StringVar(&c.Summary, "summary", c.Summary, "write the end-of-run JSON summary to `file`")
	fs.DurationVar(&c.StatsEvery, "stats-every", c.StatsEvery, "interval of progress lines on stderr (0: none)")
	fs.StringVar(&c.LogFormat, "log-format", c.LogFormat, "log format: text or json")

	fs.Float64Var(&c.AnomalyRate, "anomaly-rate", c.AnomalyRate, "anomalies per device-hour (0: none)")
	fs.Var((*listFlag)(&c.Anomalies), "anomalies", "comma-separated anomaly kinds to inject (default all: "+strings.Join(fleet.AnomalyKinds, ",")+")")
	fs.DurationVar(&c.StormEvery, "storm-every", c.StormEvery, "interval of disconnect storms (0: none)")
	fs.Float64Var(&c.StormFraction, "storm-fraction", c.StormFraction, "share of devices each storm disconnects (0..1)")
	fs.Float64Var(&c.SkewFraction, "skew-fraction", c.SkewFraction, "share of devices with a skewed clock (0..1)")
	fs.DurationVar(&c.Skew, "skew", c.Skew, "clock offset of the skewed devices (may be negative)")
	fs.Float64Var(&c.MalformedRate, "malformed-rate", c.MalformedRate, "malformed payloads per device-hour (0: none)")
}

// listFlag is a comma-separated list.
type listFlag []string

func (l *listFlag) String() string { return strings.Join(*l, ",") }

func (l *listFlag) Set(s string) error {
	*l = nil
	for _, k := range strings.Split(s, ",") {
		if k = strings.TrimSpace(k); k != "" {
			*l = append(*l, k)
		}
	}
	return nil
}

// errUsage means the flags were wrong; parse already said why.
var errUsage = errors.New("usage")

// parse reads the flags and, with -config, the YAML file under them (flags
// win over the file), and validates the result.
func parse(args []string, stderr io.Writer) (fleet.Config, options, error) {
	cfg := fleet.DefaultConfig()
	var opts options
	fs := flag.NewFlagSet("tributary-sim", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: tributary-sim -broker tcp://HOST:PORT -devices N -rate R -duration D [-truth FILE] [flags]\n")
		fmt.Fprintf(stderr, "       tributary-sim verify -truth FILE [-endpoint URL] [flags]   (see tributary-sim verify -h)\n\n")
		fs.PrintDefaults()
	}
	bind(fs, &cfg, &opts)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return cfg, opts, err
		}
		return cfg, opts, errUsage
	}
	if fs.NArg() > 0 {
		return cfg, opts, fmt.Errorf("unexpected argument %q (flags only; see -h)", fs.Arg(0))
	}
	if opts.version {
		return cfg, opts, nil
	}
	if opts.config != "" {
		// Parse the flags again over the file's values: flags win.
		file, err := fleet.LoadConfig(opts.config, fleet.DefaultConfig())
		if err != nil {
			return cfg, opts, err
		}
		cfg = file
		fs2 := flag.NewFlagSet("tributary-sim", flag.ContinueOnError)
		fs2.SetOutput(io.Discard)
		bind(fs2, &cfg, &options{})
		if err := fs2.Parse(args); err != nil {
			return cfg, opts, err
		}
	}
	return cfg, opts, cfg.Validate()
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 && args[0] == "verify" {
		return runVerify(args[1:], stdout, stderr)
	}
	cfg, opts, err := parse(args, stderr)
	switch {
	case errors.Is(err, flag.ErrHelp):
		return 0
	case errors.Is(err, errUsage):
		return 2
	case err != nil:
		for _, line := range strings.Split(err.Error(), "\n") {
			fmt.Fprintf(stderr, "tributary-sim: %s\n", line)
		}
		return 2
	case opts.version:
		fmt.Fprintln(stdout, "tributary-sim", version)
		return 0
	}

	var h slog.Handler = slog.NewTextHandler(stderr, nil)
	if cfg.LogFormat == "json" {
		h = slog.NewJSONHandler(stderr, nil)
	}
	log := slog.New(h)
	slog.SetDefault(log)

	if lim, err := raiseNoFile(); err != nil {
		log.Warn("cannot raise the open-file limit", "err", err)
	} else if need := uint64(cfg.Devices) + 64; lim < need {
		log.Warn("open-file limit is below the devices' needs: some will fail to connect",
			"limit", lim, "need", need, "fix", "raise the hard limit (ulimit -Hn) or lower -devices")
	}

	if opts.cpuProfile != "" {
		f, err := os.Create(opts.cpuProfile)
		if err != nil {
			fmt.Fprintf(stderr, "tributary-sim: %v\n", err)
			return 1
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			fmt.Fprintf(stderr, "tributary-sim: cpu profile: %v\n", err)
			return 1
		}
		defer pprof.StopCPUProfile()
	}

	if opts.pprofAddr != "" {
		ln, err := net.Listen("tcp", opts.pprofAddr)
		if err != nil {
			fmt.Fprintf(stderr, "tributary-sim: pprof: %v\n", err)
			return 1
		}
		defer ln.Close()
		go http.Serve(ln, nil) // net/http/pprof registers on the default mux
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		stop() // a second signal kills at once
	}()
	sum, err := fleet.Run(ctx, cfg, log)
	if opts.memProfile != "" {
		if f, ferr := os.Create(opts.memProfile); ferr == nil {
			pprof.Lookup("heap").WriteTo(f, 0)
			f.Close()
		}
	}
	if sum != nil {
		fmt.Fprintln(stderr, sum.String())
	}
	if err != nil {
		fmt.Fprintf(stderr, "tributary-sim: %v\n", err)
		return 1
	}
	return 0
}

// raiseNoFile raises the soft open-file limit to the hard one (each device
// holds a connection) and returns the new soft limit.
func raiseNoFile() (uint64, error) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return 0, err
	}
	if lim.Cur < lim.Max {
		lim.Cur = lim.Max
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
			return lim.Cur, err
		}
	}
	return lim.Cur, nil
}
