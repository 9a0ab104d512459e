package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/tributary-iot/tributary/edge/agent"
	"github.com/tributary-iot/tributary/edge/devicecreds"
	"github.com/tributary-iot/tributary/internal/cmdline"
)

// redacted replaces a secret in validate's output.
const redacted = "REDACTED"

// validateCommand prints cfg's effective settings with secrets redacted,
// then its warnings and problems; ExitFail when there is a problem.
func validateCommand(cfg agent.Config, stdout, stderr io.Writer) int {
	cfg = cfg.WithDefaults()
	shown := cfg
	if shown.Cloud.Token != "" {
		shown.Cloud.Token = redacted
	}
	if shown.MQTT.Password != "" {
		shown.MQTT.Password = redacted
	}
	shown.MQTT.Users = nil
	for _, u := range cfg.MQTT.Users {
		shown.MQTT.Users = append(shown.MQTT.Users, agent.UserConfig{Username: u.Username, Password: redacted})
	}
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(shown); err != nil {
		fmt.Fprintf(stderr, "tributary-agent: validate: %v\n", err)
		return cmdline.ExitFail
	}
	_ = enc.Close()
	fmt.Fprint(stdout, "# tributary-agent effective configuration (secrets redacted)\n", buf.String())
	for _, w := range cfg.Warnings() {
		fmt.Fprintf(stderr, "warning: %s\n", w)
	}
	err := cfg.Check()
	if err == nil {
		fmt.Fprintln(stderr, "configuration OK")
		return cmdline.ExitOK
	}
	problems := strings.Split(err.Error(), "\n")
	for _, p := range problems {
		fmt.Fprintf(stderr, "problem: %s\n", p)
	}
	fmt.Fprintf(stderr, "%d problem(s)\n", len(problems))
	return cmdline.ExitFail
}

// deviceCommand runs `device add|remove ID` and `device list`.
func deviceCommand(c *cmdline.Command, cfg agent.Config, args []string, df deviceFlags, stdout, stderr io.Writer) int {
	if len(args) == 0 || (args[0] == "list") != (len(args) == 1) {
		return c.Failf(cmdline.ExitUsage, "device: want add ID, remove ID or list (see -h)")
	}
	if cfg.Data == "" {
		return c.Failf(cmdline.ExitUsage, "device: -data DIR (or data: in -config FILE) is required: the device passwords live there")
	}
	if args[0] != "add" && (*df.admin || *df.passwordStdin) {
		return c.Failf(cmdline.ExitUsage, "device %s: -admin and -password-stdin belong to device add", args[0])
	}
	path := cfg.DevicesFile()
	switch args[0] {
	case "add":
		return deviceAdd(c, cfg, path, args[1], df, stdout, stderr)
	case "remove":
		if err := devicecreds.Remove(path, args[1]); err != nil {
			return c.Failf(cmdline.ExitFail, "%v", err)
		}
		fmt.Fprintf(stderr, "device %s removed from %s: a running agent refuses its next CONNECT (within a second; "+
			"a connection already open stays until it ends)\n", args[1], path)
	case "list":
		ds, err := devicecreds.List(path)
		if err != nil {
			return c.Failf(cmdline.ExitFail, "%v", err)
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "DEVICE\tADMIN\tCREATED")
		for _, d := range ds {
			fmt.Fprintf(tw, "%s\t%v\t%s\n", d.ID, d.Admin, d.Created.UTC().Format(time.RFC3339))
		}
		tw.Flush()
	default:
		return c.Failf(cmdline.ExitUsage, "device: unknown subcommand %q: add, remove or list", args[0])
	}
	return cmdline.ExitOK
}

// maxPassword bounds a password read from stdin.
const maxPassword = 1024

func deviceAdd(c *cmdline.Command, cfg agent.Config, path, id string, df deviceFlags, stdout, stderr io.Writer) int {
	if cfg.Gateway != "" && id == cfg.Gateway {
		return c.Failf(cmdline.ExitFail, "device add: %q is the gateway's own id, reserved for the agent", id)
	}
	password, generated := devicecreds.NewPassword(), true
	if *df.passwordStdin {
		b, err := io.ReadAll(io.LimitReader(stdin, maxPassword+1))
		if err != nil {
			return c.Failf(cmdline.ExitFail, "device add: reading the password from stdin: %v", err)
		}
		password, generated = strings.TrimRight(string(b), "\r\n"), false
		if password == "" || len(password) > maxPassword {
			return c.Failf(cmdline.ExitFail, "device add: the password on stdin is empty or longer than %d bytes", maxPassword)
		}
	}
	if err := os.MkdirAll(cfg.Data, 0o750); err != nil {
		return c.Failf(cmdline.ExitFail, "device add: %v", err)
	}
	if err := devicecreds.Add(path, id, []byte(password), *df.admin, devicecreds.DefaultParams); err != nil {
		if errors.Is(err, devicecreds.ErrExists) {
			return c.Failf(cmdline.ExitFail, "%v", err)
		}
		return c.Failf(cmdline.ExitFail, "device add: %v", err)
	}
	if generated {
		fmt.Fprintln(stdout, password)
		fmt.Fprintf(stderr, "device %s added; its password above is shown only this once: the device connects with username %s and that password.\n", id, id)
	} else {
		fmt.Fprintf(stderr, "device %s added with the password read from stdin (stored hashed).\n", id)
	}
	fmt.Fprintf(stderr, "A running agent accepts it within a second (restart an agent that started without any device password: it admits devices anonymously until then). File: %s\n", path)
	return cmdline.ExitOK
}
