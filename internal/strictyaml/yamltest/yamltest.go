// Package yamltest runs a folder of config fixtures against a binary's
// config parser, Prometheus-style: every *.good.yml (or .yaml) must be
// accepted, every *.bad.yml must be rejected with an error that contains
// each of the file's "# want: ..." lines.
package yamltest

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

var wantLine = regexp.MustCompile(`(?m)^# want: (.*)$`)

// Run checks every fixture in dir with check, which decodes, applies
// defaults and validates one file's bytes. It fails when dir holds fewer
// than min fixtures (a moved folder must not pass silently), or a bad
// fixture has no "# want:" line.
func Run(t *testing.T, dir string, min int, check func(b []byte) error) {
	t.Helper()
	var files []string
	for _, pat := range []string{"*.yml", "*.yaml"} {
		m, err := filepath.Glob(filepath.Join(dir, pat))
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, m...)
	}
	if len(files) < min {
		t.Fatalf("yamltest: %d fixtures in %s, want at least %d", len(files), dir, min)
	}
	for _, f := range files {
		name := filepath.Base(f)
		good := strings.Contains(name, ".good.")
		if !good && !strings.Contains(name, ".bad.") {
			continue // not a fixture (e.g. a file a fixture includes)
		}
		t.Run(name, func(t *testing.T) {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			err = check(b)
			if good {
				if err != nil {
					t.Fatalf("valid config rejected: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("invalid config accepted")
			}
			wants := wantLine.FindAllStringSubmatch(string(b), -1)
			if len(wants) == 0 {
				t.Fatalf("bad fixture without a \"# want:\" line; the error was: %v", err)
			}
			for _, m := range wants {
				if !strings.Contains(err.Error(), strings.TrimSpace(m[1])) {
					t.Errorf("error does not say %q:\n%v", m[1], err)
				}
			}
		})
	}
}
