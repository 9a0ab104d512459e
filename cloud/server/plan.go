package server

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/tributary-iot/tributary/cloud/plan"
)

// planPath prices the current traffic on the four engines (package plan).
const planPath = "GET /api/v1/plan"

// PlanAnswer is GET /api/v1/plan: plan.Plan for the traffic the monitor
// measures (the last 10 s), and notes on the assumptions taken from the
// cloud's configuration. With no traffic, only the notes and Error.
type PlanAnswer struct {
	*plan.Plan
	Notes []string `json:"notes"`
	Error string   `json:"error,omitempty"`
}

// servePlan answers GET /api/v1/plan. The fleet's consumers are the
// cloud's monitor (1) unless ?consumers=N; its retention is the embedded
// stream's (24 h elsewhere) unless ?retention=DURATION; the prices are the
// embedded file of the Kinesis backend's region (us-east-1 otherwise).
func (s *Server) servePlan(w http.ResponseWriter, r *http.Request) {
	if s.pipe == nil {
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": "plan: the monitor is off (monitor.enabled): it measures the traffic to price"})
		return
	}
	f, notes, err := s.planFleet(r)
	if err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
		return
	}
	ans := PlanAnswer{Notes: notes}
	prices, err := plan.EmbeddedPrices(f.Region)
	if errors.Is(err, plan.ErrUnknownRegion) {
		ans.Notes = append(ans.Notes, fmt.Sprintf("no price file for %s: %s prices shown", f.Region, plan.DefaultRegion))
		f.Region = plan.DefaultRegion
		prices, err = plan.EmbeddedPrices(f.Region)
	}
	if err != nil {
		writeJSON(w, http.StatusInternalServerError, map[string]string{"error": err.Error()})
		return
	}
	m := s.pipe.monitor
	t, err := plan.FromMonitor(m.Overview(), m.Stream(r.Context()))
	if err != nil {
		ans.Error = err.Error() // plan.ErrNoTraffic: nothing to price yet
		writeJSON(w, http.StatusOK, ans)
		return
	}
	f.Devices = max(t.Devices, 1)
	f.SetDefaults()
	if err := f.Validate(); err != nil {
		writeJSON(w, http.StatusInternalServerError, map[string]string{"error": err.Error()})
		return
	}
	ans.Plan = plan.Compute(f, t, prices)
	writeJSON(w, http.StatusOK, ans)
}

// planFleet is the fleet description from the configuration and the
// query (consumers, retention), with a note on each assumption.
func (s *Server) planFleet(r *http.Request) (*plan.Fleet, []string, error) {
	cfg := s.cfg
	f := &plan.Fleet{Consumers: 1, Retention: plan.DefaultRetention, Region: plan.DefaultRegion, PollInterval: plan.DefaultPollInterval}
	var notes []string
	if cfg.Stream.Backend == BackendKinesis {
		if cfg.Stream.Kinesis.Region != "" {
			f.Region = cfg.Stream.Kinesis.Region
		}
		f.PollInterval = cfg.Monitor.PollInterval
	}
	q := r.URL.Query()
	if v := q.Get("consumers"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 1000 {
			return nil, nil, fmt.Errorf("plan: consumers=%q: want the number of applications reading the stream, 1..1000", v)
		}
		f.Consumers = n
	} else {
		notes = append(notes, "consumers: 1, the cloud's monitor (add ?consumers=N for every application reading the stream)")
	}
	if v := q.Get("retention"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < time.Hour || d > 8760*time.Hour {
			return nil, nil, fmt.Errorf("plan: retention=%q: want a duration of 1h..8760h, such as 168h", v)
		}
		f.Retention = d
	} else if s.store != nil {
		if in, err := s.store.DescribeStream(cfg.Stream.Name); err == nil {
			f.Retention = time.Duration(in.RetentionHours) * time.Hour
			notes = append(notes, fmt.Sprintf("retention: %d h, the stream's", in.RetentionHours))
		}
	} else {
		notes = append(notes, "retention: 24 h assumed (add ?retention=DURATION for the stream's)")
	}
	return f, notes, nil
}
