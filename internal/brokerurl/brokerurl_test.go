package brokerurl_test

import (
	"strings"
	"testing"

	"github.com/tributary-iot/tributary/internal/brokerurl"
)

func TestParse(t *testing.T) {
	for in, want := range map[string]string{
		"tcp://gw.local:1883":  "tcp://gw.local:1883",
		"tcp://gw.local":       "tcp://gw.local:1883",
		"mqtt://10.0.0.1":      "tcp://10.0.0.1:1883",
		"MQTT://h:1":           "tcp://h:1",
		"ssl://broker":         "ssl://broker:8883",
		"mqtts://broker:9000":  "ssl://broker:9000",
		"tls://broker/":        "ssl://broker:8883",
		"tcp://[::1]":          "tcp://[::1]:1883",
		"tcp://127.0.0.1:1883": "tcp://127.0.0.1:1883",
	} {
		u, err := brokerurl.Parse(in)
		if err != nil || u.String() != want {
			t.Errorf("Parse(%q) = %v, %v; want %s", in, u, err, want)
		}
	}
	for in, want := range map[string]string{
		"gw.local:1883":     "scheme",
		"gw.local":          "no scheme",
		"http://gw":         `scheme "http" is not supported`,
		"tcp://":            "no host",
		"tcp://user:pw@gw":  "credentials",
		"tcp://gw/topic":    "path or query",
		"tcp://gw?x=1":      "path or query",
		"ws://gw":           "not supported",
		"tcp://gw:1883\x7f": "not a URL",
		"":                  "broker is missing",
		"tCp://::":          "not a name or an IP address",
		"tcp://h:0":         "port",
		"tcp://h:99999":     "port",
	} {
		_, err := brokerurl.Parse(in)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Parse(%q) = %v, want an error saying %q", in, err, want)
		}
	}
	u, _ := brokerurl.Parse("mqtts://b")
	if !brokerurl.IsTLS(u) {
		t.Error("mqtts is TLS")
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{"tcp://h:1883", "ssl://h", "mqtt://[::1]", "x", "tcp://u@h"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		u, err := brokerurl.Parse(s)
		if err != nil {
			return
		}
		if u.Scheme != brokerurl.TCP && u.Scheme != brokerurl.SSL || u.Port() == "" || u.Hostname() == "" {
			t.Fatalf("Parse(%q) = %q: not normalised", s, u)
		}
		again, err := brokerurl.Parse(u.String())
		if err != nil || again.String() != u.String() {
			t.Fatalf("Parse(%q) = %q, which parses again as %v, %v", s, u, again, err)
		}
	})
}
