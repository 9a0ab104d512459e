// Package cmdline is the part of the command line that every tributary
// binary shares: running under a context that SIGINT or SIGTERM ends, the
// exit codes, -config, -version and the log flags, and flag parsing with
// the usage text on -h.
package cmdline

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

	"github.com/tributary-iot/tributary/internal/buildinfo"
	"github.com/tributary-iot/tributary/internal/logging"
)

// Exit codes.
const (
	ExitOK    = 0
	ExitFail  = 1 // the command failed
	ExitUsage = 2 // bad flags or arguments
)

// RunFunc is a binary's body: it runs until ctx ends or its work is done
// and returns the exit code.
type RunFunc func(ctx context.Context, args []string, stdout, stderr io.Writer) int

// Main runs run with the process's arguments and standard streams under a
// context that the first SIGINT or SIGTERM ends (a second one kills the
// process at once, the default action), and exits with run's code.
func Main(run RunFunc) {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	go func() {
		<-ctx.Done()
		stop() // restores the default action for the next signal
	}()
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// Command is a binary's flag set with the flags every binary has.
type Command struct {
	Name   string        // the binary, e.g. tributary-agent
	Flags  *flag.FlagSet // add the binary's own flags to it before Parse
	Config string        // -config

	version     string
	showVersion bool
	logFormat   *string // set by LogFlags
	logLevel    *string
	stdout      io.Writer
	stderr      io.Writer
}

// New returns the command line of the binary name at version (set by the
// linker in main). -h prints usage, then the flags. It has -config (with
// configHelp as its help; "" leaves it out) and -version.
func New(name, version, usage, configHelp string, stdout, stderr io.Writer) *Command {
	c := &Command{Name: name, Flags: flag.NewFlagSet(name, flag.ContinueOnError), version: version, stdout: stdout, stderr: stderr}
	c.Flags.SetOutput(stderr)
	c.Flags.Usage = func() {
		fmt.Fprint(stderr, usage)
		c.Flags.PrintDefaults()
	}
	if configHelp != "" {
		c.Flags.StringVar(&c.Config, "config", "", configHelp)
	}
	c.Flags.BoolVar(&c.showVersion, "version", false, "print the version and exit")
	return c
}

// String adds a string flag that sets a config field: when the flag is
// given, ApplyFlags passes its value to set. Call ApplyFlags after loading
// the config file, so that flags win over the file.
func (c *Command) String(name, usage string, set func(string)) {
	c.Flags.Var(&configFlag{set: set}, name, usage)
}

// LogFlags adds -log-format and -log-level, which set *format and *level
// (as String does); their current values are the defaults -h shows.
func (c *Command) LogFlags(format, level *string) {
	c.logFormat, c.logLevel = format, level
	c.Flags.Var(&configFlag{value: *format, set: func(v string) { *format = v }}, "log-format", "log format: text or json")
	c.Flags.Var(&configFlag{value: *level, set: func(v string) { *level = v }}, "log-level", "log level: debug, info, warn or error")
}

// ApplyFlags sets the config fields of the flags given (String, LogFlags).
func (c *Command) ApplyFlags() {
	c.Flags.Visit(func(f *flag.Flag) {
		if cf, ok := f.Value.(*configFlag); ok {
			cf.set(cf.value)
		}
	})
}

// configFlag holds a flag's value until ApplyFlags.
type configFlag struct {
	value string
	set   func(string)
}

func (f *configFlag) String() string {
	if f == nil {
		return ""
	}
	return f.value
}

func (f *configFlag) Set(v string) error { f.value = v; return nil }

// Config is a binary's configuration: defaults in code, one validation.
type Config[C any] interface {
	WithDefaults() C
	Validate() error
}

// LoadConfig sets *cfg from the -config file with load (when -config was
// given), then the flags given over it (ApplyFlags). When it fails, it has
// said why and returns false and the exit code.
func LoadConfig[C any](c *Command, cfg *C, load func(path string) (C, error)) (int, bool) {
	if c.Config != "" {
		file, err := load(c.Config)
		if err != nil {
			return c.Failf(ExitFail, "%v", err), false
		}
		*cfg = file
	}
	c.ApplyFlags()
	return ExitOK, true
}

// Start applies cfg's defaults, validates it and starts logging with the
// format and level that LogFlags set in it. When it fails, it has said why
// and returns false and the exit code.
func Start[C Config[C]](c *Command, cfg *C) (*slog.Logger, int, bool) {
	*cfg = (*cfg).WithDefaults()
	if err := (*cfg).Validate(); err != nil {
		return nil, c.Failf(ExitFail, "invalid configuration:\n%v", err), false
	}
	var format, level string
	if c.logFormat != nil {
		format, level = *c.logFormat, *c.logLevel
	}
	log, err := c.StartLogging(format, level)
	if err != nil {
		return nil, c.Failf(ExitFail, "%v", err), false
	}
	return log, ExitOK, true
}

// StartLogging makes a logger of the format and level (see logging.New)
// on the command's stderr the default one, and returns it.
func (c *Command) StartLogging(format, level string) (*slog.Logger, error) {
	log, err := logging.New(c.stderr, format, level)
	if err != nil {
		return nil, err
	}
	slog.SetDefault(log)
	return log, nil
}

// Parse parses args. When it returns done, the command is over with the
// exit code: -h (ExitOK), -version (printed on stdout; ExitOK), a bad
// flag (ExitUsage; the flag package said why) or, unless positional
// arguments are allowed, an argument (ExitUsage).
func (c *Command) Parse(args []string, positional bool) (code int, done bool) {
	if err := c.Flags.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return ExitOK, true
		}
		return ExitUsage, true
	}
	if c.showVersion {
		fmt.Fprintln(c.stdout, c.Name, buildinfo.Read(c.version))
		return ExitOK, true
	}
	if !positional && c.Flags.NArg() > 0 {
		return c.Failf(ExitUsage, "unexpected argument %q (flags only; see -h)", c.Flags.Arg(0)), true
	}
	return ExitOK, false
}

// Failf prints "name: message" on stderr and returns code.
func (c *Command) Failf(code int, format string, args ...any) int {
	fmt.Fprintf(c.stderr, c.Name+": "+format+"\n", args...)
	return code
}
