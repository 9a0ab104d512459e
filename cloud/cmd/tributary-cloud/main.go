// Command tributary-cloud is the cloud tier: the ingest API that gateways
// upload batches to (and /healthz) on -listen, the dashboard, /api/v1,
// /metrics and pprof on -admin-listen (loopback unless admin users or
// admin.tokens exist), the embedded stream store and its Kinesis API on -kinesis-listen
// (loopback unless kinesis_api.credentials is set), or Amazon Kinesis as
// the stream.
//
//	tributary-cloud -data DIR [-listen :8080] [-admin-listen 127.0.0.1:8081] [-kinesis-listen 127.0.0.1:4567]
//	tributary-cloud -config /etc/tributary/cloud.yaml
//	tributary-cloud -data DIR token issue|rotate|revoke GATEWAY
//	tributary-cloud -data DIR token list
//	tributary-cloud admin-token
//	tributary-cloud -data DIR user add|passwd [-generate] NAME
//	tributary-cloud -data DIR user remove NAME
//	tributary-cloud -data DIR user list
//	tributary-cloud validate [-config FILE] [flags] [-no-files]
//	tributary-cloud anomaly score [-in FILE] [-out FILE]
//	tributary-cloud plan [-devices N ...] [-from ADMIN-URL] [-json]
//
// Flags win over the config file; deploy/cloud.example.yaml is an
// annotated config. `token issue` prints the new bearer token on stdout
// (and nothing else there, so scripts can capture it); a running server
// picks token changes up within tokens.reload_every (2s). `user add`
// reads the new admin user's password from the terminal (no echo, asked
// twice) or one line of stdin, never from a flag; with -generate it
// prints a random one on stdout instead. Users sign in on the admin
// listener's /login; a running server picks user changes up within
// tokens.reload_every too. `validate` loads the config as a start would
// (same flags), prints the effective settings as YAML with the secrets
// redacted, then every problem, and exits 0 or 1. SIGINT or
// SIGTERM stops taking requests and lets those in progress finish within
// drain_timeout; a second signal kills the server at once.
package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"text/tabwriter"
	"time"

	"github.com/tributary-iot/tributary/cloud/anomaly"
	"github.com/tributary-iot/tributary/cloud/auth"
	"github.com/tributary-iot/tributary/cloud/server"
	"github.com/tributary-iot/tributary/internal/cmdline"
)

// version is set by the linker (-X main.version=...).
var version = "dev"

func main() { cmdline.Main(run) }

const usage = `usage: tributary-cloud -data DIR [-listen ADDR] [-admin-listen ADDR] [-kinesis-listen ADDR] [flags]
       tributary-cloud -config FILE [flags]
       tributary-cloud -data DIR token issue GATEWAY    print a new token for a gateway
       tributary-cloud -data DIR token rotate GATEWAY   replace a gateway's token, print the new one
       tributary-cloud -data DIR token revoke GATEWAY   delete a gateway's token
       tributary-cloud -data DIR token list             list gateways with a token
       tributary-cloud admin-token                      print a new admin bearer token (stdout) and
                                                        its admin.tokens entry (stderr)
       tributary-cloud -data DIR user add NAME          add an admin user (dashboard sign-in); the password
                                                        is read from the terminal or stdin, never a flag
       tributary-cloud -data DIR user add -generate NAME  ... with a random password, printed once (stdout)
       tributary-cloud -data DIR user passwd [-generate] NAME  set a new password (their sessions end)
       tributary-cloud -data DIR user remove NAME       delete an admin user (their sessions end)
       tributary-cloud -data DIR user list              list the admin users
       tributary-cloud validate [-config FILE] [flags] [-no-files]
                                          print the effective config (secrets redacted) and every
                                          problem a start would find; exit 0 or 1. -no-files: do not
                                          read the TLS, token and secret files it names
       tributary-cloud anomaly score [-in FILE] [-out FILE]
                                          score a NAB-format CSV (timestamp,value) with the live
                                          detectors: writes timestamp,value,anomaly_score
       tributary-cloud plan [-devices N ...] [-from ADMIN-URL] [-json]
                                          shards needed and the monthly cost on Kinesis and MSK
                                          (plan -h for its flags)

`

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	var cfg server.Config
	c := cmdline.New("tributary-cloud", version, usage, "YAML config `file` (optional; see deploy/cloud.example.yaml)", stdout, stderr)
	c.String("data", "data `folder`: tokens, the ack log and the stream store", func(v string) { cfg.Data = v })
	c.String("listen", "`address` of the ingest API and /healthz, for gateways (default :8080)", func(v string) { cfg.Listen = v })
	c.String("admin-listen", "`address` of the dashboard, /api/v1, /metrics and pprof (default 127.0.0.1:8081; off to disable; any other than loopback needs admin users or admin.tokens)", func(v string) { cfg.Admin.Listen = v })
	c.String("kinesis-listen", "`address` of the Kinesis API (default 127.0.0.1:4567; off to disable; any other than loopback needs kinesis_api.credentials)", func(v string) { cfg.KinesisListen = v })
	c.LogFlags(&cfg.LogFormat, &cfg.LogLevel)
	if code, done := c.Parse(args, true); done {
		return code
	}
	cmd := c.Flags.Args()
	var user struct {
		sub, name string
		generate  bool
	}
	noFiles := false
	switch {
	case len(cmd) > 0 && cmd[0] == "plan":
		return planCommand(ctx, cmd[1:], stdout, stderr)
	case len(cmd) > 0 && cmd[0] == "anomaly":
		return anomalyCommand(cmd[1:], os.Stdin, stdout, stderr)
	case len(cmd) > 0 && cmd[0] == "admin-token":
		if len(cmd) > 1 {
			return c.Failf(cmdline.ExitUsage, "admin-token: unexpected argument %q", cmd[1])
		}
		return adminTokenCommand(stdout, stderr)
	case len(cmd) > 0 && cmd[0] == "token":
		// Flags may also follow the command: token issue gw-1 -data DIR.
		n := 2
		if len(cmd) > 1 && cmd[1] != "list" {
			n = 3
		}
		if len(cmd) > n {
			if code, done := c.Parse(cmd[n:], false); done {
				return max(code, cmdline.ExitUsage)
			}
			cmd = cmd[:n]
		}
	case len(cmd) > 0 && cmd[0] == "user":
		// Flags may also follow the command: user add ops -data DIR.
		var rest []string
		var err error
		if user.sub, user.generate, user.name, rest, err = userArgs(cmd[1:], stderr); err != nil {
			return c.Failf(cmdline.ExitUsage, "%v (see -h)", err)
		}
		if code, done := c.Parse(rest, false); done {
			return max(code, cmdline.ExitUsage)
		}
	case len(cmd) > 0 && cmd[0] == "validate":
		c.Flags.BoolVar(&noFiles, "no-files", false, "validate: do not read the files the config names (TLS, token and secret files)")
		if code, done := c.Parse(cmd[1:], false); done {
			return code
		}
	case len(cmd) > 0:
		return c.Failf(cmdline.ExitUsage, "unknown command %q (see -h)", cmd[0])
	}
	if code, ok := cmdline.LoadConfig(c, &cfg, server.LoadConfig); !ok {
		return code
	}
	switch {
	case len(cmd) > 0 && cmd[0] == "validate":
		return validateCommand(cfg, noFiles, stdout, stderr)
	case len(cmd) > 0 && cmd[0] == "user":
		return userCommand(cfg.Data, user.sub, user.generate, user.name, stdout, stderr)
	case len(cmd) > 0:
		return tokenCommand(cfg.Data, cmd[1:], stdout, stderr)
	}
	log, code, ok := cmdline.Start(c, &cfg)
	if !ok {
		return code
	}
	s, err := server.New(ctx, cfg, server.Options{Logger: log, Version: version})
	if err != nil {
		return c.Failf(cmdline.ExitFail, "%v", err)
	}
	if err := s.Run(ctx); err != nil {
		log.Error("tributary-cloud failed", "err", err)
		return cmdline.ExitFail
	}
	return cmdline.ExitOK
}

// tokenCommand runs `token issue|rotate|revoke GATEWAY` and `token list`.
func tokenCommand(data string, args []string, stdout, stderr io.Writer) int {
	if data == "" {
		fmt.Fprintln(stderr, "tributary-cloud: token: -data DIR (or data: in -config) is required: the tokens live there")
		return 2
	}
	if len(args) == 0 || (args[0] == "list") != (len(args) == 1) {
		fmt.Fprint(stderr, usage)
		return 2
	}
	if err := os.MkdirAll(data, 0o750); err != nil {
		fmt.Fprintf(stderr, "tributary-cloud: %v\n", err)
		return 1
	}
	st, err := auth.Open(filepath.Join(data, server.TokensFile), auth.Options{})
	if err != nil {
		fmt.Fprintf(stderr, "tributary-cloud: %v\n", err)
		return 1
	}
	switch args[0] {
	case "issue", "rotate":
		issue := st.Issue
		if args[0] == "rotate" {
			issue = st.Rotate
		}
		tok, err := issue(args[1])
		if err != nil {
			fmt.Fprintf(stderr, "tributary-cloud: %v\n", err)
			return 1
		}
		fmt.Fprintln(stdout, tok)
		fmt.Fprintf(stderr, "token for gateway %s above: it is shown only this once; give it to the agent (-token, or cloud.token_file)\n", args[1])
	case "revoke":
		if err := st.Revoke(args[1]); err != nil {
			fmt.Fprintf(stderr, "tributary-cloud: %v\n", err)
			return 1
		}
		fmt.Fprintf(stderr, "token of gateway %s revoked (a running server stops accepting it within seconds)\n", args[1])
	case "list":
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "GATEWAY\tTOKEN ID\tCREATED")
		for _, in := range st.List() {
			fmt.Fprintf(tw, "%s\t%s\t%s\n", in.Gateway, in.ID, in.Created.UTC().Format(time.RFC3339))
		}
		tw.Flush()
	default:
		fmt.Fprintf(stderr, "tributary-cloud: token: unknown subcommand %q: issue, rotate, revoke or list\n", args[0])
		return 2
	}
	return 0
}

// adminTokenCommand prints a new random admin token on stdout (and
// nothing else there, so scripts can capture it) and the admin.tokens
// entry that accepts it on stderr: the config keeps only the hash.
func adminTokenCommand(stdout, stderr io.Writer) int {
	var b [32]byte
	rand.Read(b[:]) // never fails (crypto/rand)
	tok := "tribadm_" + base64.RawURLEncoding.EncodeToString(b[:])
	fmt.Fprintln(stdout, tok)
	fmt.Fprintf(stderr, "admin token above: it is shown only this once. Add this entry to admin.tokens:\n  - %q\nclients send it as Authorization: Bearer TOKEN\n", server.HashAdminToken(tok))
	return cmdline.ExitOK
}

// anomalyCommand runs `anomaly score`: the live consumer's detector over a
// CSV of timestamp,value rows, one output row per input row.
func anomalyCommand(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] != "score" {
		fmt.Fprintln(stderr, "usage: tributary-cloud anomaly score [-in FILE] [-out FILE]")
		return 2
	}
	fs := flag.NewFlagSet("anomaly score", flag.ContinueOnError)
	fs.SetOutput(stderr)
	in := fs.String("in", "-", "CSV `file` to read, timestamp,value with an optional header (- for stdin)")
	out := fs.String("out", "-", "`file` to write timestamp,value,anomaly_score to (- for stdout)")
	if err := fs.Parse(args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "tributary-cloud anomaly score: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	r := stdin
	if *in != "-" {
		f, err := os.Open(*in)
		if err != nil {
			fmt.Fprintf(stderr, "tributary-cloud anomaly score: %v\n", err)
			return 1
		}
		defer f.Close()
		r = f
	}
	w := stdout
	var outFile *os.File
	if *out != "-" {
		f, err := os.Create(*out)
		if err != nil {
			fmt.Fprintf(stderr, "tributary-cloud anomaly score: %v\n", err)
			return 1
		}
		outFile, w = f, f
	}
	err := anomaly.Score(r, w, anomaly.Config{})
	if outFile != nil {
		if cerr := outFile.Close(); err == nil {
			err = cerr
		}
	}
	if err != nil {
		fmt.Fprintf(stderr, "tributary-cloud anomaly score: %v\n", err)
		return 1
	}
	return 0
}
