package main

import (
	"bytes"
	"fmt"
	"io"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/tributary-iot/tributary/cloud/server"
	"github.com/tributary-iot/tributary/internal/cmdline"
)

// validateCommand prints the effective settings of cfg (file and flags
// applied by the caller, defaults here) as YAML with the secrets
// redacted, on stdout, then every problem a start would find, on stderr.
// It exits 0 when there is none, 1 otherwise. It binds no port and writes
// no file.
func validateCommand(cfg server.Config, noFiles bool, stdout, stderr io.Writer) int {
	cfg = cfg.WithDefaults()
	var b bytes.Buffer
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(cfg.Redacted()); err != nil {
		fmt.Fprintf(stderr, "tributary-cloud validate: %v\n", err)
		return cmdline.ExitFail
	}
	fmt.Fprintln(stdout, "# tributary-cloud: effective configuration (defaults applied, secrets redacted)")
	stdout.Write(b.Bytes())
	err := cfg.Check(server.CheckOptions{NoFiles: noFiles})
	if err == nil {
		what := ""
		if noFiles {
			what = " (files not read: -no-files)"
		}
		fmt.Fprintf(stderr, "tributary-cloud validate: configuration OK%s\n", what)
		return cmdline.ExitOK
	}
	problems := flatten(err)
	fmt.Fprintf(stderr, "tributary-cloud validate: %d problem(s):\n", len(problems))
	for _, p := range problems {
		fmt.Fprintf(stderr, "  - %s\n", strings.ReplaceAll(p, "\n", "\n    "))
	}
	return cmdline.ExitFail
}

// flatten lists the leaves of a tree of errors.Join errors.
func flatten(err error) []string {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []string
		for _, e := range j.Unwrap() {
			out = append(out, flatten(e)...)
		}
		return out
	}
	if err == nil {
		return nil
	}
	return []string{err.Error()}
}
