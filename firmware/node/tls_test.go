package node_test

import (
	"crypto/tls"
	"log/slog"
	"strings"
	"testing"
	"time"

	mochi "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/listeners"

	"github.com/tributary-iot/tributary/firmware/node"
	"github.com/tributary-iot/tributary/firmware/sensor"
	"github.com/tributary-iot/tributary/internal/testenv"
	"github.com/tributary-iot/tributary/internal/tlsfiles"
)

// startTLSBroker runs mochi with a TLS listener whose certificate (for
// 127.0.0.1 and broker.test) is signed by the returned CA file.
func startTLSBroker(t *testing.T) (addr, caFile string) {
	t.Helper()
	pki := testenv.NewPKI(t)
	cert, err := tls.LoadX509KeyPair(pki.Server(t, "test broker", "broker.test"))
	if err != nil {
		t.Fatal(err)
	}
	srv := mochi.New(&mochi.Options{Logger: slog.New(slog.DiscardHandler)})
	if err := srv.AddHook(new(allowAll), nil); err != nil {
		t.Fatal(err)
	}
	l := listeners.NewTCP(listeners.Config{Type: listeners.TypeTCP, ID: "tls", Address: "127.0.0.1:0",
		TLSConfig: &tls.Config{Certificates: []tls.Certificate{cert}}})
	if err := srv.AddListener(l); err != nil {
		t.Fatal(err)
	}
	if err := srv.Serve(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	return l.Address(), pki.CAFile
}

// TestTLS: an ssl:// broker verified with ca_file, through paho's own
// dialer and through the Dial hook; a wrong server name is refused.
func TestTLS(t *testing.T) {
	addr, ca := startTLSBroker(t)
	for _, tc := range []struct {
		name       string
		dial       bool
		serverName string
		ok         bool
	}{
		{"paho dialer", false, "", true},
		{"dial hook", true, "", true},
		{"dial hook, server name", true, "broker.test", true},
		{"wrong server name", true, "other.test", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig(addr)
			cfg.Broker = "ssl://" + addr
			cfg.TLS = tlsfiles.Client{CAFile: ca, ServerName: tc.serverName}
			opts := node.Options{Sensors: []sensor.Sensor{&seqSensor{}}}
			if tc.dial {
				opts.Dial = (&netSwitch{}).Dial
			}
			logs := &testenv.Buffer{}
			opts.Logger = slog.New(slog.NewTextHandler(logs, nil))
			n, stop := start(t, cfg, opts)
			if tc.ok {
				waitStats(t, n, "published over TLS", func(s node.Stats) bool { return s.PacksPublished >= 2 })
				return
			}
			time.Sleep(200 * time.Millisecond)
			stop()
			if st := n.Stats(); st.Connected || st.PacksPublished != 0 {
				t.Errorf("stats %+v: connected despite a wrong server name", st)
			}
			if !strings.Contains(logs.String(), "certificate is valid for") {
				t.Errorf("logs do not say why TLS failed:\n%s", logs.String())
			}
		})
	}
}
