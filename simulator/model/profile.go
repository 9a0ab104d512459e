package model

import (
	"fmt"
	"math"
	"strings"
	"time"
)

// Metric names with a built-in profile. A metric whose name starts with one
// of these (for example "voltage3" or "temperature_2") uses that profile;
// see Fleet.Profile.
const (
	Temperature = "temperature" // °C
	Humidity    = "humidity"    // %RH
	Pressure    = "pressure"    // Pa
	Voltage     = "voltage"     // V, 0..3.3 (override for another VRef)
	Flow        = "flow"        // pulses per second
)

// Profile describes how one kind of metric behaves. The value of a device's
// metric at time t, before anomalies, is
//
//	Base + offset + Diurnal·cos(2π(t − Peak − jitter)/24h) + weather(t)
//	     + drift·(t − fleet start) + Noise·N(0,1)
//
// clamped to [Min, Max], where offset ~ N(0, Spread), drift ~ N(0, Drift)
// per day and jitter ~ U(−PhaseJitter, PhaseJitter) are fixed per device,
// jitter being shared by all metrics of a device (so that temperature and
// humidity stay anticorrelated). weather(t) is a slow wave shared by the
// whole fleet, of amplitude Weather and main period WeatherPeriod. The
// noise is redrawn every noise step (see WithNoiseStep).
type Profile struct {
	Base          float64       // mean level
	Diurnal       float64       // amplitude of the 24 h cycle
	Peak          time.Duration // time of day (UTC) of the diurnal maximum
	PhaseJitter   time.Duration // per-device shift of the diurnal cycle, at most this
	Weather       float64       // amplitude of the fleet-wide slow wave
	WeatherPeriod time.Duration // main period of the slow wave (required if Weather != 0)
	Noise         float64       // standard deviation of the per-sample noise
	Spread        float64       // standard deviation of the per-device offset
	Drift         float64       // standard deviation of the per-device drift, per day
	Min, Max      float64       // physical limits
	// Scale is the size of a notable deviation for this metric: planned
	// spikes, level shifts and drifts are multiples of it (see Rate).
	Scale float64
}

// DefaultProfiles returns the profiles a Fleet starts with (a new map each
// time). WithProfile replaces or adds profiles.
func DefaultProfiles() map[string]Profile {
	return map[string]Profile{
		Temperature: {
			Base: 22, Diurnal: 4, Peak: 15 * time.Hour, PhaseJitter: time.Hour,
			Noise: 0.05, Spread: 1, Drift: 0.02, Min: -40, Max: 85, Scale: 2,
		},
		// Humidity peaks when temperature is lowest: anticorrelated.
		Humidity: {
			Base: 55, Diurnal: 12, Peak: 3 * time.Hour, PhaseJitter: time.Hour,
			Noise: 0.5, Spread: 5, Drift: 0.1, Min: 0, Max: 100, Scale: 8,
		},
		Pressure: {
			Base: 100800, Diurnal: 60, Peak: 10 * time.Hour, PhaseJitter: time.Hour,
			Weather: 1000, WeatherPeriod: 96 * time.Hour,
			Noise: 3, Spread: 150, Min: 30000, Max: 110000, Scale: 400,
		},
		Voltage: {
			Base: 1.65, Diurnal: 0.3, Peak: 14 * time.Hour, PhaseJitter: time.Hour,
			Noise: 0.005, Spread: 0.1, Drift: 0.001, Min: 0, Max: 3.3, Scale: 0.2,
		},
		Flow: {
			Base: 10, Diurnal: 4, Peak: 8 * time.Hour, PhaseJitter: time.Hour,
			Noise: 0.3, Spread: 2, Min: 0, Max: 1000, Scale: 3,
		},
	}
}

func (p Profile) validate() error {
	for _, f := range []struct {
		name string
		v    float64
	}{
		{"Base", p.Base}, {"Diurnal", p.Diurnal}, {"Weather", p.Weather},
		{"Noise", p.Noise}, {"Spread", p.Spread}, {"Drift", p.Drift},
		{"Min", p.Min}, {"Max", p.Max}, {"Scale", p.Scale},
	} {
		if math.IsNaN(f.v) || math.IsInf(f.v, 0) {
			return fmt.Errorf("%s is %v, want a finite number", f.name, f.v)
		}
	}
	switch {
	case p.Min > p.Max:
		return fmt.Errorf("Min %g is above Max %g", p.Min, p.Max)
	case p.Noise < 0, p.Spread < 0, p.Drift < 0, p.Scale < 0:
		return fmt.Errorf("Noise, Spread, Drift and Scale must be >= 0")
	case p.PhaseJitter < 0:
		return fmt.Errorf("PhaseJitter %s is negative", p.PhaseJitter)
	case p.Weather != 0 && p.WeatherPeriod <= 0:
		return fmt.Errorf("Weather %g needs a positive WeatherPeriod", p.Weather)
	}
	return nil
}

// lookupProfile finds the profile of metric: an exact match, else the
// longest profile name that prefixes metric.
func lookupProfile(profiles map[string]Profile, metric string) (string, Profile, bool) {
	if p, ok := profiles[metric]; ok {
		return metric, p, true
	}
	best, found := "", false
	for name := range profiles {
		if strings.HasPrefix(metric, name) && (!found || len(name) > len(best)) {
			best, found = name, true
		}
	}
	if !found {
		return "", Profile{}, false
	}
	return best, profiles[best], true
}
