package ingest_test

import (
	"bytes"
	"encoding/hex"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"

	"github.com/tributary-iot/tributary/cloud/ingest"
	"github.com/tributary-iot/tributary/protocol"
)

func encodeBatch(t testing.TB, gw string, epoch, first uint64, rs []protocol.Reading) []byte {
	t.Helper()
	b, err := protocol.AppendBatch(nil, &protocol.Batch{Gateway: gw, Epoch: epoch, FirstSeq: first, Readings: rs})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestContract: every refusal is a JSON error with the contract's status,
// nothing of a refused batch is stored, and every encoding is accepted.
func TestContract(t *testing.T) {
	e := newEnv(t, func(o *ingest.Options) { o.MaxBytes = 256 << 10 })
	rs := readings(10, 2, t0)
	good := encodeBatch(t, "gw-1", 1, 1, rs)
	v2 := bytes.Replace(good, []byte{0x00, 0x82, 0x01, 0x00}, []byte{0x00, 0x82, 0x02, 0x00}, 1) // version [2, 0]
	if bytes.Equal(v2, good) {
		t.Fatal("could not make a version 2 batch")
	}
	fixture, _ := os.ReadFile("../../protocol/testdata/batch-v1.hex")
	v1, _ := hex.DecodeString(strings.Join(strings.Fields(string(fixture)), ""))
	relative := readings(1, 1, t0)
	relative[0].Time = 1_000_000 // 1 s after the epoch: not absolute
	revoked, err := e.tokens.Issue("gw-9")
	if err != nil {
		t.Fatal(err)
	}
	if err := e.tokens.Revoke("gw-9"); err != nil {
		t.Fatal(err)
	}
	zeros := make([]byte, 8<<20)

	for _, tc := range []struct {
		name, token, enc string
		body             []byte
		hdr              []string
		status           int
		msg              string
	}{
		{"no token", "", "", good, nil, 401, "missing bearer token"},
		{"unknown token", "trib_nope", "", good, nil, 401, "unknown or revoked token"},
		{"revoked token", revoked, "", good, nil, 401, "unknown or revoked token"},
		{"basic auth", "", "", good, []string{"Authorization", "Basic Z3c6cHc="}, 401, "missing bearer token"},
		{"another gateway's token", e.tok["gw-2"], "", good, nil, 403, "the token is gateway gw-2's, the batch is from gateway gw-1"},
		{"wrong content type", e.tok["gw-1"], "", good, []string{"Content-Type", "application/json"}, 415, "content type"},
		{"unsupported encoding", e.tok["gw-1"], "br", good, nil, 415, `unsupported content encoding "br"`},
		{"corrupt zstd", e.tok["gw-1"], "zstd", good, nil, 400, "zstd"},
		{"corrupt gzip", e.tok["gw-1"], "gzip", good, nil, 400, "gzip"},
		{"garbage", e.tok["gw-1"], "", []byte("hello, cloud"), nil, 400, "protocol: batch"},
		{"empty map", e.tok["gw-1"], "", []byte{0xa0}, nil, 400, "version is missing"},
		{"empty body", e.tok["gw-1"], "", nil, nil, 400, "protocol: batch"},
		{"version 2", e.tok["gw-1"], "", v2, nil, 400, "upgrade the cloud before the gateways"},
		{"relative time", e.tok["gw-1"], "", encodeBatch(t, "gw-1", 1, 100, relative), nil, 400, "absolute times"},
		{"too large", e.tok["gw-1"], "", make([]byte, 257<<10), nil, 413, "limit 262144"},
		{"zstd bomb", e.tok["gw-1"], "zstd", compress(t, "zstd", zeros), nil, 413, "decompressed body over"},
		{"gzip bomb", e.tok["gw-1"], "gzip", compress(t, "gzip", zeros), nil, 413, "decompressed body over"},
		{"zstd multi-frame bomb", e.tok["gw-1"], "zstd", zstdFrames(t, 200, 128<<10), nil, 413, "decompressed body over"},
		{"protocol fixture (gw-1, epoch 3)", e.tok["gw-1"], "", v1, nil, 200, ""},
	} {
		r := e.post(tc.token, tc.enc, tc.body, tc.hdr...)
		if r.Status != tc.status || !strings.Contains(r.Err, tc.msg) {
			t.Errorf("%s: %d %q, want %d %q", tc.name, r.Status, r.Err, tc.status, tc.msg)
		}
	}
	if n := e.be.count(); n != 1 { // the fixture's two readings, one device: one record
		t.Fatalf("%d records stored after the refusals, want the fixture's only", n)
	}

	for i, enc := range []string{"", "identity", "zstd", "gzip"} {
		r := e.post(e.tok["gw-1"], enc, compress(t, enc, good))
		if r.Status != 200 {
			t.Fatalf("%q: %+v", enc, r)
		}
		if want := map[bool]int{true: 10, false: 0}[i == 0]; r.num("stored") != want || r.num("duplicates") != 10-want {
			t.Errorf("%q: answer %v", enc, r.Body)
		}
		if r.num("first") != 1 || r.num("last") != 10 || r.num("epoch") != 1 || r.Body["gateway"] != "gw-1" {
			t.Errorf("answer %v", r.Body)
		}
	}
	// GET is not allowed.
	resp, err := http.Get(e.srv.URL + ingest.Path)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 405 {
		t.Errorf("GET: %d", resp.StatusCode)
	}

	fixtureReadings := func() []protocol.Reading {
		b, err := protocol.DecodeBatch(v1)
		if err != nil {
			t.Fatal(err)
		}
		return b.Readings
	}()
	checkExactlyOnce(t, e.be, append(rs, fixtureReadings...))
	for code, want := range map[string]float64{"200": 5, "401": 4, "403": 1, "415": 2, "400": 7, "413": 4, "405": 1} {
		if got := e.metric("tributary_ingest_requests_total", "code", code); got != want {
			t.Errorf("requests{code=%s} = %v, want %v", code, got, want)
		}
	}
	if got := e.metric("tributary_ingest_duplicate_readings_total"); got != 30 {
		t.Errorf("duplicates = %v, want 30", got)
	}
	if got := e.metric("tributary_ingest_readings_total"); got != 12 {
		t.Errorf("readings = %v, want 12", got)
	}
	if e.metric("tributary_ingest_received_bytes_total", "form", "wire") == 0 || e.metric("tributary_ingest_received_bytes_total", "form", "raw") == 0 {
		t.Error("byte counters are zero")
	}
	if e.metric("tributary_ingest_backend_put_seconds") != 2 {
		t.Errorf("backend put latency samples: %v", e.metric("tributary_ingest_backend_put_seconds"))
	}
}

// zstdFrames concatenates n frames that each decode to size zero bytes,
// without a content size in their headers and with a small window, so
// that only the output limit can stop them.
func zstdFrames(t testing.TB, n, size int) []byte {
	t.Helper()
	w, err := zstd.NewWriter(nil, zstd.WithSingleSegment(false), zstd.WithWindowSize(64<<10))
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	for range n {
		var frame bytes.Buffer
		w.Reset(&frame)
		w.Write(make([]byte, size))
		w.Close()
		out.Write(frame.Bytes())
	}
	return out.Bytes()
}

// Records: one device's readings of one batch, in seq order, keyed by the
// device, split at 25 KiB; every field survives.
func TestRecords(t *testing.T) {
	e := newEnv(t, nil)
	rs := readings(3000, 3, t0) // 1,000 readings per device: more than 25 KiB each
	rs[7].Kind, rs[7].Value, rs[7].Str = protocol.KindString, 0, "door open"
	rs[8].Kind, rs[8].Value, rs[8].Bool = protocol.KindBool, 0, true
	rs[9].Kind, rs[9].Value, rs[9].HasSum, rs[9].Sum = protocol.KindNone, 0, true, 1234.5
	rs[10].Kind, rs[10].Value, rs[10].Data = protocol.KindData, 0, []byte{1, 2, 3}
	rs[11].Flags = protocol.FlagReceiverTime | protocol.FlagClockUnsynced
	if r := e.send("gw-1", 7, 500, rs, "zstd"); r.Status != 200 || r.num("stored") != 3000 {
		t.Fatalf("%+v", r)
	}
	recs := e.be.records()
	checkExactlyOnce(t, e.be, rs)
	perDevice := map[string][]protocol.Reading{}
	for _, r := range recs {
		if len(r.Data) > protocol.TargetRecordBytes {
			t.Errorf("record of %d bytes, over the 25 KiB target", len(r.Data))
		}
		rec, err := protocol.DecodeRecord(r.Data)
		if err != nil {
			t.Fatal(err)
		}
		if rec.Gateway != "gw-1" {
			t.Errorf("record gateway %q", rec.Gateway)
		}
		for _, x := range rec.Readings {
			if x.Device != rec.Device {
				t.Errorf("reading of %s in a record of %s", x.Device, rec.Device)
			}
		}
		perDevice[rec.Device] = append(perDevice[rec.Device], rec.Readings...)
	}
	if len(recs) < 6 {
		t.Errorf("%d records for 3 devices of ~30 KiB each: not split", len(recs))
	}
	for dev, got := range perDevice {
		for i := 1; i < len(got); i++ {
			if got[i].Time <= got[i-1].Time {
				t.Fatalf("device %s: readings out of seq order at %d", dev, i)
			}
		}
	}
}

// A resent batch is acknowledged again and stored once; a batch that
// partly overlaps stores only its new seqs; another epoch is new.
func TestDedupe(t *testing.T) {
	e := newEnv(t, nil)
	rs := readings(30, 3, t0)
	if r := e.send("gw-1", 1, 1, rs[:10], "zstd"); r.num("stored") != 10 {
		t.Fatalf("%+v", r)
	}
	if r := e.send("gw-1", 1, 1, rs[:10], "gzip"); r.Status != 200 || r.num("stored") != 0 || r.num("duplicates") != 10 {
		t.Fatalf("resend: %+v", r)
	}
	// Overlap [6, 15]: 11..15 are new.
	if r := e.send("gw-1", 1, 6, rs[5:15], "zstd"); r.Status != 200 || r.num("stored") != 5 || r.num("duplicates") != 5 {
		t.Fatalf("overlap: %+v", r)
	}
	// An island [21, 30], then [1, 30] fills the gap 16..20 only.
	if r := e.send("gw-1", 1, 21, rs[20:30], ""); r.num("stored") != 10 {
		t.Fatalf("%+v", r)
	}
	if r := e.send("gw-1", 1, 1, rs, ""); r.Status != 200 || r.num("stored") != 5 || r.num("duplicates") != 25 {
		t.Fatalf("fill: %+v", r)
	}
	checkExactlyOnce(t, e.be, rs)

	// Across a restart of the ingest (same data folder).
	e.restart()
	if r := e.send("gw-1", 1, 1, rs, "zstd"); r.Status != 200 || r.num("stored") != 0 {
		t.Fatalf("after restart: %+v", r)
	}
	if r := e.send("gw-1", 1, 31, readings(1, 1, t0.Add(time.Hour)), "zstd"); r.num("stored") != 1 {
		t.Fatalf("after restart, new: %+v", r)
	}
	// Same seqs, another epoch or another gateway: new.
	if r := e.send("gw-1", 2, 1, rs[:3], ""); r.num("stored") != 3 {
		t.Fatalf("epoch 2: %+v", r)
	}
	if r := e.send("gw-2", 1, 1, rs[:3], ""); r.num("stored") != 3 {
		t.Fatalf("gw-2: %+v", r)
	}
	if n := len(streamReadings(t, e.be.records())); n != 30+1+3+3 {
		t.Errorf("%d readings in the stream", n)
	}
}

// Concurrent requests with overlapping ranges of one (gateway, epoch)
// never both write a seq.
func TestConcurrentOverlap(t *testing.T) {
	e := newEnv(t, nil)
	rs := readings(400, 5, t0)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := 0; i < 10; i++ {
				lo := (g*37 + i*53) % 350
				n := 1 + (g+i)%50
				if r := e.send("gw-1", 1, uint64(lo)+1, rs[lo:lo+n], "zstd"); r.Status != 200 {
					t.Errorf("%+v", r)
					return
				}
			}
		})
	}
	wg.Wait()
	// Everything once, whatever was missed now.
	if r := e.send("gw-1", 1, 1, rs, "zstd"); r.Status != 200 {
		t.Fatal(r)
	}
	checkExactlyOnce(t, e.be, rs)
}

// The backend throttles: retried inside the request for ThrottleWait,
// then 429 with Retry-After and nothing acknowledged that was not written.
func TestThrottle(t *testing.T) {
	e := newEnv(t, func(o *ingest.Options) { o.RetryAfter = 3 * time.Second })
	rs := readings(40, 8, t0)

	// Every shard at capacity: 429, nothing written, nothing acked.
	e.be.setThrottle(func(int) bool { return true })
	r := e.send("gw-1", 1, 1, rs, "zstd")
	if r.Status != 429 || r.RetryAfter != "3" || !strings.Contains(r.Err, "at capacity") {
		t.Fatalf("%+v", r)
	}
	if e.be.count() != 0 {
		t.Fatal("records written")
	}
	if e.metric("tributary_ingest_throttled_records_total") == 0 {
		t.Error("throttles not counted")
	}

	// One shard at capacity: the other shards' records are written and
	// acknowledged; the resend writes only the rest.
	hot := e.be.shardOf("dev-0")
	e.be.setThrottle(func(sh int) bool { return sh == hot })
	if r := e.send("gw-1", 1, 1, rs, "zstd"); r.Status != 429 {
		t.Fatalf("%+v", r)
	}
	if e.be.count() == 0 {
		t.Fatal("nothing written for the shards with capacity")
	}
	e.be.setThrottle(nil)
	r = e.send("gw-1", 1, 1, rs, "zstd")
	if r.Status != 200 || r.num("stored") == 0 || r.num("stored") == 40 {
		t.Fatalf("resend: %+v", r)
	}
	checkExactlyOnce(t, e.be, rs)

	// A brief throttle is absorbed inside the request.
	n := 0
	e.be.setThrottle(func(int) bool { n++; return n <= 3 })
	more := readings(10, 2, t0.Add(time.Hour))
	if r := e.send("gw-1", 1, 41, more, "zstd"); r.Status != 200 || r.num("stored") != 10 {
		t.Fatalf("brief throttle: %+v", r)
	}
	if got := e.metric("tributary_ingest_uncertain_readings"); got != 0 {
		t.Errorf("uncertain readings %v after definite outcomes", got)
	}
}

// The backend fails: before writing → 503, nothing written; after writing
// (an unknown outcome, as a crash between the write and the ack would
// leave it) → 503, and the resend writes again: duplicates in the stream,
// counted and logged, also across a restart.
func TestBackendFailure(t *testing.T) {
	e := newEnv(t, func(o *ingest.Options) { o.RetryAfter = 2 * time.Second })
	rs := readings(20, 2, t0)
	e.be.failNext(1, 0)
	if r := e.send("gw-1", 1, 1, rs, "zstd"); r.Status != 503 || r.RetryAfter != "2" {
		t.Fatalf("%+v", r)
	}
	if e.be.count() != 0 {
		t.Fatal("written")
	}
	// The outcome of that failure is unknown to the ingest: those seqs
	// are uncertain until resent.
	if got := e.metric("tributary_ingest_uncertain_readings"); got != 20 {
		t.Errorf("uncertain = %v, want 20", got)
	}
	e.be.failNext(0, 1)
	if r := e.send("gw-1", 1, 1, rs, "zstd"); r.Status != 503 {
		t.Fatalf("%+v", r)
	}
	if e.be.count() != 2 {
		t.Fatalf("%d records", e.be.count())
	}
	e.restart()
	if got := e.metric("tributary_ingest_uncertain_readings"); got != 20 {
		t.Errorf("after restart: uncertain = %v, want 20", got)
	}
	if !strings.Contains(e.logs.String(), "may appear twice") {
		t.Error("restart does not report the uncertain readings")
	}
	if r := e.send("gw-1", 1, 1, rs, "zstd"); r.Status != 200 || r.num("stored") != 20 {
		t.Fatalf("resend: %+v", r)
	}
	if got := e.metric("tributary_ingest_possible_duplicate_readings_total"); got != 20 {
		t.Errorf("possible duplicates = %v, want 20", got)
	}
	if got := e.metric("tributary_ingest_uncertain_readings"); got != 0 {
		t.Errorf("uncertain = %v after the resend", got)
	}
	if n := len(streamReadings(t, e.be.records())); n != 40 {
		t.Errorf("%d readings in the stream, want 40 (the documented duplicate)", n)
	}
	if r := e.send("gw-1", 1, 1, rs, "zstd"); r.num("stored") != 0 {
		t.Fatalf("second resend: %+v", r)
	}

	// Per-entry unknown outcomes: the known-written records are
	// acknowledged, only the unknown ones are written again.
	more := readings(40, 8, t0.Add(time.Hour))
	hot := e.be.shardOf("dev-1")
	e.be.with(func(m *memBackend) { m.unknown = func(sh int) bool { return sh == hot } })
	if r := e.send("gw-1", 1, 21, more, "zstd"); r.Status != 503 {
		t.Fatalf("%+v", r)
	}
	e.be.with(func(m *memBackend) { m.unknown = nil })
	uncertain := e.metric("tributary_ingest_uncertain_readings")
	if uncertain == 0 || uncertain == 40 {
		t.Fatalf("uncertain = %v: want the hot shard's readings only", uncertain)
	}
	r := e.send("gw-1", 1, 21, more, "zstd")
	if r.Status != 200 || float64(r.num("stored")) != uncertain {
		t.Fatalf("resend: %+v, uncertain %v", r, uncertain)
	}
	if got := e.metric("tributary_ingest_possible_duplicate_readings_total"); got != 20+uncertain {
		t.Errorf("possible duplicates = %v, want %v", got, 20+uncertain)
	}
}

// A crash between the backend write and the ack (here: the ingest is
// closed under the request) leaves the seqs pending; the next run reports
// them, and the resend writes them again: the at-least-once window,
// counted exactly.
func TestCrashBetweenWriteAndAck(t *testing.T) {
	e := newEnv(t, nil)
	rs := readings(20, 2, t0)
	var once sync.Once
	e.be.with(func(m *memBackend) {
		m.afterWrite = func() {
			once.Do(func() {
				e.h.Store(nil)
				e.in.Close() // the process dies: the ack is never recorded
			})
		}
	})
	if r := e.send("gw-1", 1, 1, rs, "zstd"); r.Status != 503 {
		t.Fatalf("%+v", r)
	}
	e.be.with(func(m *memBackend) { m.afterWrite = nil })
	e.start()
	if got := e.metric("tributary_ingest_uncertain_readings"); got != 20 {
		t.Errorf("uncertain after the crash = %v, want 20", got)
	}
	if r := e.send("gw-1", 1, 1, rs, "zstd"); r.Status != 200 || r.num("stored") != 20 {
		t.Fatalf("resend: %+v", r)
	}
	if got := e.metric("tributary_ingest_possible_duplicate_readings_total"); got != 20 {
		t.Errorf("possible duplicates = %v, want 20", got)
	}
	got := streamReadings(t, e.be.records())
	if len(got) != 40 {
		t.Errorf("%d readings in the stream, want each of 20 twice", len(got))
	}
}

// Writes go in chunks of at most 500 records and 5 MiB.
func TestChunks(t *testing.T) {
	e := newEnv(t, nil)
	rs := readings(1200, 1200, t0) // 1,200 devices: 1,200 records
	if r := e.send("gw-1", 1, 1, rs, "zstd"); r.Status != 200 || r.num("stored") != 1200 {
		t.Fatalf("%+v", r)
	}
	var calls []int
	e.be.with(func(m *memBackend) { calls = slices.Clone(m.putEntries) })
	slices.Sort(calls) // one record per device: the chunks go concurrently
	if !slices.Equal(calls, []int{200, 500, 500}) {
		t.Errorf("put calls %v, want 500, 500 and 200", calls)
	}
	checkExactlyOnce(t, e.be, rs)
}

// A device whose records fall in two chunks keeps its order: the chunks
// are then written one after the other.
func TestChunksKeepDeviceOrder(t *testing.T) {
	e := newEnv(t, nil)
	// 499 devices with one small record each, then one device with
	// readings enough for several 25 KiB records: it straddles the
	// first chunk's edge.
	rs := readings(499, 499, t0)
	for i := range 3000 {
		tm := t0.Add(time.Hour + time.Duration(i)*time.Millisecond).UnixMicro()
		rs = append(rs, protocol.Reading{Device: "zz-big", Name: "humidity", Unit: "%RH", Kind: protocol.KindFloat,
			Value: float64(i), Time: tm, Received: tm + 1000})
	}
	if r := e.send("gw-1", 1, 1, rs, "zstd"); r.Status != 200 || r.num("stored") != len(rs) {
		t.Fatalf("%+v", r)
	}
	var calls []int
	e.be.with(func(m *memBackend) { calls = slices.Clone(m.putEntries) })
	if len(calls) < 2 || calls[0] != 500 {
		t.Fatalf("put calls %v: want a first chunk of 500 ending inside zz-big's records", calls)
	}
	// zz-big's values in stream order are ascending.
	last := -1.0
	for _, r := range streamReadings(t, e.be.records()) {
		if r.Device == "zz-big" {
			if r.Value < last {
				t.Fatalf("zz-big out of order: %v after %v", r.Value, last)
			}
			last = r.Value
		}
	}
	checkExactlyOnce(t, e.be, rs)
}

// Epochs idle longer than EpochTTL are forgotten.
func TestExpire(t *testing.T) {
	now := t0
	e := newEnv(t, func(o *ingest.Options) {
		o.Now = func() time.Time { return now }
		o.EpochTTL = 24 * time.Hour
	})
	rs := readings(5, 1, t0)
	e.send("gw-1", 1, 1, rs, "")
	now = now.Add(23 * time.Hour)
	e.send("gw-1", 2, 1, rs, "")
	now = now.Add(2 * time.Hour)
	if err := e.in.Expire(); err != nil {
		t.Fatal(err)
	}
	if r := e.send("gw-1", 2, 1, rs, ""); r.num("stored") != 0 {
		t.Errorf("epoch 2 forgotten too early: %+v", r)
	}
	if r := e.send("gw-1", 1, 1, rs, ""); r.num("stored") != 5 {
		t.Errorf("epoch 1 not forgotten: %+v", r)
	}
	if e.metric("tributary_ingest_expired_epochs_total") != 1 {
		t.Error("expiry not counted")
	}
}

// Bounded: more islands than MaxSpans forget the lowest ones.
func TestMaxSpans(t *testing.T) {
	e := newEnv(t, func(o *ingest.Options) { o.MaxSpans = 4 })
	rs := readings(20, 1, t0)
	for i := 0; i < 20; i += 2 { // islands 1, 3, 5, ...
		e.send("gw-1", 1, uint64(i)+1, rs[i:i+1], "")
	}
	if e.metric("tributary_ingest_forgotten_ranges_total") != 6 {
		t.Errorf("forgotten = %v", e.metric("tributary_ingest_forgotten_ranges_total"))
	}
	// The newest islands are remembered, the oldest not.
	if r := e.send("gw-1", 1, 19, rs[18:19], ""); r.num("stored") != 0 {
		t.Errorf("newest island forgotten: %+v", r)
	}
	if r := e.send("gw-1", 1, 1, rs[0:1], ""); r.num("stored") != 1 {
		t.Errorf("oldest island remembered: %+v", r)
	}
}

// A second process cannot open the same ack log.
func TestAckLogLocked(t *testing.T) {
	e := newEnv(t, nil)
	_, err := ingest.New(t.Context(), ingest.Options{Backend: e.be, Tokens: e.tokens, Path: e.dir + "/ingest.db"})
	if err == nil || !strings.Contains(err.Error(), "in use by another process") {
		t.Errorf("second open: %v", err)
	}
}

// Busy: past MaxInFlight requests wait SlotWait, then 503.
func TestBusy(t *testing.T) {
	block, entered := make(chan struct{}), make(chan struct{}, 1)
	e := newEnv(t, func(o *ingest.Options) { o.MaxInFlight = 1; o.SlotWait = 20 * time.Millisecond })
	e.be.setThrottle(func(int) bool {
		entered <- struct{}{}
		<-block
		return false
	})
	done := make(chan reply)
	go func() { done <- e.send("gw-1", 1, 1, readings(1, 1, t0), "") }()
	<-entered // the first request holds the slot, writing
	r := e.send("gw-2", 1, 1, readings(1, 1, t0), "")
	close(block)
	if r.Status != 503 || r.RetryAfter == "" || !strings.Contains(r.Err, "busy") {
		t.Errorf("%+v", r)
	}
	if r := <-done; r.Status != 200 {
		t.Errorf("first: %+v", r)
	}
}

// With a backend that can be read back, the crash window closes: readings
// written by a request whose outcome was lost are found in the stream
// after a restart and acknowledged without being written again.
func TestCrashWindowSettledByScanner(t *testing.T) {
	e := newEnv(t, func(o *ingest.Options) { o.Backend = scanBackend{o.Backend.(*memBackend)} })
	rs := readings(20, 2, t0)
	e.be.failNext(0, 1) // written, then the outcome is lost
	if r := e.send("gw-1", 1, 1, rs, "zstd"); r.Status != 503 {
		t.Fatalf("%+v", r)
	}
	e.restart()
	if got := e.metric("tributary_ingest_uncertain_readings"); got != 20 {
		t.Errorf("after restart: uncertain = %v, want 20", got)
	}
	// The resend overlaps new readings: only those are written.
	all := append(append([]protocol.Reading(nil), rs...), readings(10, 2, t0.Add(time.Hour))...)
	r := e.send("gw-1", 1, 1, all, "zstd")
	if r.Status != 200 || r.num("stored") != 10 || r.num("duplicates") != 20 {
		t.Fatalf("resend: %+v, want 10 stored and 20 recognised", r)
	}
	if got := e.metric("tributary_ingest_recovered_readings_total"); got != 20 {
		t.Errorf("recovered = %v, want 20", got)
	}
	if got := e.metric("tributary_ingest_possible_duplicate_readings_total"); got != 0 {
		t.Errorf("possible duplicates = %v, want 0", got)
	}
	if got := e.metric("tributary_ingest_uncertain_readings"); got != 0 {
		t.Errorf("uncertain = %v after the resend", got)
	}
	checkExactlyOnce(t, e.be, all)
	// And once more: everything is acknowledged now.
	if r := e.send("gw-1", 1, 1, all, "zstd"); r.Status != 200 || r.num("stored") != 0 {
		t.Fatalf("second resend: %+v", r)
	}
}
