// Command tributary-agent is the gateway agent: it takes readings from MQTT
// devices (an external broker, or its embedded one) and the gateway's own
// sensor buses, commits each to a durable queue before acknowledging it, and
// forwards compressed batches to the cloud whenever the uplink is up.
//
//	tributary-agent -data DIR -gateway ID -cloud URL -token TOKEN [-listen :9100] [-broker URL | -mqtt-listen :1883]
//	tributary-agent -config /etc/tributary/agent.yaml
//
// Flags win over the config file. deploy/agent.example.yaml is an annotated
// config. SIGINT or SIGTERM stops producers first, then lets the uplink
// flush within drain_timeout; unsent readings stay queued for the next start.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	_ "net/http/pprof"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"

	"github.com/tributary-iot/tributary/edge/agent"
)

// version is set by the linker (-X main.version=...).
var version = "dev"

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("tributary-agent", flag.ContinueOnError)
	fs.SetOutput(stderr)
	configPath := fs.String("config", "", "YAML config `file` (optional; see deploy/agent.example.yaml)")
	data := fs.String("data", "", "data `folder` for the queue database")
	gateway := fs.String("gateway", "", "this gateway's `id`")
	cloud := fs.String("cloud", "", "cloud ingest base `URL`, e.g. https://cloud.example:8080")
	token := fs.String("token", "", "the gateway's bearer `token` (see: tributary-cloud token issue ID)")
	listen := fs.String("listen", "", "`address` for /metrics and /healthz (default :9100)")
	broker := fs.String("broker", "", "external MQTT broker `URL` (tcp://host:1883); default: the embedded broker")
	mqttListen := fs.String("mqtt-listen", "", "embedded broker `address` (default :1883)")
	logFormat := fs.String("log-format", "", "log format: text or json")
	logLevel := fs.String("log-level", "", "log level: debug, info, warn or error")
	showVersion := fs.Bool("version", false, "print the version and exit")
	pprofAddr := fs.String("pprof", "", "serve net/http/pprof on `address` (e.g. 127.0.0.1:6060) for profiling")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: tributary-agent -data DIR -gateway ID -cloud URL -token TOKEN [flags]\n       tributary-agent -config FILE [flags]\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "tributary-agent: unexpected argument %q (flags only; see -h)\n", fs.Arg(0))
		return 2
	}
	if *showVersion {
		fmt.Fprintln(stdout, "tributary-agent", version)
		return 0
	}
	var cfg agent.Config
	if *configPath != "" {
		var err error
		if cfg, err = agent.LoadConfig(*configPath); err != nil {
			fmt.Fprintf(stderr, "tributary-agent: %v\n", err)
			return 1
		}
	}
	// Flags given on the command line win over the file.
	fs.Visit(func(f *flag.Flag) {
		switch f.Name {
		case "data":
			cfg.Data = *data
		case "gateway":
			cfg.Gateway = *gateway
		case "cloud":
			cfg.Cloud.URL = *cloud
		case "token":
			cfg.Cloud.Token, cfg.Cloud.TokenFile = *token, ""
		case "listen":
			cfg.Listen = *listen
		case "broker":
			cfg.MQTT.Broker, cfg.MQTT.Listen = *broker, ""
		case "mqtt-listen":
			cfg.MQTT.Listen, cfg.MQTT.Broker = *mqttListen, ""
		case "log-format":
			cfg.LogFormat = *logFormat
		case "log-level":
			cfg.LogLevel = *logLevel
		}
	})
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		fmt.Fprintf(stderr, "tributary-agent: invalid configuration:\n%v\n", err)
		return 1
	}
	log := newLogger(stderr, cfg.LogFormat, cfg.LogLevel)
	slog.SetDefault(log)
	if lim := int64(*cfg.MemoryLimit); lim > 0 && os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(lim)
	}

	if *pprofAddr != "" {
		go func() {
			if err := http.ListenAndServe(*pprofAddr, nil); err != nil {
				log.Error("pprof server", "err", err)
			}
		}()
	}
	a, err := agent.New(cfg, agent.Options{Logger: log, Version: version})
	if err != nil {
		fmt.Fprintf(stderr, "tributary-agent: %v\n", err)
		return 1
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := a.Run(ctx); err != nil {
		log.Error("agent failed", "err", err)
		return 1
	}
	return 0
}

func newLogger(w io.Writer, format, level string) *slog.Logger {
	var lv slog.Level
	lv.UnmarshalText([]byte(level))
	opts := &slog.HandlerOptions{Level: lv}
	if format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}
