package monitor_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tributary-iot/tributary/cloud/anomaly"
	"github.com/tributary-iot/tributary/cloud/monitor"
)

func openNotes(t *testing.T, path string) *monitor.Notes {
	t.Helper()
	n, err := monitor.OpenNotes(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	return n
}

func do(t *testing.T, h http.Handler, method, path, body string) (int, string) {
	t.Helper()
	r := httptest.NewRequest(method, path, strings.NewReader(body))
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w.Code, w.Body.String()
}

type incidentsDoc struct {
	Incidents []monitor.Incident `json:"incidents"`
}

func incidents(t *testing.T, h http.Handler, query string) []monitor.Incident {
	t.Helper()
	code, body := do(t, h, "GET", "/api/v1/incidents"+query, "")
	if code != 200 {
		t.Fatalf("GET incidents%s: %d %s", query, code, body)
	}
	var d incidentsDoc
	if err := json.Unmarshal([]byte(body), &d); err != nil {
		t.Fatal(err)
	}
	return d.Incidents
}

func TestIncidentsGroupedAckedAndSilenced(t *testing.T) {
	path := filepath.Join(t.TempDir(), "dashboard.db")
	notes := openNotes(t, path)
	m := monitor.New(monitor.Options{Notes: notes})
	h := m.APIHandler()
	t0 := time.Now().UTC().Truncate(time.Second)
	rng := anomaly.Range{Low: 18, High: 22}
	m.AddAlert(anomaly.Alert{ID: "inc1", Event: anomaly.EventOpen, Device: "dev-a", Metric: "temp", Kind: anomaly.KindSpike,
		Time: t0, Start: t0, Peak: 0.9, Score: 0.9, Expected: rng})
	m.AddAlert(anomaly.Alert{ID: "inc2", Event: anomaly.EventOpen, Device: "dev-b", Metric: "hum", Kind: anomaly.KindLevelShift,
		Time: t0, Start: t0, Peak: 0.8, Score: 0.8})
	m.AddAlert(anomaly.Alert{ID: "inc1", Event: anomaly.EventUpdate, Device: "dev-a", Metric: "temp", Kind: anomaly.KindSpike,
		Time: t0.Add(time.Second), Start: t0, Peak: 0.99, Score: 0.99, Expected: rng})
	m.AddAlert(anomaly.Alert{ID: "inc1", Event: anomaly.EventResolve, Device: "dev-a", Metric: "temp", Kind: anomaly.KindSpike,
		Time: t0.Add(5 * time.Second), Start: t0, End: t0.Add(5 * time.Second), Peak: 0.99, Expected: rng, Reason: anomaly.ReasonNormal})

	all := incidents(t, h, "")
	if len(all) != 2 || all[0].ID != "inc1" || all[1].ID != "inc2" {
		t.Fatalf("incidents: want inc1 (newest event) then inc2, got %+v", all)
	}
	in := all[0]
	if in.State != "resolved" || in.Events != 3 || in.Peak != 0.99 || !in.End.Equal(t0.Add(5*time.Second)) ||
		in.Expected != rng || in.Latest.Event != anomaly.EventResolve || in.Acknowledged != nil || in.Reason != anomaly.ReasonNormal {
		t.Errorf("inc1: %+v", in)
	}
	if open := incidents(t, h, "?state=open"); len(open) != 1 || open[0].ID != "inc2" || open[0].State != "open" || !open[0].End.IsZero() {
		t.Errorf("state=open: %+v", open)
	}
	if res := incidents(t, h, "?state=resolved&device=dev-a&metric=temp"); len(res) != 1 || res[0].ID != "inc1" {
		t.Errorf("state=resolved&device=dev-a: %+v", res)
	}
	m.AddAlert(anomaly.Alert{Device: "dev-c", Metric: "x", Time: t0}) // no incident id: not an incident
	if got := incidents(t, h, "?device=dev-c"); len(got) != 0 {
		t.Errorf("device=dev-c: %+v", got)
	}
	if code, body := do(t, h, "GET", "/api/v1/incidents?state=closed", ""); code != 400 || !strings.Contains(body, "open or resolved") {
		t.Errorf("state=closed: %d %s", code, body)
	}

	// Acknowledge.
	if code, body := do(t, h, "POST", "/api/v1/incidents/nope/ack", ""); code != 404 {
		t.Errorf("ack unknown: %d %s", code, body)
	}
	code, body := do(t, h, "POST", "/api/v1/incidents/inc2/ack", "")
	var acked monitor.Incident
	if code != 200 || json.Unmarshal([]byte(body), &acked) != nil || acked.Acknowledged == nil || acked.ID != "inc2" {
		t.Fatalf("ack inc2: %d %s", code, body)
	}

	// Silence dev-b: its events are marked, AddAlert says so.
	if code, body := do(t, h, "POST", "/api/v1/silences", `{"device":"dev-b"}`); code != 400 || !strings.Contains(body, "duration") {
		t.Errorf("silence without duration: %d %s", code, body)
	}
	if code, body := do(t, h, "POST", "/api/v1/silences", `{"metric":"hum","duration":"1h"}`); code != 400 || !strings.Contains(body, "device") {
		t.Errorf("silence without device: %d %s", code, body)
	}
	if code, body := do(t, h, "POST", "/api/v1/silences", `{"device":"dev-b","duration":"1000h"}`); code != 400 {
		t.Errorf("silence for 1000h: %d %s", code, body)
	}
	code, body = do(t, h, "POST", "/api/v1/silences", `{"device":"dev-b","metric":"hum","duration":"1h"}`)
	var sil monitor.Silence
	if code != 201 || json.Unmarshal([]byte(body), &sil) != nil || sil.ID == "" || sil.Until.Sub(time.Now()) < 59*time.Minute {
		t.Fatalf("silence: %d %s", code, body)
	}
	if !m.AddAlert(anomaly.Alert{ID: "inc2", Event: anomaly.EventUpdate, Device: "dev-b", Metric: "hum", Time: t0.Add(2 * time.Second), Start: t0}) {
		t.Error("AddAlert of a silenced metric: want silenced")
	}
	if m.AddAlert(anomaly.Alert{ID: "inc3", Event: anomaly.EventOpen, Device: "dev-b", Metric: "temp", Time: t0.Add(2 * time.Second), Start: t0}) {
		t.Error("AddAlert of another metric: want not silenced")
	}
	if a := m.Alerts(monitor.AlertQuery{Device: "dev-b", Metric: "hum", Limit: 1}); len(a) != 1 || !a[0].Silenced {
		t.Errorf("silenced alert: %+v", a)
	}
	if got := incidents(t, h, "?device=dev-b&metric=hum"); len(got) != 1 || !got[0].Silenced || got[0].Acknowledged == nil {
		t.Errorf("inc2 after silence: %+v", got)
	}

	// Both survive a restart.
	notes.Close()
	notes2 := openNotes(t, path)
	m2 := monitor.New(monitor.Options{Notes: notes2})
	if s := notes2.Silences(); len(s) != 1 || s[0].ID != sil.ID || s[0].Device != "dev-b" || s[0].Metric != "hum" {
		t.Errorf("silences after reopen: %+v", s)
	}
	if _, ok := notes2.Acked("inc2"); !ok {
		t.Error("ack of inc2 lost on reopen")
	}
	if !m2.AddAlert(anomaly.Alert{ID: "inc4", Event: anomaly.EventOpen, Device: "dev-b", Metric: "hum", Time: t0, Start: t0}) {
		t.Error("silence lost on reopen")
	}
	h2 := m2.APIHandler()
	if code, body := do(t, h2, "DELETE", "/api/v1/silences/"+sil.ID, ""); code != 204 {
		t.Errorf("delete silence: %d %s", code, body)
	}
	if code, _ := do(t, h2, "DELETE", "/api/v1/silences/"+sil.ID, ""); code != 404 {
		t.Errorf("delete again: %d, want 404", code)
	}
	if code, body := do(t, h2, "GET", "/api/v1/silences", ""); code != 200 || !strings.Contains(body, `"silences":[]`) {
		t.Errorf("silences after delete: %d %s", code, body)
	}
	if m2.AddAlert(anomaly.Alert{ID: "inc4", Event: anomaly.EventUpdate, Device: "dev-b", Metric: "hum", Time: t0, Start: t0}) {
		t.Error("silenced after delete")
	}
}

func TestSilencesBounded(t *testing.T) {
	n := openNotes(t, filepath.Join(t.TempDir(), "dashboard.db"))
	until := time.Now().Add(time.Hour)
	for i := range monitor.MaxSilences {
		if _, err := n.Silence(monitor.Silence{Device: "d", Metric: string(rune('a' + i%26)), Until: until}); err != nil {
			t.Fatalf("silence %d: %v", i, err)
		}
	}
	m := monitor.New(monitor.Options{Notes: n})
	if code, body := do(t, m.APIHandler(), "POST", "/api/v1/silences", `{"device":"d","duration":"1h"}`); code != 409 || !strings.Contains(body, "too many") {
		t.Errorf("silence beyond MaxSilences: %d %s", code, body)
	}
}

func TestNoNotesNoWrites(t *testing.T) {
	m := monitor.New(monitor.Options{})
	m.AddAlert(anomaly.Alert{ID: "i", Event: anomaly.EventOpen, Device: "d", Metric: "m", Time: time.Now(), Start: time.Now()})
	h := m.APIHandler()
	if got := incidents(t, h, ""); len(got) != 1 || got[0].Acknowledged != nil {
		t.Errorf("incidents: %+v", got)
	}
	if code, _ := do(t, h, "POST", "/api/v1/incidents/i/ack", ""); code != 405 {
		t.Errorf("ack without notes: %d, want 405", code)
	}
	if code, _ := do(t, h, "POST", "/api/v1/silences", `{"device":"d","duration":"1h"}`); code != 405 {
		t.Errorf("silence without notes: %d, want 405", code)
	}
	if code, body := do(t, h, "GET", "/api/v1/silences", ""); code != 200 || !strings.Contains(body, `"silences":[]`) {
		t.Errorf("silences without notes: %d %s", code, body)
	}
}
