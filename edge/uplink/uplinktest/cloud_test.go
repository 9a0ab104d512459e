package uplinktest_test

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"
	"go.uber.org/goleak"

	"github.com/tributary-iot/tributary/edge/uplink/uplinktest"
	"github.com/tributary-iot/tributary/protocol"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var tokens = map[string]string{"gw-1": "tok-1", "gw-2": "tok-2"}

func batch(t *testing.T, gw string, epoch, first uint64, n int) ([]byte, []protocol.Reading) {
	t.Helper()
	rs := make([]protocol.Reading, n)
	for i := range rs {
		tm := int64(1_764_000_000_000_000 + int64(first+uint64(i))*1000)
		rs[i] = protocol.Reading{Device: "d1", Name: "temperature", Unit: "Cel", Kind: protocol.KindFloat,
			Value: 21.5, Time: tm, Received: tm + 10}
	}
	b, err := protocol.AppendBatch(nil, &protocol.Batch{Gateway: gw, Epoch: epoch, FirstSeq: first, Readings: rs})
	if err != nil {
		t.Fatal(err)
	}
	return b, rs
}

type reply struct {
	status int
	err    string
	retry  string
}

func post(t *testing.T, c *http.Client, url, token, enc string, body []byte) reply {
	t.Helper()
	switch enc {
	case "zstd":
		e, _ := zstd.NewWriter(nil)
		body = e.EncodeAll(body, nil)
		e.Close()
	case "gzip":
		var buf bytes.Buffer
		w := gzip.NewWriter(&buf)
		w.Write(body)
		w.Close()
		body = buf.Bytes()
	}
	req, _ := http.NewRequest(http.MethodPost, url+uplinktest.IngestPath, bytes.NewReader(body))
	req.Header.Set("Content-Type", protocol.ContentTypeBatch)
	if enc != "" {
		req.Header.Set("Content-Encoding", strings.TrimSuffix(enc, "-corrupt"))
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	r := reply{status: resp.StatusCode, retry: resp.Header.Get("Retry-After")}
	if resp.StatusCode != http.StatusOK {
		var e struct{ Error string }
		if err := json.Unmarshal(data, &e); err != nil || e.Error == "" {
			t.Errorf("error body %q is not {\"error\": ...}", data)
		}
		r.err = e.Error
	}
	return r
}

func TestContract(t *testing.T) {
	cloud := uplinktest.NewServer(t, uplinktest.Options{Tokens: tokens, MaxBytes: 64 << 10})
	c, url := cloud.Client(), cloud.URL()
	b1, rs1 := batch(t, "gw-1", 1, 1, 10)
	for _, tc := range []struct {
		name, token, enc string
		body             []byte
		status           int
		msg              string
	}{
		{"no token", "", "", b1, 401, "missing bearer token"},
		{"unknown token", "nope", "", b1, 401, "unknown token"},
		{"another gateway's token", "tok-2", "", b1, 401, "not valid for gateway gw-1"},
		{"unsupported encoding", "tok-1", "br", b1, 415, "unsupported content encoding"},
		{"corrupt zstd", "tok-1", "zstd-corrupt", b1, 400, "zstd"},
		{"malformed", "tok-1", "", []byte{0xa0}, 400, "version is missing"},
		{"too large", "tok-1", "", make([]byte, 65<<10), 413, ""},
		{"identity", "tok-1", "", b1, 200, ""},
		{"zstd resent", "tok-1", "zstd", b1, 200, ""},
		{"gzip resent", "tok-1", "gzip", b1, 200, ""},
	} {
		r := post(t, c, url, tc.token, tc.enc, tc.body)
		if r.status != tc.status || !strings.Contains(r.err, tc.msg) {
			t.Errorf("%s: %d %q, want %d %q", tc.name, r.status, r.err, tc.status, tc.msg)
		}
	}
	if n, d := cloud.Count(), cloud.Duplicates(); n != 10 || d != 2 {
		t.Errorf("%d readings, %d duplicate batches; want 10 and 2", n, d)
	}
	if len(cloud.Batches()) != 3 {
		t.Errorf("batches %+v", cloud.Batches())
	}
	// A partly new batch stores only the new seqs.
	b2, rs2 := batch(t, "gw-1", 1, 6, 10)
	if r := post(t, c, url, "tok-1", "zstd", b2); r.status != 200 {
		t.Fatal(r)
	}
	if n := cloud.Count(); n != 15 {
		t.Errorf("%d readings, want 15", n)
	}
	cloud.AssertExactlyOnce(t, append(uplinktest.Keys(rs1), uplinktest.Keys(rs2[5:])...))
	// The same seqs in another epoch are new.
	b3, rs3 := batch(t, "gw-1", 2, 1, 3)
	post(t, c, url, "tok-1", "", b3)
	// rs3 has the natural keys of rs1[:3]: stored, but not new keys.
	_ = rs3
	if n := cloud.Count(); n != 18 {
		t.Errorf("%d readings, want 18", n)
	}
	if u := cloud.UniqueKeys(); u != 15 {
		t.Errorf("%d unique keys, want 15", u)
	}
}

func TestControls(t *testing.T) {
	cloud := uplinktest.New(uplinktest.Options{Tokens: tokens, RetryAfter: 7 * time.Second})
	defer cloud.Close()
	c, url := cloud.Client(), cloud.URL()
	b, rs := batch(t, "gw-1", 1, 1, 5)

	cloud.SetDown(true)
	if r := post(t, c, url, "tok-1", "", b); r.status != 503 || r.retry != "7" {
		t.Errorf("down: %+v", r)
	}
	cloud.SetDown(false)
	cloud.Throttle(2500 * time.Millisecond)
	if r := post(t, c, url, "tok-1", "", b); r.status != 429 || r.retry != "3" {
		t.Errorf("throttled: %+v", r)
	}
	cloud.Throttle(0)
	cloud.FailNext(2, 502)
	for range 2 {
		if r := post(t, c, url, "tok-1", "", b); r.status != 502 {
			t.Errorf("fail next: %+v", r)
		}
	}
	cloud.LoseNext(1)
	if r := post(t, c, url, "tok-1", "", b); r.status != 503 {
		t.Errorf("lose next: %+v", r)
	}
	if r := post(t, c, url, "tok-1", "", b); r.status != 200 {
		t.Errorf("after: %+v", r)
	}
	if cloud.Count() != 5 || cloud.Duplicates() != 1 {
		t.Errorf("count %d duplicates %d", cloud.Count(), cloud.Duplicates())
	}
	if !cloud.AssertExactlyOnce(t, uplinktest.Keys(rs)) {
		t.Error("AssertExactlyOnce")
	}
	cloud.SetTokens(map[string]string{"gw-1": "new"})
	if r := post(t, c, url, "tok-1", "", b); r.status != 401 {
		t.Errorf("revoked token: %+v", r)
	}
	if n := len(cloud.Requests()); n != 7 {
		t.Errorf("%d requests logged", n)
	}
	cloud.SetLatency(20 * time.Millisecond)
	t0 := time.Now()
	post(t, c, url, "new", "", b)
	if d := time.Since(t0); d < 20*time.Millisecond {
		t.Errorf("latency %v", d)
	}
}
