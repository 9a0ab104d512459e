package model_test

import (
	"fmt"
	"os"
	"time"

	"github.com/tributary-iot/tributary/simulator/model"
)

// A run: plan anomalies from the seed, inject them, sample the truth, and
// write the truth file that detectors are scored against.
func Example() {
	start := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	fleet, err := model.NewFleet(42, start)
	if err != nil {
		panic(err)
	}
	events, err := fleet.Plan(model.PlanSpec{
		Devices: []string{"node-1", "node-2"},
		Metrics: []string{model.Temperature, model.Humidity},
		Start:   start,
		End:     start.Add(24 * time.Hour),
		Rates: []model.Rate{
			{Kind: model.KindSpike, PerHour: 0.2},
			{Kind: model.KindDropout, PerHour: 0.05},
		},
	})
	if err != nil {
		panic(err)
	}
	if err := fleet.Inject(events...); err != nil {
		panic(err)
	}

	dev := fleet.Device("node-1")
	at := start.Add(15 * time.Hour)
	if !dev.Dropout(at) {
		fmt.Printf("%.1f °C\n", dev.Value(model.Temperature, at))
	}

	truth := model.NewTruthWriter(os.Stdout)
	defer truth.Close()
	if err := truth.Write(model.Event{Device: "node-2", Kind: model.KindDisconnect, Start: at, End: at.Add(time.Minute)}); err != nil {
		panic(err)
	}
	// Output:
	// 27.0 °C
	// {"device":"node-2","metric":"","kind":"disconnect","start":"2026-03-01T15:00:00.000Z","end":"2026-03-01T15:01:00.000Z","magnitude":0}
}
