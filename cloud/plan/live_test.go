package plan_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/tributary-iot/tributary/cloud/plan"
)

// Live against a stand-in admin API: the sums, the token, the errors.
func TestLive(t *testing.T) {
	var auth string
	stream := `{"shards":[{"id":"a","records_per_sec":40,"bytes_per_sec":6400},{"id":"b","records_per_sec":60,"bytes_per_sec":9600}]}`
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		auth = r.Header.Get("Authorization")
		switch r.URL.Path {
		case "/api/v1/overview":
			w.Write([]byte(`{"devices":{"total":120,"online":100},"ingest_rate":300}`))
		case "/api/v1/stream":
			w.Write([]byte(stream))
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	tr, err := plan.Live(context.Background(), srv.Client(), srv.URL+"/", "s3cret")
	if err != nil {
		t.Fatal(err)
	}
	if tr.Devices != 100 || tr.ReadingsPerSec != 300 || tr.RecordsPerSec != 100 || tr.BytesPerSec != 16000 ||
		tr.BytesPerRecord != 160 || tr.PutUnitsPerSec != 100 || tr.BilledInBytesPerSec != 100*1024 || auth != "Bearer s3cret" {
		t.Errorf("%+v (auth %q)", tr, auth)
	}
	big := tr.Scale(10_000)
	if big.Devices != 10_000 || big.RecordsPerSec != 10_000 || big.BytesPerSec != 1_600_000 || big.BytesPerRecord != 160 || big.ReadingsPerSec != 30_000 {
		t.Errorf("scaled: %+v", big)
	}

	stream = `{"shards":[]}`
	if _, err := plan.Live(context.Background(), srv.Client(), srv.URL, ""); !errors.Is(err, plan.ErrNoTraffic) {
		t.Errorf("no traffic: %v", err)
	}
	stream = `not json`
	if _, err := plan.Live(context.Background(), srv.Client(), srv.URL, ""); err == nil || !strings.Contains(err.Error(), "not the monitor API") {
		t.Errorf("bad JSON: %v", err)
	}
	denied := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, `{"error":"unauthorized"}`, http.StatusUnauthorized)
	}))
	defer denied.Close()
	if _, err := plan.Live(context.Background(), denied.Client(), denied.URL, ""); err == nil || !strings.Contains(err.Error(), "TRIBUTARY_ADMIN_TOKEN") {
		t.Errorf("401: %v", err)
	}
}
