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
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	_ "net/http/pprof"
	"os"
	"runtime/pprof"
	"strings"
	"syscall"

	"github.com/tributary-iot/tributary/internal/cmdline"
	"github.com/tributary-iot/tributary/internal/logging"
	"github.com/tributary-iot/tributary/simulator/fleet"
)

// version is set by the linker (-X main.version=...).
var version = "dev"

func main() { cmdline.Main(run) }

const usage = `usage: tributary-sim -broker tcp://HOST:PORT -devices N -rate R -duration D [-truth FILE] [flags]
       tributary-sim verify -truth FILE [-endpoint URL] [flags]   (see tributary-sim verify -h)

`

// options are the flags that are not fleet configuration.
type options struct {
	cpuProfile string
	memProfile string
	pprofAddr  string
}

func bind(fs *flag.FlagSet, c *fleet.Config, o *options) {
	fs.StringVar(&o.cpuProfile, "cpuprofile", "", "write a CPU profile to `file`")
	fs.StringVar(&o.memProfile, "memprofile", "", "write a heap profile to `file` at the end")
	fs.StringVar(&o.pprofAddr, "pprof", "", "serve net/http/pprof on `addr` (e.g. 127.0.0.1:6060)")

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

// parse reads the flags and, with -config, the YAML file under them (flags
// win over the file), and validates the result. When done, the command is
// over with the exit code (help, version, or bad flags, said on stderr).
func parse(args []string, stdout, stderr io.Writer) (cfg fleet.Config, opts options, code int, done bool) {
	c := cmdline.New("tributary-sim", version, usage, "YAML config `file` (flags win over it)", stdout, stderr)
	flags := fleet.DefaultConfig()
	bind(c.Flags, &flags, &opts)
	if code, done := c.Parse(args, false); done {
		return cfg, opts, code, true
	}
	cfg = flags
	var err error
	if c.Config != "" {
		// Set the flags given again over the file's values: flags win.
		if cfg, err = fleet.LoadConfig(c.Config, fleet.DefaultConfig()); err == nil {
			file := flag.NewFlagSet(c.Name, flag.ContinueOnError)
			bind(file, &cfg, &options{})
			c.Flags.Visit(func(f *flag.Flag) {
				if g := file.Lookup(f.Name); g != nil && err == nil {
					err = g.Value.Set(f.Value.String())
				}
			})
		}
	}
	if err == nil {
		err = cfg.Validate()
	}
	if err != nil {
		for _, line := range strings.Split(err.Error(), "\n") {
			c.Failf(cmdline.ExitUsage, "%s", line)
		}
		return cfg, opts, cmdline.ExitUsage, true
	}
	return cfg, opts, cmdline.ExitOK, false
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 && args[0] == "verify" {
		return runVerify(ctx, args[1:], stdout, stderr)
	}
	cfg, opts, code, done := parse(args, stdout, stderr)
	if done {
		return code
	}
	log, err := logging.New(stderr, cfg.LogFormat, "")
	if err != nil {
		fmt.Fprintf(stderr, "tributary-sim: %v\n", err)
		return cmdline.ExitUsage
	}
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

	sum, err := fleet.Run(ctx, cfg, log)
	if opts.memProfile != "" {
		if f, ferr := os.Create(opts.memProfile); ferr == nil {
			pprof.Lookup("heap").WriteTo(f, 0)
			f.Close()
		}
	}
	switch {
	case sum == nil:
	case cfg.LogFormat == logging.FormatJSON: // every line on stderr is JSON
		log.Info("fleet finished", "summary", sum.String())
	default:
		fmt.Fprintln(stderr, sum.String())
	}
	if err != nil {
		log.Error("fleet failed", "err", err)
		return cmdline.ExitFail
	}
	return cmdline.ExitOK
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
