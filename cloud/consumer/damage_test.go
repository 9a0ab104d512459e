package consumer_test

import (
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/tributary-iot/tributary/cloud/consumer"
	"github.com/tributary-iot/tributary/internal/boltfile/bolttest"
)

// A damaged checkpoint file is an error that names it and says what to
// do, never a crash.
func TestOpenDamagedCheckpoints(t *testing.T) {
	good := filepath.Join(t.TempDir(), "good.db")
	cps, err := consumer.OpenCheckpoints(good)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 200 {
		cp := consumer.Checkpoint{SequenceNumber: fmt.Sprintf("%038d", i), Updated: time.Unix(int64(i), 0)}
		if err := cps.Set(fmt.Sprintf("app-%d", i%5), "telemetry", fmt.Sprintf("shardId-%012d", i), cp); err != nil {
			t.Fatal(err)
		}
	}
	if err := cps.Close(); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "checkpoints.db")
	bolttest.Each(t, good, path, func(t *testing.T) {
		cps, err := consumer.OpenCheckpoints(path)
		if err == nil {
			cps.Close()
		}
		bolttest.CheckOpenError(t, err, path, "move it aside")
	})
}
