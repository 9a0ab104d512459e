package ingest_test

import (
	"net/http"
	"path/filepath"
	"testing"

	"github.com/tributary-iot/tributary/cloud/ingest"
	"github.com/tributary-iot/tributary/internal/boltfile/bolttest"
)

// A damaged ack log is an error that names it and says what to do, never
// a crash.
func TestOpenDamagedAckLog(t *testing.T) {
	e := newEnv(t, nil)
	for epoch := range uint64(100) {
		if r := e.send("gw-1", epoch+1, 1, readings(5, 2, t0), ""); r.Status != http.StatusOK {
			t.Fatalf("epoch %d: %+v", epoch, r)
		}
	}
	e.stop()
	good := filepath.Join(e.dir, "ingest.db")
	path := filepath.Join(t.TempDir(), "ingest.db")
	bolttest.Each(t, good, path, func(t *testing.T) {
		in, err := ingest.New(t.Context(), ingest.Options{Backend: e.be, Tokens: e.tokens, Path: path})
		if err == nil {
			in.Close()
		}
		bolttest.CheckOpenError(t, err, path, "move the file aside")
	})
}
