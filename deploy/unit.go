package deploy

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strings"
)

// Unit is a systemd unit file: each "[Section]Key" with its values in file
// order (a key such as DeviceAllow may be set more than once).
type Unit map[string][]string

// ReadUnit reads the systemd unit file at path.
func ReadUnit(path string) (Unit, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("deploy: %w", err)
	}
	u, err := ParseUnit(bytes.NewReader(b))
	if err != nil {
		return nil, fmt.Errorf("deploy: %s: %w", path, err)
	}
	return u, nil
}

// ParseUnit reads a systemd unit: "[Section]" headers and "Key=Value" lines
// inside a section, with blank lines and comments (# or ;) skipped and space
// around keys and values trimmed. Continuation lines (a trailing
// backslash) are not supported and are an error, as is any other line.
func ParseUnit(r io.Reader) (Unit, error) {
	u := Unit{}
	section := ""
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, ";"):
		case strings.HasSuffix(line, `\`):
			return nil, fmt.Errorf("line %d: continuation lines are not supported", n)
		case strings.HasPrefix(line, "[") && strings.HasSuffix(line, "]"):
			section = line
		default:
			k, v, ok := strings.Cut(line, "=")
			k = strings.TrimSpace(k)
			if !ok || k == "" || section == "" {
				return nil, fmt.Errorf("line %d: %q is not Key=Value in a section", n, line)
			}
			u[section+k] = append(u[section+k], strings.TrimSpace(v))
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read unit: %w", err)
	}
	return u, nil
}

// Mismatches returns, sorted by key, a line for each key of want
// ("[Service]User") that the unit does not set exactly once to the wanted
// value.
func (u Unit) Mismatches(want map[string]string) []string {
	var out []string
	for _, k := range slices.Sorted(maps.Keys(want)) {
		if got := u[k]; len(got) != 1 || got[0] != want[k] {
			out = append(out, fmt.Sprintf("%s = %q, want %q", k, got, want[k]))
		}
	}
	return out
}
