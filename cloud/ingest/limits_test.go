package ingest_test

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tributary-iot/tributary/cloud/ingest"
	"github.com/tributary-iot/tributary/internal/testenv"
	"github.com/tributary-iot/tributary/protocol"
)

// slowPost sends a POST's headers (Content-Length: len(body)) and the
// first sent bytes of body on a connection of its own, and stalls there.
func (e *env) slowPost(token string, body []byte, sent int) net.Conn {
	e.t.Helper()
	c, err := net.Dial("tcp", e.srv.Listener.Addr().String())
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { c.Close() })
	fmt.Fprintf(c, "POST %s HTTP/1.1\r\nHost: ingest\r\nAuthorization: Bearer %s\r\nContent-Type: %s\r\nContent-Length: %d\r\n\r\n",
		ingest.Path, token, protocol.ContentTypeBatch, len(body))
	if _, err := c.Write(body[:sent]); err != nil {
		e.t.Fatal(err)
	}
	return c
}

// answer reads the answer on a connection of slowPost.
func answer(t testing.TB, c net.Conn) (int, string) {
	t.Helper()
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("reading the answer: %v", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// forge returns tok with its secret changed: the token id (so the
// gateway it names) is right, the secret is not.
func forge(tok string) string {
	i := len(tok) - 4
	c := byte('A')
	if tok[i] == 'A' {
		c = 'B'
	}
	return tok[:i] + string(c) + tok[i+1:]
}

// A slow sender holds one of its own gateway's slots while its body
// trickles in, and none of the shared ones: another gateway's batch goes
// through while the one shared slot stays free; the slow gateway's next
// request is answered 429 with Retry-After at once (and counted); the
// slow body, once complete, is stored.
func TestSlowBodyHoldsOnlyItsGateway(t *testing.T) {
	e := newEnv(t, func(o *ingest.Options) {
		o.MaxInFlight, o.MaxInFlightPerGateway, o.ReadTimeout = 1, 1, time.Minute
	})
	slowRs := readings(10, 1, t0)
	body := encodeBatch(t, "gw-1", 1, 1, slowRs)
	slow := e.slowPost(e.tok["gw-1"], body, 10)
	testenv.WaitFor(t, "the slow request to reach the ingest", 10*time.Second, func() bool {
		return e.metric("tributary_ingest_requests_in_flight") == 1
	})

	other := readings(5, 1, t0.Add(time.Hour))
	if r := e.send("gw-2", 1, 1, other, "zstd"); r.Status != 200 || r.num("stored") != 5 {
		t.Fatalf("gw-2 while gw-1 trickles: %+v", r)
	}
	r := e.send("gw-1", 2, 1, readings(1, 1, t0.Add(2*time.Hour)), "zstd")
	if r.Status != 429 || r.RetryAfter == "" || !strings.Contains(r.Err, "ingest.max_in_flight_per_gateway") {
		t.Errorf("gw-1's second request: %+v, want 429 with Retry-After", r)
	}
	if got := e.metric("tributary_ingest_gateway_busy_total", "gateway", "gw-1"); got != 1 {
		t.Errorf("gateway_busy_total{gw-1} = %v, want 1", got)
	}
	if got := e.metric("tributary_ingest_busy_total"); got != 0 {
		t.Errorf("busy_total = %v: the shared slot was taken", got)
	}

	if _, err := slow.Write(body[10:]); err != nil {
		t.Fatal(err)
	}
	if status, msg := answer(t, slow); status != 200 {
		t.Fatalf("slow body, completed: %d %s", status, msg)
	}
	checkExactlyOnce(t, e.be, append(slowRs, other...))
}

// A body that does not arrive within ReadTimeout is answered 408 (and
// counted), nothing of it is stored, and its gateway's slot is free again.
func TestSlowBodyCutOff(t *testing.T) {
	e := newEnv(t, func(o *ingest.Options) {
		o.MaxInFlightPerGateway, o.ReadTimeout = 1, 100*time.Millisecond
	})
	body := encodeBatch(t, "gw-1", 1, 1, readings(10, 1, t0))
	slow := e.slowPost(e.tok["gw-1"], body, 10)
	if status, msg := answer(t, slow); status != 408 || !strings.Contains(msg, "ingest.read_timeout") {
		t.Errorf("stalled body: %d %s, want 408", status, msg)
	}
	if got := e.metric("tributary_ingest_slow_bodies_total"); got != 1 {
		t.Errorf("slow_bodies_total = %v, want 1", got)
	}
	if n := e.be.count(); n != 0 {
		t.Errorf("%d records stored from a cut-off body", n)
	}
	rs := readings(3, 1, t0)
	if r := e.send("gw-1", 1, 1, rs, "zstd"); r.Status != 200 {
		t.Fatalf("gw-1 after the cut-off: %+v", r)
	}
	checkExactlyOnce(t, e.be, rs)
}

// Someone who knows a gateway's id (its token's id) but not its secret
// cannot hold off that gateway: requests with forged tokens, stalled
// mid-body or sent in a flood, are answered 401 on their headers and hold
// no slot, so the gateway's own batches all go through, with one shared
// slot and one slot per gateway.
func TestForgedTokensCannotStarveGateway(t *testing.T) {
	e := newEnv(t, func(o *ingest.Options) { o.MaxInFlight, o.MaxInFlightPerGateway = 1, 1 })
	forged := forge(e.tok["gw-1"])
	if forged == e.tok["gw-1"] {
		t.Fatal("forge did not change the token")
	}
	bogus := encodeBatch(t, "gw-1", 1, 1, readings(100, 4, t0.Add(-time.Hour)))

	// Stalled mid-body: answered 401 without waiting for the rest, and
	// the connection is closed.
	var stalled []net.Conn
	for range 50 {
		stalled = append(stalled, e.slowPost(forged, bogus, 10))
	}
	for _, c := range stalled {
		if status, _ := answer(t, c); status != 401 {
			t.Fatalf("stalled forged request: %d, want 401", status)
		}
	}

	// A flood beside the gateway's own uploads.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var mu sync.Mutex
	floodStatus := map[int]int{}
	for range 4 {
		wg.Go(func() {
			client := &http.Client{}
			for {
				select {
				case <-stop:
					return
				default:
				}
				req, _ := http.NewRequest(http.MethodPost, e.srv.URL+ingest.Path, bytes.NewReader(bogus))
				req.Header.Set("Authorization", "Bearer "+forged)
				req.Header.Set("Content-Type", protocol.ContentTypeBatch)
				resp, err := client.Do(req)
				if err != nil {
					continue // the server closes refused connections
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				mu.Lock()
				floodStatus[resp.StatusCode]++
				mu.Unlock()
			}
		})
	}
	rs := readings(100, 4, t0)
	for i := range 20 {
		if r := e.send("gw-1", 1, uint64(i*5+1), rs[i*5:i*5+5], "zstd"); r.Status != 200 || r.num("stored") != 5 {
			t.Errorf("gw-1's batch %d during the flood: %+v", i, r)
		}
	}
	close(stop)
	wg.Wait()
	for status, n := range floodStatus {
		if status != 401 {
			t.Errorf("%d forged requests answered %d, want 401", n, status)
		}
	}
	if floodStatus[401] == 0 {
		t.Error("no forged request was answered")
	}
	if got := e.metric("tributary_ingest_gateway_busy_total") + e.metric("tributary_ingest_busy_total"); got != 0 {
		t.Errorf("%v requests refused as busy: forged requests took slots", got)
	}
	checkExactlyOnce(t, e.be, rs) // the forged readings (an hour earlier) are nowhere
}

// hideLength makes a request body of unknown length (sent chunked).
type hideLength struct{ r io.Reader }

func (h hideLength) Read(p []byte) (int, error) { return h.r.Read(p) }

// The refusals TestContract and TestBombStream do not cover, each with
// nothing stored: a forged token naming a real gateway, a batch that
// claims another gateway than its token's, compressed bodies altered on
// the way (their checksums catch it) and an oversized body sent without a
// length.
func TestRefusalsStoreNothing(t *testing.T) {
	e := newEnv(t, func(o *ingest.Options) { o.MaxBytes = 64 << 10 })
	rs := readings(50, 2, t0)
	tamper := func(b []byte) []byte {
		b = bytes.Clone(b)
		b[len(b)/2] ^= 0x55
		return b
	}
	for _, tc := range []struct {
		name, token, enc string
		body             []byte
		status           int
		msg              string
	}{
		{"forged token of gw-1", forge(e.tok["gw-1"]), "", encodeBatch(t, "gw-1", 1, 1, rs), 401, "unknown or revoked token"},
		{"batch claiming gw-2 with gw-1's token", e.tok["gw-1"], "", encodeBatch(t, "gw-2", 1, 1, rs), 403, "the token is gateway gw-1's, the batch is from gateway gw-2"},
		{"tampered zstd", e.tok["gw-1"], "zstd", tamper(compress(t, "zstd", encodeBatch(t, "gw-1", 1, 1, rs))), 400, "zstd"},
		{"tampered gzip", e.tok["gw-1"], "gzip", tamper(compress(t, "gzip", encodeBatch(t, "gw-1", 1, 1, rs))), 400, "gzip"},
	} {
		r := e.post(tc.token, tc.enc, tc.body)
		if r.Status != tc.status || !strings.Contains(r.Err, tc.msg) {
			t.Errorf("%s: %d %q, want %d %q", tc.name, r.Status, r.Err, tc.status, tc.msg)
		}
		if n := e.be.count(); n != 0 {
			t.Fatalf("%s: %d records stored", tc.name, n)
		}
	}

	req, _ := http.NewRequest(http.MethodPost, e.srv.URL+ingest.Path, hideLength{bytes.NewReader(make([]byte, 65<<10))})
	req.Header.Set("Authorization", "Bearer "+e.tok["gw-1"])
	req.Header.Set("Content-Type", protocol.ContentTypeBatch)
	resp, err := e.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 413 || !strings.Contains(string(b), "body over 65536 bytes") {
		t.Errorf("oversized chunked body: %d %s, want 413", resp.StatusCode, b)
	}
	if n := e.be.count(); n != 0 {
		t.Fatalf("oversized chunked body: %d records stored", n)
	}
	if got := e.metric("tributary_ingest_readings_total"); got != 0 {
		t.Errorf("readings_total = %v after refusals only", got)
	}
}
