package plan_test

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/tributary-iot/tributary/cloud/plan"
	"github.com/tributary-iot/tributary/internal/strictyaml/yamltest"
	"github.com/tributary-iot/tributary/internal/testenv"
)

// Price files are decoded strictly and every bad field is named.
func TestPriceFixtures(t *testing.T) {
	yamltest.Run(t, "testdata/prices", 10, func(b []byte) error {
		_, err := plan.ParsePrices(b, "fixture")
		return err
	})
}

// Every embedded price file is valid and is the file in deploy/prices.
func TestEmbeddedPrices(t *testing.T) {
	root, err := testenv.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob(filepath.Join(root, "deploy/prices/*.yaml"))
	if len(plan.Regions()) == 0 || len(plan.Regions()) != len(files) {
		t.Fatalf("regions %v, files %v", plan.Regions(), files)
	}
	for _, r := range plan.Regions() {
		p, err := plan.EmbeddedPrices(r)
		if err != nil {
			t.Fatal(err)
		}
		fromDisk, err := plan.LoadPrices(filepath.Join(root, "deploy/prices", r+".yaml"))
		if err != nil {
			t.Fatal(err)
		}
		if p.Region != r || p.AsOf != fromDisk.AsOf || p.Kinesis.Provisioned.ShardHour != fromDisk.Kinesis.Provisioned.ShardHour {
			t.Errorf("%s: embedded %+v differs from the file", r, p)
		}
	}
	if _, err := plan.EmbeddedPrices("mars-north-1"); !errors.Is(err, plan.ErrUnknownRegion) {
		t.Errorf("unknown region: %v", err)
	}
	if _, err := plan.LoadPrices(filepath.Join(t.TempDir(), "none.yaml")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
}
