// Command skipguard reads `go test -json` on stdin, prints what a CI log
// needs (each package's result line, build errors, and the whole output of
// every failed test) and fails when a test failed or skipped without being
// on the allowlist: `make check` must not pass by skipping tests.
//
//	go test -json ./... | go run ./internal/testenv/cmd/skipguard -allow internal/testenv/cmd/skipguard/allowed-skips.txt
//
// The allowlist has one test per line, "PACKAGE TEST" (the package's import
// path relative to the module, the test's full name, subtests with "/");
// '#' starts a comment, and every entry says why in one.
package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
)

// event is one line of `go test -json` (cmd/test2json).
type event struct {
	Action     string
	Package    string
	ImportPath string // build-output events
	Test       string
	Output     string
}

// allowed is the allowlist: package (module-relative) → test names.
type allowed map[string]map[string]bool

func main() {
	allowPath := flag.String("allow", "", "allowlist file: one `PACKAGE TEST` per line that may skip")
	var also []string
	flag.Func("also", "one more `PACKAGE/TEST` that may skip this run (repeatable; the Makefile adds one when an outside input is absent, and says so)", func(v string) error {
		i := strings.LastIndex(v, "/")
		if i <= 0 || i == len(v)-1 {
			return fmt.Errorf("want PACKAGE/TEST, got %q", v)
		}
		also = append(also, v)
		return nil
	})
	flag.Parse()
	allow, err := readAllowlist(*allowPath)
	if err != nil {
		fmt.Fprintln(os.Stderr, "skipguard:", err)
		os.Exit(2)
	}
	for _, v := range also {
		i := strings.LastIndex(v, "/")
		if allow[v[:i]] == nil {
			allow[v[:i]] = map[string]bool{}
		}
		allow[v[:i]][v[i+1:]] = true
	}
	g := newGuard(os.Stdout, allow)
	if err := g.read(os.Stdin); err != nil {
		fmt.Fprintln(os.Stderr, "skipguard:", err)
		os.Exit(2)
	}
	if !g.summary() {
		os.Exit(1)
	}
}

func readAllowlist(path string) (allowed, error) {
	a := allowed{}
	if path == "" {
		return a, nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	for i, line := range strings.Split(string(b), "\n") {
		line, _, _ = strings.Cut(line, "#")
		f := strings.Fields(line)
		switch len(f) {
		case 0:
			continue
		case 2:
			if a[f[0]] == nil {
				a[f[0]] = map[string]bool{}
			}
			a[f[0]][f[1]] = true
		default:
			return nil, fmt.Errorf("%s:%d: want `PACKAGE TEST`, got %q", path, i+1, line)
		}
	}
	return a, nil
}

// has reports whether pkg's test may skip; pkg is an import path, the
// allowlist's packages are relative to the module.
func (a allowed) has(pkg, test string) bool {
	for p, tests := range a {
		if (pkg == p || strings.HasSuffix(pkg, "/"+p)) && tests[test] {
			return true
		}
	}
	return false
}

// result is a test that failed or skipped.
type result struct {
	pkg, test, why string
}

type guard struct {
	w       io.Writer
	allow   allowed
	output  map[[2]string][]string // running tests' output, by package and test
	passed  int
	failed  []result
	skipped []result // allowed
	unknown []result // skipped, not allowed
}

func newGuard(w io.Writer, allow allowed) *guard {
	return &guard{w: w, allow: allow, output: map[[2]string][]string{}}
}

func (g *guard) read(r io.Reader) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		var e event
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			fmt.Fprintln(g.w, sc.Text()) // not JSON (go vet, a build error): as it came
			continue
		}
		g.event(e)
	}
	return sc.Err()
}

func (g *guard) event(e event) {
	key := [2]string{e.Package, e.Test}
	switch {
	case e.Action == "build-output":
		fmt.Fprint(g.w, e.Output)
	case e.Test == "" && e.Action == "output":
		if !isVerboseNoise(e.Output) {
			fmt.Fprint(g.w, e.Output)
		}
	case e.Test == "" && e.Action == "fail":
		g.flushUnfinished(e.Package) // a panic or a timeout ended the test binary
		g.failed = append(g.failed, result{pkg: e.Package, why: "(the package failed: see above)"})
	case e.Test == "":
	case e.Action == "output":
		g.output[key] = append(g.output[key], e.Output)
	case e.Action == "pass":
		g.passed++
		delete(g.output, key)
	case e.Action == "fail":
		fmt.Fprint(g.w, strings.Join(g.output[key], ""))
		delete(g.output, key)
		g.failed = append(g.failed, result{pkg: e.Package, test: e.Test})
	case e.Action == "skip":
		r := result{pkg: e.Package, test: e.Test, why: skipReason(g.output[key])}
		delete(g.output, key)
		if g.allow.has(e.Package, e.Test) {
			g.skipped = append(g.skipped, r)
		} else {
			g.unknown = append(g.unknown, r)
		}
	}
}

// flushUnfinished prints the output of pkg's tests that never ended.
func (g *guard) flushUnfinished(pkg string) {
	for key, out := range g.output {
		if key[0] == pkg {
			fmt.Fprint(g.w, strings.Join(out, ""))
			g.failed = append(g.failed, result{pkg: pkg, test: key[1], why: "did not finish"})
			delete(g.output, key)
		}
	}
}

// isVerboseNoise reports whether a package-level line is only there
// because -json implies -v.
func isVerboseNoise(line string) bool {
	return line == "PASS\n" || strings.HasPrefix(line, "=== ")
}

// skipReason is what a skipped test said, without the framing lines.
func skipReason(out []string) string {
	var why []string
	for _, l := range out {
		t := strings.TrimSpace(l)
		if t == "" || strings.HasPrefix(t, "=== ") || strings.HasPrefix(t, "--- SKIP") {
			continue
		}
		why = append(why, t)
	}
	return strings.Join(why, " ")
}

// summary prints the verdict and reports whether it passed.
func (g *guard) summary() bool {
	fmt.Fprintf(g.w, "\nskipguard: %d passed, %d failed, %d skipped as allowed, %d skipped unexpectedly\n",
		g.passed, len(g.failed), len(g.skipped), len(g.unknown))
	for _, r := range g.skipped {
		fmt.Fprintf(g.w, "  allowed skip  %s %s: %s\n", r.pkg, r.test, r.why)
	}
	for _, r := range g.failed {
		fmt.Fprintf(g.w, "  FAIL          %s %s %s\n", r.pkg, r.test, r.why)
	}
	for _, r := range g.unknown {
		fmt.Fprintf(g.w, "  SKIP (not on the allowlist) %s %s: %s\n", r.pkg, r.test, r.why)
	}
	if len(g.unknown) > 0 {
		fmt.Fprintln(g.w, "skipguard: a test skipped that must run in `make check`: install what it needs (make deps) or fix it;")
		fmt.Fprintln(g.w, "only what a CI machine cannot have belongs on the allowlist.")
	}
	return len(g.failed) == 0 && len(g.unknown) == 0
}
