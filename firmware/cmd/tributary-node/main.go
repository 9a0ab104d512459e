// Command tributary-node is the firmware of a Linux sensor node: it samples
// the sensors on the node's I²C, SPI and GPIO buses and publishes their
// readings to an MQTT broker (see firmware/node).
//
//	tributary-node -config /etc/tributary/node.yaml [-log-format text|json] [-log-level info]
//
// deploy/node.example.yaml is an annotated config. SIGINT or SIGTERM stops
// the node cleanly: buffered readings are flushed and the node's status
// becomes offline/shutdown.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/tributary-iot/tributary/firmware/node"
	"github.com/tributary-iot/tributary/firmware/sensor"
)

// version is set by the linker (-X main.version=...).
var version = "dev"

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("tributary-node", flag.ContinueOnError)
	fs.SetOutput(stderr)
	configPath := fs.String("config", "", "YAML config `file` (required; see deploy/node.example.yaml)")
	showVersion := fs.Bool("version", false, "print the version and exit")
	logFormat := fs.String("log-format", "text", "log format: text or json")
	logLevel := fs.String("log-level", "info", "log level: debug, info, warn or error")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: tributary-node -config FILE [flags]\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "tributary-node: unexpected argument %q (flags only; see -h)\n", fs.Arg(0))
		return 2
	}
	if *showVersion {
		fmt.Fprintln(stdout, "tributary-node", version)
		return 0
	}
	if *configPath == "" {
		fmt.Fprintln(stderr, "tributary-node: -config FILE is required (see deploy/node.example.yaml)")
		return 2
	}
	log, err := newLogger(stderr, *logFormat, *logLevel)
	if err != nil {
		fmt.Fprintf(stderr, "tributary-node: %v\n", err)
		return 2
	}
	slog.SetDefault(log)

	cfg, err := node.LoadConfig(*configPath)
	if err != nil {
		fmt.Fprintf(stderr, "tributary-node: %v\n", err)
		return 1
	}
	if err := cfg.Validate(); err != nil {
		fmt.Fprintf(stderr, "tributary-node: config %s is invalid:\n%v\n", *configPath, err)
		return 1
	}

	buses := &sensor.HostBuses{}
	defer buses.Close()
	n, err := node.New(cfg, node.Options{Buses: buses, Logger: log, Firmware: version})
	if err != nil {
		fmt.Fprintf(stderr, "tributary-node: %v\n", err)
		return 1
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	log.Info("tributary-node starting", "version", version, "device", cfg.Device, "broker", cfg.Broker,
		"sensors", len(cfg.Sensors))
	runErr := n.Run(ctx)
	closeErr := n.Close()
	if err := errors.Join(runErr, closeErr); err != nil {
		fmt.Fprintf(stderr, "tributary-node: %v\n", err)
		return 1
	}
	return 0
}

func newLogger(w io.Writer, format, level string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("-log-level %q: want debug, info, warn or error", level)
	}
	o := &slog.HandlerOptions{Level: lv}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(w, o)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, o)), nil
	}
	return nil, fmt.Errorf("-log-format %q: want text or json", format)
}
