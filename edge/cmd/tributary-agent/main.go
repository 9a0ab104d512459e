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
// flush within drain_timeout; unsent readings stay queued for the next
// start. A second signal kills the agent at once.
package main

import (
	"context"
	"flag"
	"io"
	"log/slog"
	"net/http"
	_ "net/http/pprof"
	"os"
	"runtime/debug"

	"github.com/tributary-iot/tributary/edge/agent"
	"github.com/tributary-iot/tributary/internal/cmdline"
	"github.com/tributary-iot/tributary/internal/logging"
)

// version is set by the linker (-X main.version=...).
var version = "dev"

func main() { cmdline.Main(run) }

const usage = `usage: tributary-agent -data DIR -gateway ID -cloud URL -token TOKEN [flags]
       tributary-agent -config FILE [flags]

`

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	c := cmdline.New("tributary-agent", version, usage, "YAML config `file` (optional; see deploy/agent.example.yaml)", stdout, stderr)
	fs := c.Flags
	data := fs.String("data", "", "data `folder` for the queue database")
	gateway := fs.String("gateway", "", "this gateway's `id`")
	cloud := fs.String("cloud", "", "cloud ingest base `URL`, e.g. https://cloud.example:8080")
	token := fs.String("token", "", "the gateway's bearer `token` (see: tributary-cloud token issue ID)")
	listen := fs.String("listen", "", "`address` for /metrics and /healthz (default :9100)")
	broker := fs.String("broker", "", "external MQTT broker `URL` (tcp://host:1883); default: the embedded broker")
	mqttListen := fs.String("mqtt-listen", "", "embedded broker `address` (default :1883)")
	c.LogFlags("", "")
	pprofAddr := fs.String("pprof", "", "serve net/http/pprof on `address` (e.g. 127.0.0.1:6060) for profiling")
	if code, done := c.Parse(args, false); done {
		return code
	}
	var cfg agent.Config
	if c.Config != "" {
		var err error
		if cfg, err = agent.LoadConfig(c.Config); err != nil {
			return c.Failf(cmdline.ExitFail, "%v", err)
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
			cfg.LogFormat = c.Log.Format
		case "log-level":
			cfg.LogLevel = c.Log.Level
		}
	})
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return c.Failf(cmdline.ExitFail, "invalid configuration:\n%v", err)
	}
	log, err := logging.New(stderr, cfg.LogFormat, cfg.LogLevel)
	if err != nil {
		return c.Failf(cmdline.ExitFail, "%v", err)
	}
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
		return c.Failf(cmdline.ExitFail, "%v", err)
	}
	if err := a.Run(ctx); err != nil {
		log.Error("agent failed", "err", err)
		return cmdline.ExitFail
	}
	return cmdline.ExitOK
}
