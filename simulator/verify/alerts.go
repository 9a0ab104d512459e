package verify

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/tributary-iot/tributary/protocol"
	"github.com/tributary-iot/tributary/simulator/model"
)

// Alert is one record of the alerts stream (cloud/alerts): JSON, partition
// key the device. Each record is one event of an incident: "open",
// "update" or "resolve" (a record without an event, from before
// incidents, counts as an open).
type Alert struct {
	ID     string    `json:"id"`
	Event  string    `json:"event"`
	Start  time.Time `json:"start"`
	End    time.Time `json:"end"`
	Device string    `json:"device"`
	Metric string    `json:"metric"`
	Time   time.Time `json:"time"`
	Score  float64   `json:"score"`
	Kind   string    `json:"kind"`
	Value  float64   `json:"value"`
}

// AlertScorer matches alerts with the truth's injected anomalies. An alert
// matches an anomaly of its device — and of its metric, when the anomaly
// has one (a dropout has none) — when its time falls in the anomaly's
// [start, end + tolerance], both shifted by the device's clock skew (alert
// times are device times). Recall is per anomaly kind: the share of
// anomalies matched by at least one alert; precision is the share of
// alerts that match some anomaly. An incident is one alert, its open
// event; its update events (new alarms while it is open) count for
// recall, not as alerts, and its resolve events are only counted. Gateway health
// alerts (agent.*) are counted apart.
type AlertScorer struct {
	tol       time.Duration
	byDevice  map[string][]int // indexes into anomalies
	anomalies []model.Event
	skew      map[string]time.Duration
	detected  []uint8 // byOpen | byUpdate

	records, bad, alerts, matched, health, followUps uint64
	byAlertKind, falseByKind                         map[string]uint64
}

// NewAlertScorer scores alerts against t's anomalies with tolerance tol.
func NewAlertScorer(t *Truth, tol time.Duration) *AlertScorer {
	s := &AlertScorer{tol: tol, byDevice: map[string][]int{}, anomalies: t.Anomalies, skew: t.Skew,
		detected: make([]uint8, len(t.Anomalies)), byAlertKind: map[string]uint64{}, falseByKind: map[string]uint64{}}
	for i, e := range t.Anomalies {
		s.byDevice[e.Device] = append(s.byDevice[e.Device], i)
	}
	return s
}

// Add takes one record of the alerts stream.
func (s *AlertScorer) Add(r *Record) {
	s.records++
	var a Alert
	if err := json.Unmarshal(r.Data, &a); err != nil || a.Device == "" || a.Time.IsZero() {
		s.bad++
		return
	}
	s.AddAlert(a)
}

// AddAlert takes one alert.
func (s *AlertScorer) AddAlert(a Alert) {
	if strings.HasPrefix(a.Metric, protocol.HealthPrefix) {
		s.health++
		return
	}
	if a.Event != "" && a.Event != "open" {
		// An update (a new alarm of an open incident) tells of the
		// anomalies it falls in; it is not a new alert.
		s.followUps++
		if a.Event == "update" {
			s.match(a, byUpdate)
		}
		return
	}
	s.alerts++
	s.byAlertKind[a.Kind]++
	if s.match(a, byOpen) {
		s.matched++
	} else {
		s.falseByKind[a.Kind]++
	}
}

// How an anomaly was detected (bits of AlertScorer.detected).
const (
	byOpen   = 1
	byUpdate = 2
)

// match marks the anomalies a falls in as detected by how; it reports
// whether there were any.
func (s *AlertScorer) match(a Alert, how uint8) bool {
	hit := false
	skew := s.skew[a.Device]
	for _, i := range s.byDevice[a.Device] {
		e := &s.anomalies[i]
		if e.Metric != "" && e.Metric != a.Metric {
			continue
		}
		if a.Time.Before(e.Start.Add(skew)) || a.Time.After(e.End.Add(skew+s.tol)) {
			continue
		}
		s.detected[i] |= how
		hit = true
	}
	return hit
}

// KindScore is detection of one anomaly kind.
type KindScore struct {
	Anomalies uint64   `json:"anomalies"`
	Detected  uint64   `json:"detected"`
	Recall    *float64 `json:"recall"` // null without anomalies
}

// AlertReport is the detection score.
type AlertReport struct {
	Stream           string               `json:"stream"`
	ToleranceSeconds float64              `json:"tolerance_seconds"`
	Records          uint64               `json:"records"`
	BadRecords       uint64               `json:"bad_records"`   // not an alert
	Alerts           uint64               `json:"alerts"`        // device alerts scored (incidents opened)
	FollowUps        uint64               `json:"follow_ups"`    // update and resolve events of those incidents
	HealthAlerts     uint64               `json:"health_alerts"` // alerts on agent.* metrics, not scored
	Matched          uint64               `json:"matched"`       // alerts that match an injected anomaly
	Precision        *float64             `json:"precision"`     // matched / alerts; null without alerts
	Anomalies        uint64               `json:"anomalies"`
	Detected         uint64               `json:"detected"`         // by an incident's open or update event
	DetectedAtOpen   uint64               `json:"detected_at_open"` // by an incident's open event
	Recall           *float64             `json:"recall"`           // detected / anomalies; null without anomalies
	ByKind           map[string]KindScore `json:"by_kind"`
	ByAlertKind      map[string]uint64    `json:"by_alert_kind"` // alerts by the detector's kind
	FalseByKind      map[string]uint64    `json:"false_by_kind"` // alerts that match no anomaly, by the detector's kind
}

func ratio(a, b uint64) *float64 {
	if b == 0 {
		return nil
	}
	r := float64(a) / float64(b)
	return &r
}

// Report returns the score so far.
func (s *AlertScorer) Report(stream string) *AlertReport {
	r := &AlertReport{Stream: stream, ToleranceSeconds: s.tol.Seconds(), Records: s.records, BadRecords: s.bad,
		Alerts: s.alerts, FollowUps: s.followUps, HealthAlerts: s.health, Matched: s.matched, Precision: ratio(s.matched, s.alerts),
		Anomalies: uint64(len(s.anomalies)), ByKind: map[string]KindScore{}, ByAlertKind: s.byAlertKind, FalseByKind: s.falseByKind}
	for i, e := range s.anomalies {
		k := r.ByKind[e.Kind]
		k.Anomalies++
		if s.detected[i] != 0 {
			k.Detected++
			r.Detected++
		}
		if s.detected[i]&byOpen != 0 {
			r.DetectedAtOpen++
		}
		r.ByKind[e.Kind] = k
	}
	for kind, k := range r.ByKind {
		k.Recall = ratio(k.Detected, k.Anomalies)
		r.ByKind[kind] = k
	}
	r.Recall = ratio(r.Detected, r.Anomalies)
	return r
}

func pct(p *float64) string {
	if p == nil {
		return "n/a"
	}
	return fmt.Sprintf("%.1f%%", 100**p)
}
