package healthz_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/tributary-iot/tributary/internal/healthz"
)

type doc struct {
	Status string `json:"status"`
}

func TestHandler(t *testing.T) {
	for _, status := range []string{"ok", "degraded", "failing"} {
		h := healthz.Handler(func() doc { return doc{status} }, func(d doc) bool { return d.Status == "failing" })
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/healthz", nil))
		want := http.StatusOK
		if status == "failing" {
			want = http.StatusServiceUnavailable
		}
		var got doc
		if err := json.Unmarshal(w.Body.Bytes(), &got); err != nil || w.Code != want || got.Status != status ||
			w.Header().Get("Content-Type") != "application/json" {
			t.Errorf("%s: %d %q %v", status, w.Code, w.Body.String(), err)
		}
	}
}
