package plan_test

import (
	"io"
	"testing"

	"github.com/tributary-iot/tributary/cloud/plan"
)

// BenchmarkPlan10k answers for 10,000 devices at 1 reading/s the way
// `tributary-cloud plan -devices 10000 -metrics temperature:Cel` does:
// parse the embedded price file, encode the sample records, size, price
// and print the tables.
//
//	go test -run '^$' -bench Plan10k -benchmem ./cloud/plan
func BenchmarkPlan10k(b *testing.B) {
	for b.Loop() {
		h := plan.DefaultHeadroom
		f := &plan.Fleet{Devices: 10_000, Rate: 1, Metrics: []plan.Metric{{Name: "temperature", Unit: "Cel", Value: 21.37}}, Headroom: &h}
		f.SetDefaults()
		if err := f.Validate(); err != nil {
			b.Fatal(err)
		}
		p, err := plan.EmbeddedPrices(f.Region)
		if err != nil {
			b.Fatal(err)
		}
		t, err := plan.Measure(f)
		if err != nil {
			b.Fatal(err)
		}
		if err := plan.WriteText(io.Discard, plan.Compute(f, t, p)); err != nil {
			b.Fatal(err)
		}
	}
}
