package deploy_test

import (
	"errors"
	"io/fs"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/tributary-iot/tributary/deploy"
)

func TestParseUnit(t *testing.T) {
	const unit = `# comment
; another comment
[Unit]
Description = a service  

[Service]
ExecStart=/bin/true -config /etc/x.yaml
DeviceAllow=char-i2c rw
DeviceAllow=char-spi rw
CapabilityBoundingSet=
Environment=A=b
`
	u, err := deploy.ParseUnit(strings.NewReader(unit))
	if err != nil {
		t.Fatal(err)
	}
	want := deploy.Unit{
		"[Unit]Description":              {"a service"},
		"[Service]ExecStart":             {"/bin/true -config /etc/x.yaml"},
		"[Service]DeviceAllow":           {"char-i2c rw", "char-spi rw"},
		"[Service]CapabilityBoundingSet": {""},
		"[Service]Environment":           {"A=b"},
	}
	if !reflect.DeepEqual(u, want) {
		t.Errorf("ParseUnit = %q\nwant %q", u, want)
	}
	got := u.Mismatches(map[string]string{
		"[Unit]Description":              "a service",
		"[Service]CapabilityBoundingSet": "",
		"[Service]DeviceAllow":           "char-i2c rw", // set twice
		"[Service]User":                  "nobody",      // unset
		"[Service]ExecStart":             "/bin/false",
	})
	wantM := []string{
		`[Service]DeviceAllow = ["char-i2c rw" "char-spi rw"], want "char-i2c rw"`,
		`[Service]ExecStart = ["/bin/true -config /etc/x.yaml"], want "/bin/false"`,
		`[Service]User = [], want "nobody"`,
	}
	if !reflect.DeepEqual(got, wantM) {
		t.Errorf("Mismatches = %q\nwant %q", got, wantM)
	}
}

func TestParseUnitErrors(t *testing.T) {
	for name, tc := range map[string]struct{ in, msg string }{
		"key before a section": {"User=x\n", `line 1: "User=x" is not Key=Value in a section`},
		"no equals sign":       {"[Service]\nUser\n", `line 2: "User"`},
		"empty key":            {"[Service]\n=x\n", `line 2`},
		"continuation":         {"[Service]\nExecStart=/bin/true \\\n  -v\n", "line 2: continuation"},
		"line too long":        {"[Service]\nX=" + strings.Repeat("a", 70<<10) + "\n", "read unit"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := deploy.ParseUnit(strings.NewReader(tc.in))
			if err == nil || !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("ParseUnit error = %v, want one saying %q", err, tc.msg)
			}
		})
	}
	if _, err := deploy.ReadUnit(filepath.Join(t.TempDir(), "none.service")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("ReadUnit(missing) = %v, want fs.ErrNotExist", err)
	}
}
