package main

import (
	"bufio"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"golang.org/x/term"

	"github.com/tributary-iot/tributary/cloud/auth"
	"github.com/tributary-iot/tributary/cloud/server"
	"github.com/tributary-iot/tributary/internal/cmdline"
)

// stdin is where `user add` reads a password (tests replace it).
var stdin io.Reader = os.Stdin

// userArgs splits `user SUB [-generate] [NAME] [global flags]`: the
// subcommand, -generate, the name, and what follows (flags such as -data,
// parsed by the caller).
func userArgs(args []string, stderr io.Writer) (sub string, generate bool, name string, rest []string, err error) {
	if len(args) == 0 {
		return "", false, "", nil, errors.New("user: want add, passwd, remove or list")
	}
	sub, args = args[0], args[1:]
	switch sub {
	case "list":
		return sub, false, "", args, nil
	case "add", "passwd", "remove":
	default:
		return "", false, "", nil, fmt.Errorf("user: unknown subcommand %q: add, passwd, remove or list", sub)
	}
	fs := flag.NewFlagSet("user "+sub, flag.ContinueOnError)
	fs.SetOutput(stderr)
	if sub != "remove" {
		fs.BoolVar(&generate, "generate", false, "generate a random password and print it (once) instead of reading one")
	}
	if err := fs.Parse(args); err != nil {
		return "", false, "", nil, err
	}
	if fs.NArg() == 0 {
		return "", false, "", nil, fmt.Errorf("user %s: want a user NAME", sub)
	}
	return sub, generate, fs.Arg(0), fs.Args()[1:], nil
}

// userCommand runs `user add|passwd|remove NAME` and `user list` on the
// data folder's users.db.
func userCommand(data, sub string, generate bool, name string, stdout, stderr io.Writer) int {
	if data == "" {
		fmt.Fprintln(stderr, "tributary-cloud: user: -data DIR (or data: in -config) is required: the users live there")
		return cmdline.ExitUsage
	}
	if err := os.MkdirAll(data, 0o750); err != nil {
		fmt.Fprintf(stderr, "tributary-cloud: %v\n", err)
		return cmdline.ExitFail
	}
	users, err := auth.OpenUsers(filepath.Join(data, server.UsersFile), auth.Options{})
	if err != nil {
		fmt.Fprintf(stderr, "tributary-cloud: %v\n", err)
		return cmdline.ExitFail
	}
	switch sub {
	case "list":
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "USER\tPASSWORD SET\tHASH")
		for _, u := range users.List() {
			fmt.Fprintf(tw, "%s\t%s\t%s\n", u.Name, u.Created.UTC().Format(time.RFC3339), u.KDF)
		}
		tw.Flush()
		return cmdline.ExitOK
	case "remove":
		if err := users.Remove(name); err != nil {
			fmt.Fprintf(stderr, "tributary-cloud: %v\n", err)
			return cmdline.ExitFail
		}
		fmt.Fprintf(stderr, "admin user %s removed (a running server ends their sessions within tokens.reload_every)\n", name)
		return cmdline.ExitOK
	}
	if err := auth.CheckUserName(name); err != nil { // before asking for a password
		fmt.Fprintf(stderr, "tributary-cloud: %v\n", err)
		return cmdline.ExitFail
	}
	password, err := newPassword(generate, name, stderr)
	if err == nil {
		if sub == "add" {
			err = users.Add(name, password)
		} else {
			err = users.SetPassword(name, password)
		}
	}
	if err != nil {
		fmt.Fprintf(stderr, "tributary-cloud: %v\n", err)
		return cmdline.ExitFail
	}
	if generate {
		fmt.Fprintln(stdout, password)
		fmt.Fprintf(stderr, "password of admin user %s above: it is shown only this once\n", name)
	} else {
		fmt.Fprintf(stderr, "admin user %s saved: sign in on the admin listener's /login\n", name)
	}
	return cmdline.ExitOK
}

// newPassword generates a password, or reads one: from the terminal
// without echo (twice), or else one line from stdin. Never from a flag:
// command lines show in ps and shell history.
func newPassword(generate bool, name string, stderr io.Writer) (string, error) {
	if generate {
		var b [24]byte
		rand.Read(b[:]) // never fails (crypto/rand)
		return base64.RawURLEncoding.EncodeToString(b[:]), nil
	}
	if f, ok := stdin.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		fmt.Fprintf(stderr, "Password for %s (at least %d characters): ", name, auth.MinPasswordLen)
		p1, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(stderr)
		if err != nil {
			return "", fmt.Errorf("user: reading the password: %w", err)
		}
		fmt.Fprint(stderr, "Again: ")
		p2, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(stderr)
		if err != nil {
			return "", fmt.Errorf("user: reading the password: %w", err)
		}
		if string(p1) != string(p2) {
			return "", errors.New("user: the passwords differ")
		}
		return string(p1), nil
	}
	line, err := bufio.NewReaderSize(io.LimitReader(stdin, auth.MaxPasswordLen+2), auth.MaxPasswordLen+2).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", fmt.Errorf("user: reading the password from stdin: %w", err)
	}
	line = strings.TrimRight(line, "\r\n")
	if line == "" {
		return "", errors.New("user: no password on stdin: type one at the prompt, pipe one in (never as a flag), or use -generate")
	}
	return line, nil
}
