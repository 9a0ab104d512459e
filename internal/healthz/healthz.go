// Package healthz serves a server's health document on /healthz: indented
// JSON, with HTTP status 503 while the server is failing so that load
// balancers and orchestrators take it out, 200 otherwise.
package healthz

import (
	"encoding/json"
	"net/http"
)

// Handler answers report's document; failing says whether it is 503.
func Handler[T any](report func() T, failing func(T) bool) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		doc := report()
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		if failing(doc) {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		_ = enc.Encode(doc) // the client went away
	})
}
