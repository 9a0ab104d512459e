package monitor

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/tributary-iot/tributary/cloud/anomaly"
)

// Incident is the alerts kept of one incident, grouped: its state and
// latest event.
type Incident struct {
	ID       string        `json:"id"`
	Device   string        `json:"device"`
	Metric   string        `json:"metric"`
	Kind     anomaly.Kind  `json:"kind"`
	State    string        `json:"state"` // open or resolved
	Start    time.Time     `json:"start"`
	End      time.Time     `json:"end,omitzero"` // resolved incidents
	Reason   string        `json:"reason,omitempty"`
	Peak     float64       `json:"peak"`
	Expected anomaly.Range `json:"expected,omitzero"`
	Events   int           `json:"events"` // its alerts kept
	Latest   AlertEntry    `json:"latest"` // its newest event
	Silenced bool          `json:"silenced"`
	// Acknowledged is when an operator acknowledged it (null: not yet).
	Acknowledged *time.Time `json:"acknowledged"`
}

// IncidentQuery filters Incidents.
type IncidentQuery struct {
	State          string // "", open or resolved
	Device, Metric string
	Limit          int // default 100
}

// Incidents returns the incidents of the kept alerts matching q, the one
// with the newest event first. Alerts without an incident id (added by
// callers that set none) are left out.
func (m *Monitor) Incidents(q IncidentQuery) []Incident {
	if q.Limit <= 0 {
		q.Limit = 100
	}
	m.mu.Lock()
	byID := map[string]*Incident{}
	var order []*Incident // by newest event, oldest first
	for i := 0; i < m.alerts.len(); i++ {
		a := m.alerts.at(i)
		if a.Incident == "" || q.Device != "" && a.Device != q.Device || q.Metric != "" && a.Metric != q.Metric {
			continue
		}
		in := byID[a.Incident]
		if in == nil {
			in = &Incident{ID: a.Incident, Device: a.Device, Metric: a.Metric}
			byID[a.Incident] = in
		}
		in.Kind, in.Start, in.Peak, in.Latest = a.Kind, a.Start, max(in.Peak, a.Peak), *a
		in.Silenced = in.Silenced || a.Silenced
		if a.Expected != (anomaly.Range{}) {
			in.Expected = a.Expected
		}
		in.Events++
		in.State = "open"
		if a.Event == anomaly.EventResolve {
			in.State, in.End, in.Reason = "resolved", a.End, a.Reason
		}
		order = append(order, in)
	}
	m.mu.Unlock()
	out := []Incident{}
	seen := map[string]bool{}
	for i := len(order) - 1; i >= 0 && len(out) < q.Limit; i-- {
		in := order[i]
		if seen[in.ID] || q.State != "" && in.State != q.State {
			seen[in.ID] = true
			continue
		}
		seen[in.ID] = true
		if m.opt.Notes != nil {
			if ack, ok := m.opt.Notes.Acked(in.ID); ok {
				in.Acknowledged = &ack.At
			}
		}
		out = append(out, *in)
	}
	return out
}

// incident returns one incident of the kept alerts.
func (m *Monitor) incident(id string) (Incident, bool) {
	for _, in := range m.Incidents(IncidentQuery{Limit: m.opt.MaxAlerts}) {
		if in.ID == id {
			return in, true
		}
	}
	return Incident{}, false
}

// handleIncidents adds the incident and silence endpoints to mux.
func (m *Monitor) handleIncidents(mux *http.ServeMux) {
	mux.HandleFunc("GET /api/v1/incidents", m.serveIncidents)
	if m.opt.Notes == nil {
		mux.HandleFunc("GET /api/v1/silences", func(w http.ResponseWriter, r *http.Request) {
			writeJSON(w, map[string]any{"silences": []Silence{}})
		})
		return
	}
	mux.HandleFunc("POST /api/v1/incidents/{id}/ack", func(w http.ResponseWriter, r *http.Request) {
		id := r.PathValue("id")
		if _, ok := m.incident(id); !ok {
			writeError(w, http.StatusNotFound, fmt.Errorf("monitor: no incident %q among the alerts kept", truncate(id, 64)))
			return
		}
		if _, err := m.opt.Notes.Ack(id); err != nil {
			writeError(w, http.StatusInternalServerError, err)
			return
		}
		in, _ := m.incident(id)
		writeJSON(w, in)
	})
	mux.HandleFunc("GET /api/v1/silences", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, map[string]any{"silences": m.opt.Notes.Silences()})
	})
	mux.HandleFunc("POST /api/v1/silences", m.serveSilence)
	mux.HandleFunc("DELETE /api/v1/silences/{id}", func(w http.ResponseWriter, r *http.Request) {
		err := m.opt.Notes.Unsilence(r.PathValue("id"))
		switch {
		case errors.Is(err, ErrUnknownSilence):
			writeError(w, http.StatusNotFound, err)
		case err != nil:
			writeError(w, http.StatusInternalServerError, err)
		default:
			w.Header().Set("Cache-Control", "no-store")
			w.WriteHeader(http.StatusNoContent)
		}
	})
}

func (m *Monitor) serveIncidents(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	iq := IncidentQuery{State: q.Get("state"), Device: q.Get("device"), Metric: q.Get("metric")}
	var err error
	if iq.State != "" && iq.State != "open" && iq.State != "resolved" {
		err = fmt.Errorf("%w: state %q: use open or resolved", ErrBadQuery, truncate(iq.State, 64))
	}
	if err == nil {
		iq.Limit, err = parseInt(q, "limit", 100, 1, m.opt.MaxAlerts)
	}
	if err != nil {
		writeError(w, http.StatusBadRequest, err)
		return
	}
	writeJSON(w, map[string]any{"incidents": m.Incidents(iq)})
}

// silenceRequest is POST /api/v1/silences' body.
type silenceRequest struct {
	Device   string    `json:"device"`
	Metric   string    `json:"metric"`
	Until    time.Time `json:"until"`
	Duration string    `json:"duration"` // Go duration, e.g. "1h"; instead of until
}

func (m *Monitor) serveSilence(w http.ResponseWriter, r *http.Request) {
	var req silenceRequest
	dec := json.NewDecoder(io.LimitReader(r.Body, 4096))
	dec.DisallowUnknownFields()
	err := dec.Decode(&req)
	if err != nil {
		err = fmt.Errorf("%w: body: want JSON {\"device\", \"metric\", \"duration\" or \"until\"}: %w", ErrBadQuery, err)
	}
	if err == nil && (req.Duration == "") == req.Until.IsZero() {
		err = fmt.Errorf("%w: set one of duration (e.g. \"1h\") and until (RFC 3339)", ErrBadQuery)
	}
	if err == nil && req.Duration != "" {
		var d time.Duration
		if d, err = time.ParseDuration(req.Duration); err != nil {
			err = fmt.Errorf("%w: duration %q: want e.g. 1h or 30m", ErrBadQuery, truncate(req.Duration, 64))
		}
		req.Until = m.now().Add(d)
	}
	var s Silence
	if err == nil {
		s, err = m.opt.Notes.Silence(Silence{Device: req.Device, Metric: req.Metric, Until: req.Until})
	}
	switch {
	case errors.Is(err, ErrBadQuery):
		writeError(w, http.StatusBadRequest, err)
	case errors.Is(err, ErrTooManySilences):
		writeError(w, http.StatusConflict, err)
	case err != nil:
		writeError(w, http.StatusInternalServerError, err)
	default:
		b, _ := json.Marshal(s)
		h := w.Header()
		h.Set("Location", "/api/v1/silences/"+s.ID)
		h.Set("Content-Type", "application/json")
		h.Set("Cache-Control", "no-store")
		w.WriteHeader(http.StatusCreated)
		w.Write(append(b, '\n'))
	}
}
