// Command tributary-node is the firmware of a Linux sensor node: it samples
// the sensors on the node's I²C, SPI and GPIO buses and publishes their
// readings to an MQTT broker (see firmware/node).
//
//	tributary-node -config /etc/tributary/node.yaml [-log-format text|json] [-log-level info]
//
// deploy/node.example.yaml is an annotated config. SIGINT or SIGTERM stops
// the node cleanly: buffered readings are flushed and the node's status
// becomes offline/shutdown. A second signal kills it at once.
package main

import (
	"context"
	"errors"
	"io"

	"github.com/tributary-iot/tributary/firmware/node"
	"github.com/tributary-iot/tributary/firmware/sensor"
	"github.com/tributary-iot/tributary/internal/cmdline"
	"github.com/tributary-iot/tributary/internal/logging"
)

// version is set by the linker (-X main.version=...).
var version = "dev"

// buses are the buses the sensors are on; nil means the machine's own
// (tests set fakes).
var buses sensor.Buses

func main() { cmdline.Main(run) }

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	c := cmdline.New("tributary-node", version, "usage: tributary-node -config FILE [flags]\n\n",
		"YAML config `file` (required; see deploy/node.example.yaml)", stdout, stderr)
	logFormat, logLevel := logging.FormatText, "info"
	c.LogFlags(&logFormat, &logLevel)
	if code, done := c.Parse(args, false); done {
		return code
	}
	c.ApplyFlags()
	if c.Config == "" {
		return c.Failf(cmdline.ExitUsage, "-config FILE is required (see deploy/node.example.yaml)")
	}
	log, err := c.StartLogging(logFormat, logLevel)
	if err != nil {
		return c.Failf(cmdline.ExitUsage, "%v", err)
	}

	cfg, err := node.LoadConfig(c.Config)
	if err != nil {
		return c.Failf(cmdline.ExitFail, "%v", err)
	}
	if err := cfg.Validate(); err != nil {
		return c.Failf(cmdline.ExitFail, "config %s is invalid:\n%v", c.Config, err)
	}
	n, err := node.New(cfg, node.Options{Buses: buses, Logger: log, Firmware: version})
	if err != nil {
		return c.Failf(cmdline.ExitFail, "%v", err)
	}
	log.Info("tributary-node starting", "version", version, "device", cfg.Device, "broker", cfg.Broker,
		"sensors", len(cfg.Sensors))
	runErr := n.Run(ctx)
	closeErr := n.Close()
	if err := errors.Join(runErr, closeErr); err != nil {
		return c.Failf(cmdline.ExitFail, "%v", err)
	}
	return cmdline.ExitOK
}
