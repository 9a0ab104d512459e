package ingest_test

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/goleak"

	"github.com/tributary-iot/tributary/cloud/auth"
	"github.com/tributary-iot/tributary/cloud/ingest"
	"github.com/tributary-iot/tributary/internal/metrics/metricstest"
	"github.com/tributary-iot/tributary/internal/testenv"
	"github.com/tributary-iot/tributary/protocol"
)

// childHelpers are the child processes some tests re-execute this test
// binary as (testenv.Helper): name → main.
var childHelpers = map[string]func(){}

func TestMain(m *testing.M) {
	testenv.RunHelper(childHelpers)
	goleak.VerifyTestMain(m)
}

// env is an ingest on a real HTTP server at 127.0.0.1 with real tokens,
// a real ack log in a temp folder and an in-memory backend.
type env struct {
	t      testing.TB
	dir    string
	be     *memBackend
	tokens *auth.Store
	tok    map[string]string // gateway → token
	opts   func(*ingest.Options)

	in       *ingest.Ingest
	h        atomic.Pointer[ingest.Ingest] // nil while restarting
	srv      *httptest.Server
	reg      *prometheus.Registry
	logs     *testenv.Buffer
	loseNext atomic.Int32 // store, then answer 503: a lost acknowledgement

	mu       sync.Mutex
	statuses map[int]int // answers by status, across restarts

	gate sync.RWMutex // held for reading by requests, for writing by restart
}

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

// Unwrap lets http.ResponseController reach the connection (the ingest
// sets a read deadline on it).
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func (e *env) count(status int) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.statuses[status]
}

func newEnv(t testing.TB, opts func(*ingest.Options)) *env {
	t.Helper()
	e := &env{t: t, dir: t.TempDir(), be: newMemBackend(protocol.DefaultStream, 4), tok: map[string]string{}, opts: opts,
		statuses: map[int]int{}}
	var err error
	if e.tokens, err = auth.Open(filepath.Join(e.dir, "tokens.db"), auth.Options{}); err != nil {
		t.Fatal(err)
	}
	for _, gw := range []string{"gw-1", "gw-2"} {
		if e.tok[gw], err = e.tokens.Issue(gw); err != nil {
			t.Fatal(err)
		}
	}
	e.srv = httptest.NewServer(http.HandlerFunc(e.serve))
	e.start()
	t.Cleanup(func() {
		e.srv.Close()
		e.stop()
	})
	return e
}

// serve passes requests to the current ingest: 503 while it restarts,
// and a lost acknowledgement when loseNext says so.
func (e *env) serve(rw http.ResponseWriter, r *http.Request) {
	w := &statusWriter{ResponseWriter: rw}
	defer func() {
		e.mu.Lock()
		e.statuses[w.status]++
		e.mu.Unlock()
	}()
	e.gate.RLock()
	defer e.gate.RUnlock()
	in := e.h.Load()
	if in == nil || r.URL.Path != ingest.Path {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusServiceUnavailable)
		w.Write([]byte(`{"error":"restarting"}`))
		return
	}
	for n := e.loseNext.Load(); n > 0; n = e.loseNext.Load() {
		if e.loseNext.CompareAndSwap(n, n-1) {
			rec := httptest.NewRecorder()
			in.ServeHTTP(rec, r)
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusServiceUnavailable)
			w.Write([]byte(`{"error":"acknowledgement lost (injected)"}`))
			return
		}
	}
	in.ServeHTTP(w, r)
}

func (e *env) start() {
	e.t.Helper()
	e.reg = prometheus.NewRegistry()
	e.logs = &testenv.Buffer{}
	o := ingest.Options{
		Backend: e.be, Tokens: e.tokens, Path: filepath.Join(e.dir, "ingest.db"),
		Registerer: e.reg, Logger: slog.New(slog.NewTextHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		ThrottleWait: 50 * time.Millisecond,
	}
	if e.opts != nil {
		e.opts(&o)
	}
	in, err := ingest.New(e.t.Context(), o)
	if err != nil {
		e.t.Fatal(err)
	}
	e.in = in
	e.h.Store(in)
}

func (e *env) stop() {
	e.h.Store(nil)
	if err := e.in.Close(); err != nil {
		e.t.Error(err)
	}
}

// restart stops the ingest gracefully (requests in progress finish, as
// http.Server.Shutdown lets them) and starts a new one on the same data
// folder and backend, behind the same URL.
func (e *env) restart() {
	e.gate.Lock()
	defer e.gate.Unlock()
	e.stop()
	e.start()
}

type reply struct {
	Status     int
	Err        string
	RetryAfter string
	Body       map[string]any
}

func compress(t testing.TB, enc string, body []byte) []byte {
	t.Helper()
	switch enc {
	case "zstd":
		w, _ := zstd.NewWriter(nil)
		defer w.Close()
		return w.EncodeAll(body, nil)
	case "gzip":
		var buf bytes.Buffer
		w := gzip.NewWriter(&buf)
		w.Write(body)
		w.Close()
		return buf.Bytes()
	}
	return body
}

// post sends body as is, with the given headers.
func (e *env) post(token, enc string, body []byte, hdr ...string) reply {
	e.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, e.srv.URL+ingest.Path, bytes.NewReader(body))
	req.Header.Set("Content-Type", protocol.ContentTypeBatch)
	if enc != "" {
		req.Header.Set("Content-Encoding", enc)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := e.srv.Client().Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	r := reply{Status: resp.StatusCode, RetryAfter: resp.Header.Get("Retry-After")}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		e.t.Errorf("answer %d has content type %q", resp.StatusCode, ct)
	}
	if err := json.Unmarshal(data, &r.Body); err != nil {
		e.t.Errorf("answer %d is not JSON: %q", resp.StatusCode, data)
	}
	if resp.StatusCode != http.StatusOK {
		r.Err, _ = r.Body["error"].(string)
		if r.Err == "" {
			e.t.Errorf("error answer %d without an error message: %q", resp.StatusCode, data)
		}
	}
	return r
}

// send encodes and posts a batch for gw with its own token.
func (e *env) send(gw string, epoch, first uint64, rs []protocol.Reading, enc string) reply {
	e.t.Helper()
	b, err := protocol.AppendBatch(nil, &protocol.Batch{Gateway: gw, Epoch: epoch, FirstSeq: first, Readings: rs})
	if err != nil {
		e.t.Fatal(err)
	}
	return e.post(e.tok[gw], enc, compress(e.t, enc, b))
}

func (r reply) num(field string) int {
	f, _ := r.Body[field].(float64)
	return int(f)
}

// readings makes n readings spread over devices d0..d(devices-1), one a
// millisecond from t0; the seq i reading is of device i%devices.
func readings(n, devices int, t0 time.Time) []protocol.Reading {
	rs := make([]protocol.Reading, n)
	for i := range rs {
		tm := t0.Add(time.Duration(i) * time.Millisecond).UnixMicro()
		rs[i] = protocol.Reading{
			Device: fmt.Sprintf("dev-%d", i%devices), Name: "temperature", Unit: "Cel",
			Kind: protocol.KindFloat, Value: 20 + float64(i%1000)/100,
			Time: tm, Received: tm + 2500,
		}
	}
	return rs
}

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func keysOf(rs []protocol.Reading) []protocol.Key {
	out := make([]protocol.Key, len(rs))
	for i := range rs {
		out[i] = rs[i].Key()
	}
	return out
}

// checkExactlyOnce checks that the stream holds every wanted reading
// exactly once (field by field) and nothing else.
func checkExactlyOnce(t testing.TB, be *memBackend, want []protocol.Reading) {
	t.Helper()
	got := streamReadings(t, be.records())
	byKey := map[protocol.Key]*protocol.Reading{}
	for i := range want {
		byKey[want[i].Key()] = &want[i]
	}
	seen := map[protocol.Key]int{}
	for i := range got {
		k := got[i].Key()
		seen[k]++
		w, ok := byKey[k]
		switch {
		case !ok:
			t.Errorf("stream holds an unexpected reading %v", &got[i])
		case seen[k] == 2:
			t.Errorf("stream holds %v more than once", &got[i])
		case !w.Equal(&got[i]):
			t.Errorf("stream reading %+v differs from the one sent %+v", got[i], *w)
		}
	}
	missing := 0
	for k := range byKey {
		if seen[k] == 0 {
			missing++
		}
	}
	if missing > 0 {
		t.Errorf("%d of %d readings missing from the stream", missing, len(want))
	}
}

// metric returns the value of a metric (see metricstest.Value).
func (e *env) metric(name string, labels ...string) float64 {
	e.t.Helper()
	return metricstest.Value(e.t, e.reg, name, labels...)
}
