package monitor_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/tributary-iot/tributary/cloud/anomaly"
	"github.com/tributary-iot/tributary/cloud/monitor"
)

// fleet returns a monitor holding two gateways, three devices and two
// alerts, and an HTTP server for its API.
func fleet(t *testing.T, opts monitor.Options) (*monitor.Monitor, *httptest.Server) {
	t.Helper()
	m := fleetMonitor(t, opts)
	srv := httptest.NewServer(m.APIHandler())
	t.Cleanup(srv.Close)
	return m, srv
}

// fleetMonitor returns a monitor holding three devices of two gateways and
// two alerts.
func fleetMonitor(t *testing.T, opts monitor.Options) *monitor.Monitor {
	t.Helper()
	m := monitor.New(opts)
	now := us()
	handle(t, m, batch("shardId-000000000000",
		rec("gw1", "dev-a", "temp", 20, now-2e6, now-1e6, now),
		rec("gw1", "dev-b", "temp", 21, now),
		rec("gw2", "other", "humidity/rel", 50, now)))
	t0 := time.Now().UTC().Truncate(time.Second)
	m.AddAlert(anomaly.Alert{Device: "dev-a", Metric: "temp", Time: t0.Add(-time.Hour), Score: 0.9, Kind: anomaly.KindDrift, Value: 20})
	m.AddAlert(anomaly.Alert{Device: "dev-b", Metric: "temp", Time: t0, Score: 7.5, Kind: anomaly.KindSpike, Value: 99})
	return m
}

func get(t *testing.T, srv *httptest.Server, path string, wantCode int, into any) {
	t.Helper()
	resp, err := http.Get(srv.URL + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != wantCode {
		t.Fatalf("GET %s: %d %s, want %d", path, resp.StatusCode, body, wantCode)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("GET %s: Content-Type %q", path, ct)
	}
	if into != nil {
		if err := json.Unmarshal(body, into); err != nil {
			t.Fatalf("GET %s: %v in %s", path, err, body)
		}
	}
}

func TestAPI(t *testing.T) {
	_, srv := fleet(t, monitor.Options{})

	var ov monitor.Overview
	get(t, srv, "/api/v1/overview", 200, &ov)
	if ov.Devices != (monitor.Count{Total: 3, Online: 3}) || ov.Gateways.Total != 2 || ov.AnomaliesLastHour != 2 || ov.Readings != 5 {
		t.Errorf("overview %+v", ov)
	}

	var gws struct{ Gateways []monitor.Gateway }
	get(t, srv, "/api/v1/gateways", 200, &gws)
	if len(gws.Gateways) != 2 || gws.Gateways[0].ID != "gw1" || gws.Gateways[0].Devices != 2 {
		t.Errorf("gateways %+v", gws)
	}

	var page monitor.DevicePage
	get(t, srv, "/api/v1/devices?limit=1&offset=1", 200, &page)
	if page.Total != 3 || len(page.Devices) != 1 || page.Devices[0].ID != "dev-b" {
		t.Errorf("page %+v, want dev-b of 3", page)
	}
	get(t, srv, "/api/v1/devices?gateway=gw1&q=a", 200, &page)
	if page.Total != 1 || page.Devices[0].ID != "dev-a" || page.Devices[0].Anomalies != 1 {
		t.Errorf("filtered %+v, want dev-a with 1 anomaly", page)
	}
	get(t, srv, "/api/v1/devices?status=sleeping", 400, nil)
	get(t, srv, "/api/v1/devices?limit=0", 400, nil)

	var dev monitor.Device
	get(t, srv, "/api/v1/devices/dev-a", 200, &dev)
	if len(dev.Series) != 1 || dev.Series[0].Name != "temp" || dev.Series[0].Count != 3 || dev.Series[0].Unit != "Cel" {
		t.Errorf("device %+v", dev)
	}
	get(t, srv, "/api/v1/devices/nope", 404, nil)

	var sd monitor.SeriesData
	get(t, srv, "/api/v1/devices/dev-a/series/temp?window=1h", 200, &sd)
	if sd.Resolution != "10s" || len(sd.T) == 0 || sd.Unit != "Cel" {
		t.Errorf("series %+v", sd)
	}
	get(t, srv, "/api/v1/devices/other/series/humidity/rel", 200, &sd) // a metric with a slash
	if sd.Resolution != "raw" || len(sd.V) != 1 || sd.V[0] != 50 {
		t.Errorf("series %+v", sd)
	}
	get(t, srv, "/api/v1/devices/dev-a/series/temp?window=2h", 400, nil)
	get(t, srv, "/api/v1/devices/dev-a/series/temp?end=yesterday", 400, nil)
	get(t, srv, "/api/v1/devices/dev-a/series/pressure", 404, nil)

	var al struct{ Alerts []monitor.AlertEntry }
	get(t, srv, "/api/v1/alerts", 200, &al)
	if len(al.Alerts) != 2 || al.Alerts[0].Kind != anomaly.KindSpike || al.Alerts[0].ID != 2 {
		t.Errorf("alerts %+v, want the spike first", al)
	}
	since := url.QueryEscape(time.Now().Add(-time.Minute).Format(time.RFC3339))
	get(t, srv, "/api/v1/alerts?since="+since, 200, &al)
	if len(al.Alerts) != 1 || al.Alerts[0].Device != "dev-b" {
		t.Errorf("alerts since a minute ago %+v", al)
	}
	get(t, srv, fmt.Sprintf("/api/v1/alerts?limit=1&since=%d", time.Now().Add(-2*time.Hour).UnixMilli()), 200, &al)
	if len(al.Alerts) != 1 || al.Alerts[0].ID != 2 {
		t.Errorf("alerts limit 1 %+v", al)
	}
	get(t, srv, "/api/v1/alerts?limit=100000", 400, nil)

	get(t, srv, "/api/v1/nothing", 404, nil)
	resp, err := http.Post(srv.URL+"/api/v1/overview", "application/json", strings.NewReader("{}"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST: %d", resp.StatusCode)
	}
}

func TestAPIAlertJSON(t *testing.T) {
	_, srv := fleet(t, monitor.Options{})
	resp, err := http.Get(srv.URL + "/api/v1/alerts?limit=1")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var raw struct{ Alerts []map[string]any }
	json.NewDecoder(resp.Body).Decode(&raw)
	a := raw.Alerts[0]
	for _, k := range []string{"id", "device", "metric", "time", "score", "kind", "value", "received"} {
		if _, ok := a[k]; !ok {
			t.Errorf("alert JSON lacks %q: %v", k, a)
		}
	}
	if a["kind"] != "spike" {
		t.Errorf("kind %v, want \"spike\"", a["kind"])
	}
}

func TestAPIStream(t *testing.T) {
	shards := []monitor.Shard{
		{ID: "shardId-000000000000", StartingHashKey: "0", EndingHashKey: "340282366920938463463374607431768211455",
			StartingSequenceNumber: "1", EndingSequenceNumber: "9", Open: false},
		{ID: "shardId-000000000001", Parent: "shardId-000000000000", StartingHashKey: "0",
			EndingHashKey: "170141183460469231731687303715884105727", Open: true, LimitRecordsPerSec: 500},
	}
	_, srv := fleet(t, monitor.Options{Shards: func(context.Context) ([]monitor.Shard, error) { return shards, nil }})
	var st monitor.Stream
	get(t, srv, "/api/v1/stream", 200, &st)
	if len(st.Shards) != 2 || st.Error != "" {
		t.Fatalf("stream %+v", st)
	}
	s0, s1 := st.Shards[0], st.Shards[1]
	if s0.Open || !s0.Listed || s0.LagMs == nil || s0.KeyspaceFraction != 1 || s0.LimitRecordsPerSec != 1000 {
		t.Errorf("shard 0 %+v", s0)
	}
	if !s1.Open || s1.Parent != s0.ID || s1.LagMs != nil || s1.KeyspaceFraction != 0.5 || s1.LimitRecordsPerSec != 500 {
		t.Errorf("shard 1 %+v", s1)
	}

	_, srv = fleet(t, monitor.Options{Shards: func(context.Context) ([]monitor.Shard, error) {
		return nil, errors.New("store closed")
	}})
	get(t, srv, "/api/v1/stream", 200, &st)
	if st.Error != "store closed" || len(st.Shards) != 1 || st.Shards[0].Listed {
		t.Errorf("stream with a failing lister %+v, want the observed shard and the error", st)
	}
}

// sse reads events from a live /api/v1/events response.
type sse struct {
	t  *testing.T
	sc *bufio.Scanner
}

func (s *sse) next() (event, data string) {
	s.t.Helper()
	for s.sc.Scan() {
		line := s.sc.Text()
		switch {
		case line == "" && event != "":
			return event, data
		case strings.HasPrefix(line, "event: "):
			event = line[7:]
		case strings.HasPrefix(line, "data: "):
			data = line[6:]
		}
	}
	s.t.Fatalf("event stream ended: %v", s.sc.Err())
	return
}

// until returns the data of the next event named ev, skipping others.
func (s *sse) until(ev string) string {
	s.t.Helper()
	for {
		if e, d := s.next(); e == ev {
			return d
		}
	}
}

func TestEventsHTTP(t *testing.T) {
	m := fleetMonitor(t, monitor.Options{OverviewEvery: 10 * time.Millisecond})
	h := m.APIHandler()
	served := make(chan struct{}, 1) // the request's handler returned
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() { served <- struct{}{} }()
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", srv.URL+"/api/v1/events?device=dev-a&metric=temp", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("Content-Type %q", ct)
	}
	s := &sse{t: t, sc: bufio.NewScanner(resp.Body)}
	var ov monitor.Overview
	if err := json.Unmarshal([]byte(s.until("overview")), &ov); err != nil || ov.Devices.Total != 3 {
		t.Fatalf("first overview %+v, %v", ov, err)
	}

	now := us()
	handle(t, m, batch("s0", rec("gw1", "dev-b", "temp", 1, now))) // not subscribed
	handle(t, m, batch("s0", rec("gw1", "dev-a", "temp", 30, now+1e6, now+2e6), rec("gw1", "dev-a", "other", 1, now+1e6)))
	var pe monitor.PointsEvent
	if err := json.Unmarshal([]byte(s.until("points")), &pe); err != nil {
		t.Fatal(err)
	}
	if pe.Device != "dev-a" || pe.Metric != "temp" || len(pe.T) != 2 || pe.V[1] != 30 {
		t.Errorf("points %+v, want dev-a/temp's two new points", pe)
	}

	m.AddAlert(anomaly.Alert{Device: "dev-c", Metric: "x", Kind: anomaly.KindStuck, Time: time.Now()})
	var a monitor.AlertEntry
	if err := json.Unmarshal([]byte(s.until("alert")), &a); err != nil || a.Device != "dev-c" || a.Kind != anomaly.KindStuck {
		t.Errorf("alert %+v, %v", a, err)
	}
	// The overview changed (a reading, an alert): a new one is pushed.
	if err := json.Unmarshal([]byte(s.until("overview")), &ov); err != nil || ov.Alerts < 3 {
		t.Errorf("overview %+v, %v", ov, err)
	}
	cancel()
	<-served // the handler returns when the request's context ends
	if n := m.Stats().Clients; n != 0 {
		t.Errorf("%d clients registered after the only one left", n)
	}
}

func TestEventsBadQueryAndLimit(t *testing.T) {
	_, srv := fleet(t, monitor.Options{MaxClients: 1})
	get(t, srv, "/api/v1/events?device=bad%20id", 400, nil)
	get(t, srv, "/api/v1/events?metric=temp", 400, nil)

	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", srv.URL+"/api/v1/events", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	get(t, srv, "/api/v1/events", 503, nil)
}

func TestEventsHeartbeatAndCancel(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := monitor.New(monitor.Options{Heartbeat: 15 * time.Second, OverviewEvery: time.Hour})
		ctx, cancel := context.WithCancel(t.Context())
		w := newSSERecorder()
		done := make(chan struct{})
		go func() {
			defer close(done)
			m.APIHandler().ServeHTTP(w, httptest.NewRequestWithContext(ctx, "GET", "/api/v1/events", nil))
		}()
		synctest.Wait()
		if ev := events(w.String()); len(ev) != 1 || ev[0][0] != "overview" {
			t.Fatalf("events at start %q", ev)
		}
		time.Sleep(14 * time.Second)
		synctest.Wait()
		if strings.Contains(w.String(), "heartbeat") {
			t.Fatal("heartbeat before 15 s")
		}
		time.Sleep(1 * time.Second)
		synctest.Wait()
		if n := strings.Count(w.String(), ": heartbeat\n\n"); n != 1 {
			t.Fatalf("%d heartbeats after 15 s, want 1", n)
		}
		cancel()
		<-done // the handler returns when the request's context ends
		if m.Stats().Clients != 0 {
			t.Error("client still registered")
		}
	})
}

func TestEventsSlowClientDropped(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := monitor.New(monitor.Options{ClientBuffer: 4})
		w := newSSERecorder()
		w.block = make(chan struct{}) // the client stops reading: every write blocks
		done := make(chan struct{})
		go func() {
			defer close(done)
			m.APIHandler().ServeHTTP(w, httptest.NewRequest("GET", "/api/v1/events?device=d1", nil))
		}()
		synctest.Wait()
		for i := range 10 {
			handle(t, m, batch("s0", rec("gw1", "d1", "a", 1, int64(i+1)*1e6)))
		}
		m.AddAlert(anomaly.Alert{Device: "d1"}) // to a dropped client: nothing
		if s := m.Stats(); s.Dropped.Clients != 1 || s.Clients != 0 {
			t.Errorf("stats %+v, want the slow client dropped", s)
		}
		close(w.block) // the stuck write returns; the handler sees it was dropped
		<-done
	})
}

func FuzzAPIQuery(f *testing.F) {
	for _, s := range []string{
		"/api/v1/devices?limit=10&offset=5&status=online&agents=true&q=a",
		"/api/v1/devices/dev-a/series/temp?window=24h&end=2026-01-01T00:00:00Z",
		"/api/v1/devices/dev-a/series/temp?end=1767225600000",
		"/api/v1/alerts?since=-1&limit=1&device=dev-b",
		"/api/v1/devices?offset=99999999999999999999",
		"/api/v1/alerts?since=9999-99-99T99:99:99Z",
	} {
		f.Add(s)
	}
	m := monitor.New(monitor.Options{})
	now := us()
	if err := m.HandleBatch(context.Background(), batch("s0", rec("gw1", "dev-a", "temp", 1, now-1e6, now))); err != nil {
		f.Fatal(err)
	}
	m.AddAlert(anomaly.Alert{Device: "dev-a", Metric: "temp", Time: time.Now()})
	h := m.APIHandler()
	f.Fuzz(func(t *testing.T, target string) {
		u, err := url.Parse(target)
		if err != nil || !strings.HasPrefix(u.Path, "/api/v1/") || strings.HasPrefix(u.Path, "/api/v1/events") {
			return
		}
		w := httptest.NewRecorder()
		req := httptest.NewRequest("GET", "/", nil)
		req.URL = u
		h.ServeHTTP(w, req)
		switch w.Code {
		case 200, 400, 404:
		case 301, 307, 308: // ServeMux cleaning the path ("//", "/./")
			return
		default:
			t.Fatalf("%s: status %d %s", target, w.Code, w.Body)
		}
		if !json.Valid(w.Body.Bytes()) {
			t.Fatalf("%s: not JSON: %s", target, w.Body)
		}
	})
}
