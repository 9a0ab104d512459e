package verify

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"time"

	"github.com/tributary-iot/tributary/simulator/model"
)

// Errors.
var (
	// ErrNoTally means the truth file has no published lines, so expected
	// readings cannot be counted.
	ErrNoTally = errors.New("verify: the truth file has no published lines (written by an older tributary-sim?): rerun the simulator to get per-device counts")
	// ErrConfig wraps every complaint about a Config.
	ErrConfig = errors.New("verify: invalid configuration")
)

// Tally is what one device published, from its truth line.
type Tally struct {
	Readings   uint64
	Start, End time.Time // every reading's device time is in [Start, End)
}

// Truth is what the verifier compares the streams with.
type Truth struct {
	// Devices holds each simulated device's published tally.
	Devices map[string]Tally
	// Skew is the clock offset of skewed devices (device time = true time
	// + skew).
	Skew map[string]time.Duration
	// Anomalies are the injected anomalies (spike, level_shift, drift,
	// stuck, noise_burst, dropout), in the order of the file.
	Anomalies []model.Event
}

// anomalyKinds are the truth kinds detectors are scored against.
var anomalyKinds = []string{model.KindSpike, model.KindLevelShift, model.KindDrift, model.KindStuck,
	model.KindNoiseBurst, model.KindDropout}

// NewTruth sorts a truth file's events into a Truth. It fails with
// ErrNoTally without published lines and on a device with two.
func NewTruth(events []model.Event) (*Truth, error) {
	t := &Truth{Devices: map[string]Tally{}, Skew: map[string]time.Duration{}}
	for _, e := range events {
		switch {
		case e.Kind == model.KindPublished:
			if _, dup := t.Devices[e.Device]; dup {
				return nil, fmt.Errorf("verify: truth has two published lines for device %q: one run per truth file", e.Device)
			}
			t.Devices[e.Device] = Tally{Readings: e.Readings, Start: e.Start, End: e.End}
		case e.Kind == model.KindClockSkew:
			t.Skew[e.Device] = time.Duration(e.Magnitude * float64(time.Second))
		case slices.Contains(anomalyKinds, e.Kind):
			t.Anomalies = append(t.Anomalies, e)
		}
	}
	if len(t.Devices) == 0 {
		return nil, ErrNoTally
	}
	return t, nil
}

// LoadTruth reads a truth file (model.ReadTruth) into a Truth.
func LoadTruth(path string) (*Truth, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("verify: %w", err)
	}
	defer f.Close()
	events, err := model.ReadTruth(f)
	if err != nil {
		return nil, fmt.Errorf("verify: %s: %w", path, err)
	}
	t, err := NewTruth(events)
	if err != nil {
		return nil, fmt.Errorf("%w (%s)", err, path)
	}
	return t, nil
}

// Expected returns the readings the truth expects in all.
func (t *Truth) Expected() uint64 {
	var n uint64
	for _, d := range t.Devices {
		n += d.Readings
	}
	return n
}
