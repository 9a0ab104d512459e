package kafkabackend_test

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/tributary-iot/tributary/cloud/ingest"
	"github.com/tributary-iot/tributary/cloud/kafkabackend"
	"github.com/tributary-iot/tributary/internal/metrics/metricstest"
	"github.com/tributary-iot/tributary/protocol"
)

type oneToken struct{}

func (oneToken) Verify(tok string) (string, bool) { return "gw-1", tok == "secret" }

// TestIngestResendAfterOutage: the ingest on a real broker. A batch's
// write times out (outcome unknown: the producer keeps retrying it), the
// broker then goes down for longer than every timeout, and the gateway's
// resends cover other ranges than the first batch (re-cut), so their
// records differ from those still in the producer. The resends are
// answered 503 until the first write has resolved, then the readings it
// landed are acknowledged without a second copy: each reading is in the
// topic exactly once.
func TestIngestResendAfterOutage(t *testing.T) {
	k := startKafka(t)
	b := newBackend(t, k, func(c *kafkabackend.Config) { c.SettleTimeout = 300 * time.Millisecond })
	reg := prometheus.NewRegistry()
	in, err := ingest.New(context.Background(), ingest.Options{Backend: b, Tokens: oneToken{},
		Path: filepath.Join(t.TempDir(), "ingest.db"), Stream: "telemetry", PutTimeout: time.Second,
		ThrottleWait: 200 * time.Millisecond, Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	srv := httptest.NewServer(in)
	defer srv.Close()

	rs := make([]protocol.Reading, 40)
	for i := range rs {
		us := int64(1_700_000_000+i) * 1e6
		rs[i] = protocol.Reading{Device: fmt.Sprintf("dev-%d", i%4), Name: "temperature", Unit: "Cel", Kind: protocol.KindFloat,
			Value: float64(i), Time: us, Received: us + 1000}
	}
	post := func(first uint64, part []protocol.Reading) (int, string) {
		t.Helper()
		body, err := protocol.AppendBatch(nil, &protocol.Batch{Gateway: "gw-1", Epoch: 1, FirstSeq: first, Readings: part})
		if err != nil {
			t.Fatal(err)
		}
		req, _ := http.NewRequest(http.MethodPost, srv.URL+ingest.Path, bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer secret")
		req.Header.Set("Content-Type", protocol.ContentTypeBatch)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var sb bytes.Buffer
		sb.ReadFrom(resp.Body)
		return resp.StatusCode, sb.String()
	}

	// Seqs 1-20: the broker does not answer in time.
	k.Fault(produceKey, kerr.RequestTimedOut.Code, -1, "telemetry")
	if code, body := post(1, rs[:20]); code != http.StatusServiceUnavailable {
		t.Fatalf("write timing out: %d %s, want 503", code, body)
	}
	// A clean stop (kfake keeps its producer state only then; a SIGKILL
	// is TestBrokerKilledMidWrite's), down for longer than the timeouts.
	k.Stop()
	if code, body := post(11, rs[10:30]); code != http.StatusServiceUnavailable {
		t.Fatalf("re-cut resend during the outage: %d %s, want 503", code, body)
	}
	k.Start() // without the fault: the producer's retries land seqs 1-20
	var code int
	var body string
	for try := 0; try < 20; try++ {
		if code, body = post(11, rs[10:30]); code == http.StatusOK {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if code != http.StatusOK || !bytes.Contains([]byte(body), []byte(`"stored":10,"duplicates":10`)) {
		t.Fatalf("re-cut resend after the outage: %d %s, want 10 stored and 10 recognised", code, body)
	}
	if code, body := post(1, rs[:10]); code != http.StatusOK || !bytes.Contains([]byte(body), []byte(`"stored":0,"duplicates":10`)) {
		t.Fatalf("resend of 1-10: %d %s, want all 10 recognised", code, body)
	}
	if code, body := post(31, rs[30:]); code != http.StatusOK || !bytes.Contains([]byte(body), []byte(`"stored":10`)) {
		t.Fatalf("next batch: %d %s", code, body)
	}

	seen := map[protocol.Key]int{}
	err = b.Scan(context.Background(), "telemetry", time.Unix(0, 0), time.Now().Add(time.Hour), func(d []byte) error {
		rec, err := protocol.DecodeRecord(d)
		if err != nil {
			return err
		}
		for i := range rec.Readings {
			seen[rec.Readings[i].Key()]++
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for i := range rs {
		if n := seen[rs[i].Key()]; n != 1 {
			t.Errorf("reading %d is in the topic %d times, want once", i, n)
		}
	}
	if len(seen) != len(rs) {
		t.Errorf("%d distinct readings in the topic, want %d", len(seen), len(rs))
	}
	for name, want := range map[string]float64{"tributary_ingest_possible_duplicate_readings_total": 0,
		"tributary_ingest_recovered_readings_total": 20, "tributary_ingest_uncertain_readings": 0} {
		if got := metricstest.Value(t, reg, name); got != want {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}
}
