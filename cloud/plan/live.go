package plan

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"strings"

	"github.com/tributary-iot/tributary/cloud/monitor"
)

// ErrNoTraffic: the running cloud saw no records in its rate window.
var ErrNoTraffic = errors.New("plan: the cloud reports no traffic in the last 10 s (is anything sending, and is the monitor enabled?)")

// maxAPIBody bounds what is read of one admin API answer.
const maxAPIBody = 8 << 20

// Live reads the traffic of a running tributary-cloud from its admin API
// (base: http://127.0.0.1:8081): readings/s and devices from
// /api/v1/overview, records/s and bytes/s (data plus partition key) summed
// over the shards of /api/v1/stream. The monitor's rates are the mean of
// the last 10 complete seconds by stream arrival time. token, if set, is
// sent as a bearer token (admin.tokens). Per-record rounding (PUT payload
// units, on-demand 1 KB) is applied to the mean record size, so it is
// exact only when records are alike (one record per device per batch, as
// the ingest writes them, mostly is).
func Live(ctx context.Context, client *http.Client, base, token string) (Traffic, error) {
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return Traffic{}, fmt.Errorf("plan: -from %q: want the admin URL of a running cloud, e.g. http://127.0.0.1:8081", base)
	}
	base = strings.TrimRight(base, "/")
	var ov monitor.Overview
	if err := getJSON(ctx, client, base+"/api/v1/overview", token, &ov); err != nil {
		return Traffic{}, err
	}
	var st monitor.Stream
	if err := getJSON(ctx, client, base+"/api/v1/stream", token, &st); err != nil {
		return Traffic{}, err
	}
	t, err := FromMonitor(ov, st)
	if err != nil {
		return Traffic{}, err
	}
	t.Source = fmt.Sprintf("live: %s, %d shards, last 10 s", base, len(st.Shards))
	return t, nil
}

// FromMonitor is the traffic the monitor's views show: readings/s and
// devices from the overview, records/s and bytes/s summed over the
// stream's shards. The dashboard can price the current traffic with it
// and Compute, without a round trip through the API.
func FromMonitor(ov monitor.Overview, st monitor.Stream) (Traffic, error) {
	t := Traffic{Devices: ov.Devices.Online, ReadingsPerSec: ov.IngestRate, Source: "monitor, last 10 s"}
	if t.Devices == 0 {
		t.Devices = ov.Devices.Total
	}
	for _, s := range st.Shards {
		t.RecordsPerSec += s.RecordsPerSec
		t.BytesPerSec += s.BytesPerSec
	}
	if t.RecordsPerSec <= 0 || t.BytesPerSec <= 0 {
		return Traffic{}, ErrNoTraffic
	}
	// The billing units round the mean record (key included: the API
	// does not tell them apart, and keys are short).
	mean := int(math.Round(t.BytesPerSec / t.RecordsPerSec))
	units, billed := RecordUnits(mean)
	t.PutUnitsPerSec = t.RecordsPerSec * float64(units)
	t.BilledInBytesPerSec = t.RecordsPerSec * float64(billed)
	t.derive()
	return t, nil
}

// Scale returns t for a fleet of devices devices sending what the
// measured devices send each.
func (t Traffic) Scale(devices int) Traffic {
	if t.Devices <= 0 || devices == t.Devices {
		return t
	}
	k := float64(devices) / float64(t.Devices)
	t.ReadingsPerSec *= k
	t.RecordsPerSec *= k
	t.BytesPerSec *= k
	t.PutUnitsPerSec *= k
	t.BilledInBytesPerSec *= k
	t.Source += fmt.Sprintf(", scaled from %d to %d devices", t.Devices, devices)
	t.Devices = devices
	return t
}

func getJSON(ctx context.Context, client *http.Client, u, token string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return fmt.Errorf("plan: %w", err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("plan: reading the cloud's traffic: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxAPIBody))
	if err != nil {
		return fmt.Errorf("plan: reading %s: %w", u, err)
	}
	switch {
	case resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden:
		return fmt.Errorf("plan: %s: HTTP %d: pass an admin token (-token or $TRIBUTARY_ADMIN_TOKEN)", u, resp.StatusCode)
	case resp.StatusCode != http.StatusOK:
		return fmt.Errorf("plan: %s: HTTP %d: %s", u, resp.StatusCode, strings.TrimSpace(string(body[:min(len(body), 200)])))
	}
	if err := json.Unmarshal(body, v); err != nil {
		return fmt.Errorf("plan: %s: not the monitor API's JSON: %w", u, err)
	}
	return nil
}
