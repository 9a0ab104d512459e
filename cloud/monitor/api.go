package monitor

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/tributary-iot/tributary/protocol"
)

// APIHandler serves the JSON API under /api/v1/ (see API.md). Mount it at
// the root or under /api/: it matches the full path.
func (m *Monitor) APIHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/v1/overview", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, m.Overview())
	})
	mux.HandleFunc("GET /api/v1/stats", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, m.Stats())
	})
	mux.HandleFunc("GET /api/v1/gateways", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, map[string]any{"gateways": m.Gateways()})
	})
	mux.HandleFunc("GET /api/v1/devices", m.serveDevices)
	mux.HandleFunc("GET /api/v1/devices/{id}", func(w http.ResponseWriter, r *http.Request) {
		d, err := m.Device(r.PathValue("id"))
		if err != nil {
			writeError(w, http.StatusNotFound, err)
			return
		}
		writeJSON(w, d)
	})
	mux.HandleFunc("GET /api/v1/devices/{id}/series/{metric...}", m.serveSeries)
	mux.HandleFunc("GET /api/v1/stream", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, m.Stream(r.Context()))
	})
	mux.HandleFunc("GET /api/v1/alerts", m.serveAlerts)
	mux.HandleFunc("GET /api/v1/events", m.serveEvents)
	m.handleIncidents(mux)
	mux.HandleFunc("/api/", func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			writeError(w, http.StatusMethodNotAllowed, fmt.Errorf("monitor: %s not allowed here: only acknowledgements and silences change state", r.Method))
			return
		}
		writeError(w, http.StatusNotFound, fmt.Errorf("monitor: no API endpoint %s (see /api/v1/overview)", r.URL.Path))
	})
	return mux
}

func (m *Monitor) serveDevices(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	dq := DeviceQuery{Q: q.Get("q"), Gateway: q.Get("gateway"), Status: q.Get("status")}
	var err error
	if dq.Status != "" && dq.Status != "online" && dq.Status != "offline" {
		err = fmt.Errorf("%w: status %q: use online or offline", ErrBadQuery, dq.Status)
	}
	if err == nil {
		dq.Agents, err = parseBool(q, "agents")
	}
	if err == nil {
		dq.Offset, err = parseInt(q, "offset", 0, 0, 1<<30)
	}
	if err == nil {
		dq.Limit, err = parseInt(q, "limit", 100, 1, 1000)
	}
	if err != nil {
		writeError(w, http.StatusBadRequest, err)
		return
	}
	writeJSON(w, m.Devices(dq))
}

func (m *Monitor) serveSeries(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	window := q.Get("window")
	if window == "" {
		window = "5m"
	}
	end, err := ParseTime(q.Get("end"))
	if err != nil {
		writeError(w, http.StatusBadRequest, fmt.Errorf("%w: end: %w", ErrBadQuery, err))
		return
	}
	d, err := m.Series(r.PathValue("id"), r.PathValue("metric"), window, end)
	switch {
	case errors.Is(err, ErrUnknownDevice), errors.Is(err, ErrUnknownMetric):
		writeError(w, http.StatusNotFound, err)
	case err != nil:
		writeError(w, http.StatusBadRequest, err)
	default:
		writeJSON(w, d)
	}
}

func (m *Monitor) serveAlerts(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	aq := AlertQuery{Device: q.Get("device"), Metric: q.Get("metric")}
	var err error
	aq.Limit, err = parseInt(q, "limit", 100, 1, m.opt.MaxAlerts)
	if err == nil {
		aq.Since, err = ParseTime(q.Get("since"))
		if err != nil {
			err = fmt.Errorf("%w: since: %w", ErrBadQuery, err)
		}
	}
	if err != nil {
		writeError(w, http.StatusBadRequest, err)
		return
	}
	writeJSON(w, map[string]any{"alerts": m.Alerts(aq)})
}

// ParseTime reads a time query parameter: RFC 3339 or an integer of
// milliseconds since the epoch. "" is the zero time.
func ParseTime(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if ms, err := strconv.ParseInt(s, 10, 64); err == nil {
		if ms <= -protocol.MaxTimeMicros/1000 || ms >= protocol.MaxTimeMicros/1000 {
			return time.Time{}, fmt.Errorf("%d ms is out of range", ms)
		}
		return time.UnixMilli(ms).UTC(), nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil || t.UnixMicro() <= -protocol.MaxTimeMicros || t.UnixMicro() >= protocol.MaxTimeMicros {
		return time.Time{}, fmt.Errorf("%q is neither RFC 3339 (2006-01-02T15:04:05Z) nor milliseconds since the epoch in range", truncate(s, 64))
	}
	return t.UTC(), nil
}

func parseInt(q map[string][]string, name string, def, lo, hi int) (int, error) {
	v := first(q, name)
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < lo || n > hi {
		return 0, fmt.Errorf("%w: %s %q: want an integer from %d to %d", ErrBadQuery, name, truncate(v, 64), lo, hi)
	}
	return n, nil
}

func parseBool(q map[string][]string, name string) (bool, error) {
	switch v := strings.ToLower(first(q, name)); v {
	case "", "0", "false", "no":
		return false, nil
	case "1", "true", "yes":
		return true, nil
	default:
		return false, fmt.Errorf("%w: %s %q: want true or false", ErrBadQuery, name, truncate(v, 64))
	}
}

func first(q map[string][]string, name string) string {
	if v := q[name]; len(v) > 0 {
		return v[0]
	}
	return ""
}

func writeJSON(w http.ResponseWriter, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		writeError(w, http.StatusInternalServerError, err)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	w.Write(append(b, '\n'))
}

func writeError(w http.ResponseWriter, code int, err error) {
	b, _ := json.Marshal(map[string]string{"error": err.Error()})
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	w.Write(append(b, '\n'))
}
