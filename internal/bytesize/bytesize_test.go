package bytesize_test

import (
	"flag"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/tributary-iot/tributary/internal/bytesize"
)

func TestParse(t *testing.T) {
	for in, want := range map[string]bytesize.Size{
		"0": 0, "123": 123, "123B": 123, "64KiB": 64 << 10, "1.5GiB": 3 << 29, "10MB": 10e6,
		"2 GiB": 2 << 30, "1TiB": 1 << 40, "2TB": 2e12, " 8MiB ": 8 << 20,
	} {
		got, err := bytesize.Parse(in)
		if err != nil || got != want {
			t.Errorf("Parse(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "x", "-1", "1XB", "NaN", "Inf", "1e30GiB", "MiB"} {
		if v, err := bytesize.Parse(in); err == nil {
			t.Errorf("Parse(%q) = %d, accepted", in, v)
		} else if !strings.Contains(err.Error(), "size") {
			t.Errorf("Parse(%q): error %q does not say what is wrong", in, err)
		}
	}
}

func TestStringRoundTrip(t *testing.T) {
	for _, s := range []bytesize.Size{0, 1, 1023, bytesize.KiB, 3 * bytesize.MiB, bytesize.GiB + 1, 5 * bytesize.TiB} {
		got, err := bytesize.Parse(s.String())
		if err != nil || got != s {
			t.Errorf("Parse(%q) = %d, %v; want %d", s.String(), got, err, s)
		}
	}
	if got := (64 * bytesize.MiB).String(); got != "64MiB" {
		t.Errorf("String = %q", got)
	}
}

func TestYAMLAndFlag(t *testing.T) {
	var v struct {
		A bytesize.Size `yaml:"a"`
		B bytesize.Size `yaml:"b"`
	}
	if err := yaml.Unmarshal([]byte("a: 1GiB\nb: 4096\n"), &v); err != nil || v.A != bytesize.GiB || v.B != 4096 {
		t.Fatalf("yaml: %+v %v", v, err)
	}
	err := yaml.Unmarshal([]byte("a: 1\nb: lots\n"), &v)
	if err == nil || !strings.Contains(err.Error(), "line 2") {
		t.Fatalf("bad size: %v, want an error naming line 2", err)
	}
	if err := yaml.Unmarshal([]byte("a: [1]\n"), &v); err == nil {
		t.Fatal("a list accepted as a size")
	}
	fs := flag.NewFlagSet("x", flag.ContinueOnError)
	var s bytesize.Size
	fs.Var(&s, "max", "")
	if err := fs.Parse([]string{"-max", "2MiB"}); err != nil || s != 2*bytesize.MiB {
		t.Fatalf("flag: %v %v", s, err)
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{"1", "1.5GiB", "10 MB", "-1", "x", "9e18"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		v, err := bytesize.Parse(s)
		if err != nil {
			return
		}
		if v < 0 {
			t.Fatalf("Parse(%q) = %d < 0", s, v)
		}
		back, err := bytesize.Parse(v.String())
		if err != nil || back != v {
			t.Fatalf("Parse(%q).String() = %q does not round-trip: %d, %v", s, v.String(), back, err)
		}
	})
}
