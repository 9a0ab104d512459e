// Command tributary-agent is the gateway agent: it takes readings from MQTT
// devices (an external broker, or its embedded one) and the gateway's own
// sensor buses, commits each to a durable queue before acknowledging it, and
// forwards compressed batches to the cloud whenever the uplink is up.
//
//	tributary-agent -data DIR -gateway ID -cloud URL -token-file FILE [-listen :8284] [-broker URL | -mqtt-listen :1883]
//	tributary-agent -config /etc/tributary/agent.yaml
//	tributary-agent validate -config /etc/tributary/agent.yaml [flags]
//	tributary-agent device add|remove ID [-admin] [-password-stdin] -config FILE (or -data DIR)
//	tributary-agent device list -config FILE (or -data DIR)
//
// Flags win over the config file. deploy/agent.example.yaml is an annotated
// config. With neither cloud.token nor cloud.token_file set, the token is
// the systemd credential tributary-token ($CREDENTIALS_DIRECTORY), else
// $TRIBUTARY_TOKEN. SIGINT or SIGTERM stops producers first, then lets the uplink
// flush within drain_timeout; unsent readings stay queued for the next
// start. A second signal kills the agent at once.
//
// validate loads the configuration exactly as a start would (file, flags,
// environment, defaults), prints the effective settings as YAML on stdout
// with secrets redacted, then every warning and problem on stderr, and
// exits 0 (no problem) or 1: a smoke check for deployments and images.
//
// device manages the embedded broker's device passwords, kept as argon2id
// hashes in devices.json in the data folder (edge/devicecreds): add
// prints a new random password once on stdout (or, with -password-stdin,
// hashes the one read from stdin, to move an existing device over), remove
// deletes one, list shows ids, admin flags and creation times, never
// hashes. A running agent reads the file again within a second.
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

// stdin is what device add -password-stdin reads (tests replace it).
var stdin io.Reader = os.Stdin

func main() { cmdline.Main(run) }

const usage = `usage: tributary-agent -data DIR -gateway ID -cloud URL -token-file FILE [flags]
       tributary-agent -config FILE [flags]
       tributary-agent validate -config FILE [flags]   print the effective settings (secrets redacted) and every problem; exit 0 or 1
       tributary-agent device add ID [-admin] [-password-stdin] -config FILE (or -data DIR)
                                                 give a device a password for the embedded broker: a new random one,
                                                 printed once on stdout, or the one read from stdin; stored hashed
       tributary-agent device remove ID -config FILE (or -data DIR)
       tributary-agent device list -config FILE (or -data DIR)

`

// deviceFlags are the flags of `device add`.
type deviceFlags struct {
	admin, passwordStdin *bool
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	var cfg agent.Config
	c := cmdline.New("tributary-agent", version, usage, "YAML config `file` (optional; see deploy/agent.example.yaml)", stdout, stderr)
	c.String("data", "data `folder` for the queue database and the device passwords", func(v string) { cfg.Data = v })
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
	df := deviceFlags{
		admin:         c.Flags.Bool("admin", false, "device add: the device is exempt from strict identity (consoles, debugging subscribers)"),
		passwordStdin: c.Flags.Bool("password-stdin", false, "device add: read the password from stdin (to keep a device's existing one) instead of making one"),
	}
	if code, done := c.Parse(args, true); done {
		return code
	}
	cmd := c.Flags.Args()
	if len(cmd) > 0 {
		n, ok := map[string]int{"validate": 1, "device": 3}[cmd[0]]
		if !ok {
			return c.Failf(cmdline.ExitUsage, "unknown command %q (see -h)", cmd[0])
		}
		if cmd[0] == "device" && len(cmd) > 1 && cmd[1] == "list" {
			n = 2
		}
		if len(cmd) > n { // flags may follow the command: device add dev-1 -data DIR
			if code, done := c.Parse(cmd[n:], false); done {
				return max(code, cmdline.ExitUsage)
			}
			cmd = cmd[:n]
		}
	}
	if code, ok := cmdline.LoadConfig(c, &cfg, agent.LoadConfig); !ok {
		return code
	}
	cfg = cfg.WithEnvToken(os.Getenv)
	switch {
	case len(cmd) > 0 && cmd[0] == "validate":
		return validateCommand(cfg, stdout, stderr)
	case len(cmd) > 0:
		return deviceCommand(c, cfg, cmd[1:], df, stdout, stderr)
	}
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
