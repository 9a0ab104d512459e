// Command tributary-agent is the gateway agent: it takes readings from MQTT
// devices (an external broker, or its embedded one) and the gateway's own
// sensor buses, commits each to a durable queue before acknowledging it, and
// forwards compressed batches to the cloud whenever the uplink is up.
//
//	tributary-agent -data DIR -gateway ID -cloud URL -token-file FILE [-listen :8284] [-broker URL | -mqtt-listen :1883]
//	tributary-agent -config /etc/tributary/agent.yaml
//
// Flags win over the config file. deploy/agent.example.yaml is an annotated
// config. With neither cloud.token nor cloud.token_file set, the token is
// the systemd credential tributary-token ($CREDENTIALS_DIRECTORY), else
// $TRIBUTARY_TOKEN. SIGINT or SIGTERM stops producers first, then lets the uplink
// flush within drain_timeout; unsent readings stay queued for the next
// start. A second signal kills the agent at once.
package main

import (
	"context"
	"io"
	"net/http"
	_ "net/http/pprof"
	"os"
	"runtime/debug"

	"github.com/tributary-iot/tributary/edge/agent"
	"github.com/tributary-iot/tributary/internal/cmdline"
)

// version is set by the linker (-X main.version=...).
var version = "dev"

func main() { cmdline.Main(run) }

const usage = `usage: tributary-agent -data DIR -gateway ID -cloud URL -token-file FILE [flags]
       tributary-agent -config FILE [flags]

`

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	var cfg agent.Config
	c := cmdline.New("tributary-agent", version, usage, "YAML config `file` (optional; see deploy/agent.example.yaml)", stdout, stderr)
	c.String("data", "data `folder` for the queue database", func(v string) { cfg.Data = v })
	c.String("gateway", "this gateway's `id`", func(v string) { cfg.Gateway = v })
	c.String("cloud", "cloud ingest base `URL`, e.g. https://cloud.example:8080", func(v string) { cfg.Cloud.URL = v })
	c.String("token", "the gateway's bearer `token` (visible in ps: prefer -token-file, $TRIBUTARY_TOKEN or the systemd credential tributary-token)",
		func(v string) { cfg.Cloud.Token, cfg.Cloud.TokenFile = v, "" })
	c.String("token-file", "`file` holding the gateway's bearer token (see: tributary-cloud token issue ID)",
		func(v string) { cfg.Cloud.TokenFile, cfg.Cloud.Token = v, "" })
	c.String("listen", "`address` for /metrics and /healthz (default :8284)", func(v string) { cfg.Listen = v })
	c.String("broker", "external MQTT broker `URL` (tcp://host:1883); default: the embedded broker",
		func(v string) { cfg.MQTT.Broker, cfg.MQTT.Listen = v, "" })
	c.String("mqtt-listen", "embedded broker `address` (default :1883)", func(v string) { cfg.MQTT.Listen, cfg.MQTT.Broker = v, "" })
	c.LogFlags(&cfg.LogFormat, &cfg.LogLevel)
	pprofAddr := c.Flags.String("pprof", "", "serve net/http/pprof on `address` (e.g. 127.0.0.1:6060) for profiling")
	if code, done := c.Parse(args, false); done {
		return code
	}
	if code, ok := cmdline.LoadConfig(c, &cfg, agent.LoadConfig); !ok {
		return code
	}
	cfg = cfg.WithEnvToken(os.Getenv)
	log, code, ok := cmdline.Start(c, &cfg)
	if !ok {
		return code
	}
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
