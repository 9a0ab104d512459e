package buildinfo_test

import (
	"runtime"
	"testing"

	"github.com/tributary-iot/tributary/internal/buildinfo"
)

func TestRead(t *testing.T) {
	i := buildinfo.Read("v9.9.9")
	if i.Version != "v9.9.9" || i.GoVersion != runtime.Version() {
		t.Errorf("%+v", i)
	}
}

func TestString(t *testing.T) {
	for _, tc := range []struct {
		in   buildinfo.Info
		want string
	}{
		{buildinfo.Info{Version: "dev", GoVersion: "go1.26.0"}, "dev (go1.26.0)"},
		{buildinfo.Info{Version: "v1", GoVersion: "go1.26.0", Revision: "abc"}, "v1 (go1.26.0, revision abc)"},
		{buildinfo.Info{Version: "v1", GoVersion: "go1.26.0", Revision: "abc", Modified: true}, "v1 (go1.26.0, revision abc, modified)"},
	} {
		if got := tc.in.String(); got != tc.want {
			t.Errorf("%q, want %q", got, tc.want)
		}
	}
}
