package uplink_test

// Tests over real sockets on 127.0.0.1: compression, TLS, and random
// failures.

import (
	"fmt"
	mrand "math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tributary-iot/tributary/edge/uplink"
	"github.com/tributary-iot/tributary/edge/uplink/uplinktest"
	"github.com/tributary-iot/tributary/internal/testenv"
	"github.com/tributary-iot/tributary/internal/tlsfiles"
	"github.com/tributary-iot/tributary/protocol"
)

func TestCompression(t *testing.T) {
	for _, enc := range []string{uplink.CompressionZstd, uplink.CompressionGzip, uplink.CompressionNone} {
		t.Run(enc, func(t *testing.T) {
			cloud := uplinktest.NewServer(t, uplinktest.Options{Tokens: tokens})
			src := uplink.NewMemSource(1)
			rs := readings("dev-a", 500, time.Now())
			src.Append(rs...)
			cfg := config(cloud.URL())
			cfg.Compression = enc
			r := start(t, src, cfg)
			waitCount(t, cloud, len(rs), 10*time.Second)
			r.stop()
			cloud.AssertExactlyOnce(t, uplinktest.Keys(rs))
			want := enc
			if enc == uplink.CompressionNone {
				want = ""
			}
			for _, b := range cloud.Batches() {
				if b.Encoding != want {
					t.Errorf("Content-Encoding %q, want %q", b.Encoding, want)
				}
				if (enc == uplink.CompressionNone) != (b.WireBytes == b.RawBytes) || b.WireBytes > b.RawBytes {
					t.Errorf("%s: %d bytes on the wire for %d encoded", enc, b.WireBytes, b.RawBytes)
				}
			}
			s := r.u.Stats()
			if s.BytesCompressed == 0 || s.BytesRaw == 0 || s.LastSuccess.IsZero() {
				t.Errorf("stats %s", fmtStats(s))
			}
		})
	}
}

// TLS with a CA file; mutual TLS with a client certificate; and a server
// the gateway cannot verify.
func TestTLS(t *testing.T) {
	pki := testenv.NewPKI(t)
	clientCAs := pki.Pool
	certFile, keyFile := pki.Client(t, gateway)
	for _, tc := range []struct {
		name   string
		opts   uplinktest.Options
		tls    func(caFile string) tlsfiles.Client
		refuse bool
	}{
		{name: "ca-file", tls: func(ca string) tlsfiles.Client { return tlsfiles.Client{CAFile: ca} }},
		{name: "server-name", tls: func(ca string) tlsfiles.Client { return tlsfiles.Client{CAFile: ca, ServerName: "example.com"} }},
		{name: "client-cert", opts: uplinktest.Options{ClientCAs: clientCAs},
			tls: func(ca string) tlsfiles.Client {
				return tlsfiles.Client{CAFile: ca, CertFile: certFile, KeyFile: keyFile}
			}},
		{name: "unknown-ca", refuse: true, tls: func(string) tlsfiles.Client { return tlsfiles.Client{} }},
		{name: "no-client-cert", refuse: true, opts: uplinktest.Options{ClientCAs: clientCAs},
			tls: func(ca string) tlsfiles.Client { return tlsfiles.Client{CAFile: ca} }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.opts.Tokens = tokens
			cloud := uplinktest.NewTLSServer(t, tc.opts)
			caFile := filepath.Join(t.TempDir(), "ca.pem")
			if err := os.WriteFile(caFile, cloud.CertPEM(), 0o600); err != nil {
				t.Fatal(err)
			}
			src := uplink.NewMemSource(1)
			rs := readings("dev-a", 150, time.Now())
			src.Append(rs...)
			cfg := config(cloud.URL())
			cfg.TLS = tc.tls(caFile)
			r := start(t, src, cfg)
			if tc.refuse {
				waitFor(t, 10*time.Second, "failed requests", func() bool { return r.u.Stats().Failures.Network >= 3 })
				r.stop()
				if n := cloud.Count(); n != 0 {
					t.Errorf("%d readings accepted", n)
				}
				if n := src.Stored(); n != len(rs) {
					t.Errorf("%d readings left, want all", n)
				}
				if s := r.u.Stats(); !strings.Contains(s.LastError, "certificate") {
					t.Errorf("last error %q does not say what is wrong", s.LastError)
				}
				return
			}
			waitCount(t, cloud, len(rs), 10*time.Second)
			r.stop()
			cloud.AssertExactlyOnce(t, uplinktest.Keys(rs))
		})
	}
}

// Every reading is delivered and acknowledged exactly once while the
// cloud fails at random (every status the contract names, lost
// acknowledgements, latency), the queue's Ack fails now and then, and
// readings keep arriving.
func TestExactlyOnceRandomFailures(t *testing.T) {
	for seed := range uint64(4) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			t.Parallel()
			rng := mrand.New(mrand.NewPCG(seed, 99))
			cloud := uplinktest.NewServer(t, uplinktest.Options{Tokens: tokens})
			src := uplink.NewMemSource(seed + 1)
			cfg := config(cloud.URL())
			cfg.MaxInFlight = 1 + rng.IntN(4)
			cfg.MaxReadings = 10 + rng.IntN(300)
			cfg.BacklogShare = 0.1 + 0.9*rng.Float64()
			cfg.MaxAge = time.Duration(1+rng.IntN(10)) * time.Millisecond
			cfg.Backoff = uplink.Backoff{Initial: time.Millisecond, Max: 10 * time.Millisecond}
			cfg.Compression = []string{"zstd", "gzip", "none"}[rng.IntN(3)]
			var all []protocol.Reading
			all = append(all, readings("backlog", 2000, time.Now().Add(-time.Hour))...)
			src.Append(all...)
			r := start(t, src, cfg)

			statuses := []int{400, 401, 403, 404, 408, 413, 415, 429, 500, 502, 503, 504}
			var mu sync.Mutex // rng
			chaosDone := make(chan struct{})
			go func() {
				defer close(chaosDone)
				for i := 0; i < 150; i++ {
					mu.Lock()
					switch k := rng.IntN(10); {
					case k < 6:
						cloud.FailNext(1+rng.IntN(3), statuses[rng.IntN(len(statuses))])
					case k < 8:
						cloud.LoseNext(1)
					case k < 9:
						src.FailAcks(1)
					default:
						cloud.SetLatency(time.Duration(rng.IntN(3)) * time.Millisecond)
					}
					d := time.Duration(rng.IntN(3000)) * time.Microsecond
					mu.Unlock()
					time.Sleep(d)
				}
				cloud.SetLatency(0)
			}()
			for i := 0; i < 100; i++ {
				mu.Lock()
				n := 1 + rng.IntN(60)
				d := time.Duration(rng.IntN(2000)) * time.Microsecond
				mu.Unlock()
				rs := readings(fmt.Sprintf("dev-%d", i%13), n, time.Now().Add(time.Duration(i)*time.Minute))
				src.Append(rs...)
				all = append(all, rs...)
				time.Sleep(d)
			}
			<-chaosDone
			waitFor(t, 30*time.Second, "every reading acked", func() bool { return src.Stored() == 0 })
			if err := r.stop(); err != nil {
				t.Fatal(err)
			}
			src.CheckAckedOnce(t)
			cloud.AssertExactlyOnce(t, uplinktest.Keys(all))
			if n := cloud.Overlaps(); n != 0 {
				t.Errorf("%d requests overlapped a range already in flight", n)
			}
			s := r.u.Stats()
			if s.ParkedRanges != 0 || s.InFlight != 0 {
				t.Errorf("stats %s", fmtStats(s))
			}
			t.Logf("in flight %d, batch %d, share %.2f, %s: %d requests, %d retries, %d splits, %d duplicates at the cloud, failures %+v",
				cfg.MaxInFlight, cfg.MaxReadings, cfg.BacklogShare, cfg.Compression, s.Requests, s.Retries, s.Splits, cloud.Duplicates(), s.Failures)
		})
	}
}

func TestPrometheus(t *testing.T) {
	cloud := uplinktest.NewServer(t, uplinktest.Options{Tokens: tokens})
	src := uplink.NewMemSource(1)
	src.Append(readings("dev-a", 250, time.Now())...)
	reg := prometheus.NewRegistry()
	cloud.FailNext(1, http.StatusServiceUnavailable)
	r := start(t, src, config(cloud.URL()), uplink.WithRegisterer(reg))
	waitCount(t, cloud, 250, 10*time.Second)
	r.stop()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			name := mf.GetName()
			for _, l := range m.GetLabel() {
				name += "/" + l.GetValue()
			}
			switch {
			case m.GetCounter() != nil:
				got[name] = m.GetCounter().GetValue()
			case m.GetGauge() != nil:
				got[name] = m.GetGauge().GetValue()
			}
		}
	}
	for name, want := range map[string]float64{
		"tributary_uplink_readings_acked_total":     250,
		"tributary_uplink_batches_acked_total":      3,
		"tributary_uplink_failures_total/throttled": 1,
		"tributary_uplink_retries_total":            1,
		"tributary_uplink_in_flight_requests":       0,
		"tributary_uplink_parked_readings":          0,
	} {
		if got[name] != want {
			t.Errorf("%s = %v, want %v", name, got[name], want)
		}
	}
	if got["tributary_uplink_last_success_timestamp_seconds"] == 0 || got["tributary_uplink_request_bytes_total/compressed"] == 0 {
		t.Errorf("metrics %v", got)
	}
	if _, err := uplink.New(src, config(cloud.URL()), uplink.WithRegisterer(reg)); err == nil {
		t.Error("registering twice did not fail")
	}
}
