package uplink_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/tributary-iot/tributary/edge/uplink"
	"github.com/tributary-iot/tributary/edge/uplink/uplinktest"
	"github.com/tributary-iot/tributary/protocol"
)

// Batches are cut at MaxReadings: a backlog present at start goes in full
// batches, and fresh readings too.
func TestBatchesByCount(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		src := uplink.NewMemSource(1)
		all := readings("dev-a", 1000, time.Now())
		src.Append(all...)
		cloud, r := startInProcess(t, src, nil, uplinktest.Options{})
		waitCount(t, cloud, 1000, time.Minute)
		fresh := readings("dev-b", 250, time.Now())
		src.Append(fresh...)
		all = append(all, fresh...)
		waitCount(t, cloud, len(all), time.Minute)
		if err := r.stop(); err != nil {
			t.Fatal(err)
		}
		sizes := map[int]int{}
		for _, b := range cloud.Batches() {
			sizes[b.Readings]++
			if b.Gateway != gateway || b.Epoch != 1 || b.Last-b.First+1 != uint64(b.Readings) {
				t.Errorf("batch %+v", b)
			}
		}
		// 10 backlog batches and 2 fresh ones of 100, then 50 sent at MaxAge.
		if sizes[100] != 12 || sizes[50] != 1 || len(sizes) != 2 {
			t.Errorf("batch sizes %v, want 12×100 and 1×50", sizes)
		}
		cloud.AssertExactlyOnce(t, uplinktest.Keys(all))
		src.CheckAckedOnce(t)
		if s := r.u.Stats(); s.ReadingsAcked != 1250 || s.BatchesSent != 13 || s.Requests != 13 || s.Retries != 0 {
			t.Errorf("stats %s", fmtStats(s))
		}
	})
}

// Batches are cut so that the encoded batch stays within MaxBytes.
func TestBatchesByBytes(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		src := uplink.NewMemSource(1)
		rs := readings("dev-a", 300, time.Now())
		for i := range rs {
			rs[i].Kind, rs[i].Value, rs[i].Str = protocol.KindString, 0, strings.Repeat(string(rune('a'+i%26)), 500)
		}
		src.Append(rs...)
		const maxBytes = 8 << 10
		cloud, r := startInProcess(t, src, func(c *uplink.Config) {
			c.MaxBytes = maxBytes
			c.MaxReadings = 1000
		}, uplinktest.Options{})
		waitCount(t, cloud, len(rs), time.Minute)
		r.stop()
		for _, b := range cloud.Batches() {
			if b.RawBytes > maxBytes || b.RawBytes < maxBytes*3/4 && b.Last != 300 {
				t.Errorf("batch of %d readings is %d bytes encoded, want ≤ %d and close to it", b.Readings, b.RawBytes, maxBytes)
			}
		}
		if n := len(cloud.Batches()); n < 300*500/maxBytes {
			t.Errorf("%d batches", n)
		}
		cloud.AssertExactlyOnce(t, uplinktest.Keys(rs))
		src.CheckAckedOnce(t)
	})
}

// A partial batch goes when its oldest reading has waited MaxAge: measured
// from the gateway's receive time, and never later than MaxAge after the
// uplink first saw it.
func TestBatchAge(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		src := uplink.NewMemSource(1)
		cloud, _ := startInProcess(t, src, func(c *uplink.Config) { c.MaxAge = time.Second }, uplinktest.Options{})
		synctest.Wait()

		rs := readings("dev-a", 3, time.Now())
		for i := range rs {
			rs[i].Received = time.Now().UnixMicro()
		}
		src.Append(rs...)
		time.Sleep(999 * time.Millisecond)
		synctest.Wait()
		if n := cloud.Count(); n != 0 {
			t.Fatalf("%d readings sent before MaxAge", n)
		}
		src.Append(readings("dev-b", 2, time.Now())...) // more readings do not reset the clock
		time.Sleep(2 * time.Millisecond)
		synctest.Wait()
		if bs := cloud.Batches(); len(bs) != 1 || bs[0].Readings != 5 {
			t.Fatalf("batches %+v, want one of 5 readings at MaxAge", bs)
		}

		// Received 800ms ago: 200ms left.
		old := readings("dev-c", 1, time.Now())
		old[0].Received = time.Now().Add(-800 * time.Millisecond).UnixMicro()
		src.Append(old...)
		time.Sleep(199 * time.Millisecond)
		synctest.Wait()
		if n := cloud.Count(); n != 5 {
			t.Fatalf("sent early: %d", n)
		}
		time.Sleep(2 * time.Millisecond)
		synctest.Wait()
		if n := cloud.Count(); n != 6 {
			t.Fatalf("not sent at its age: %d", n)
		}
	})
}

// An outage: the cloud answers 503 with Retry-After while readings keep
// arriving; after it, everything is delivered exactly once.
func TestOutageRecovery(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		src := uplink.NewMemSource(7)
		cloud, r := startInProcess(t, src, func(c *uplink.Config) {
			c.Backoff = uplink.Backoff{} // defaults: 500ms .. 60s
			c.MaxAge = time.Second
		}, uplinktest.Options{RetryAfter: 2 * time.Second})
		var all []protocol.Reading
		produce := func(n int, down bool) {
			for range n {
				rs := readings("dev-"+string(rune('a'+len(all)%7)), 10, time.Now())
				src.Append(rs...)
				all = append(all, rs...)
				time.Sleep(100 * time.Millisecond)
			}
		}
		produce(20, false)
		cloud.SetDown(true)
		outage := time.Now()
		produce(600, true) // 60 s
		cloud.SetDown(false)
		up := time.Now()
		produce(20, false)
		waitCount(t, cloud, len(all), 5*time.Minute)
		if err := r.stop(); err != nil {
			t.Fatal(err)
		}
		cloud.AssertExactlyOnce(t, uplinktest.Keys(all))
		src.CheckAckedOnce(t)
		if d := cloud.Duplicates(); d != 0 {
			t.Errorf("%d duplicate batches", d)
		}
		down := 0
		var prev time.Time
		for _, q := range cloud.Requests() {
			if q.Status != http.StatusServiceUnavailable {
				continue
			}
			down++
			if q.Time.Before(outage) || q.Time.After(up) {
				t.Errorf("503 outside the outage at %v", q.Time)
			}
			// Requests in flight together arrive together; after a 503
			// with Retry-After: 2 none comes sooner.
			if !prev.IsZero() && q.Time.After(prev) && q.Time.Sub(prev) < 2*time.Second {
				t.Errorf("request %v after a 503 with Retry-After: 2", q.Time.Sub(prev))
			}
			prev = q.Time
		}
		if down < 10 {
			t.Errorf("%d requests during a 60s outage", down)
		}
		s := r.u.Stats()
		if s.Failures.Throttled != uint64(down) || s.ReadingsAcked != uint64(len(all)) || s.Backoff != 0 {
			t.Errorf("stats %s", fmtStats(s))
		}
	})
}

// No request arrives before the Retry-After of a 429 has passed.
func TestRetryAfterHonoured(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		src := uplink.NewMemSource(1)
		cloud, _ := startInProcess(t, src, nil, uplinktest.Options{})
		synctest.Wait()
		cloud.Throttle(3 * time.Second)
		rs := readings("dev-a", 250, time.Now())
		src.Append(rs...)
		waitCount(t, cloud, len(rs), time.Minute)
		reqs := cloud.Requests()
		if reqs[0].Status != http.StatusTooManyRequests {
			t.Fatalf("first request %+v", reqs[0])
		}
		t0 := reqs[0].Time
		for _, q := range reqs[1:] {
			// Requests sent together with the first one arrive at t0.
			if q.Time.After(t0) && q.Time.Sub(t0) < 3*time.Second {
				t.Errorf("request %v after a 429 with Retry-After: 3", q.Time.Sub(t0))
			}
		}
		cloud.AssertExactlyOnce(t, uplinktest.Keys(rs))
	})
}

// 413: the batch is split in half until the cloud takes it, and later
// batches are made smaller.
func TestTooLargeSplits(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		src := uplink.NewMemSource(1)
		rs := readings("dev-a", 1000, time.Now())
		src.Append(rs...)
		const limit = 4 << 10
		cloud, r := startInProcess(t, src, func(c *uplink.Config) {
			c.MaxReadings = 1000
			c.MaxInFlight = 1
		}, uplinktest.Options{MaxBytes: limit})
		waitCount(t, cloud, len(rs), time.Minute)
		s := r.u.Stats()
		if s.Failures.TooLarge == 0 || s.Splits == 0 {
			t.Errorf("stats %s", fmtStats(s))
		}
		for _, b := range cloud.Batches() {
			if b.RawBytes > limit {
				t.Errorf("accepted a batch of %d bytes", b.RawBytes)
			}
		}
		more := readings("dev-b", 1000, time.Now())
		src.Append(more...)
		waitCount(t, cloud, 2000, time.Minute)
		if s2 := r.u.Stats(); s2.Failures.TooLarge != s.Failures.TooLarge {
			t.Errorf("413s after lowering the batch size: %d then %d", s.Failures.TooLarge, s2.Failures.TooLarge)
		}
		r.stop()
		cloud.AssertExactlyOnce(t, uplinktest.Keys(append(rs, more...)))
		src.CheckAckedOnce(t)
	})
}

// A 400 the cloud gives once: the batch is bisected and its halves are
// delivered; nothing is lost.
func TestMalformedOnceBisects(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		src := uplink.NewMemSource(1)
		rs := readings("dev-a", 100, time.Now())
		src.Append(rs...)
		cloud := inProcessCloud(t, uplinktest.Options{})
		cloud.FailNext(1, http.StatusBadRequest)
		r := startOn(t, cloud, src, nil)
		waitCount(t, cloud, len(rs), time.Minute)
		r.stop()
		cloud.AssertExactlyOnce(t, uplinktest.Keys(rs))
		src.CheckAckedOnce(t)
		if s := r.u.Stats(); s.Failures.Malformed != 1 || s.Splits != 1 || s.BatchesSent != 2 || s.ParkedReadings != 0 {
			t.Errorf("stats %s", fmtStats(s))
		}
		if err := r.u.Health(); err != nil {
			t.Error(err)
		}
		if !strings.Contains(r.logs.String(), "injected failure 400") {
			t.Errorf("the cloud's message is not logged:\n%s", r.logs)
		}
	})
}

// A 400 for everything (a version or gateway problem): the readings are
// parked, not deleted, the health check fails with the cloud's message,
// and they are delivered once the cloud takes them again.
func TestMalformedKeepsReadings(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		src := uplink.NewMemSource(1)
		rs := readings("dev-a", 100, time.Now())
		src.Append(rs...)
		cloud := inProcessCloud(t, uplinktest.Options{})
		cloud.FailNext(5, http.StatusBadRequest) // the batch, both halves, one retry of each
		r := startOn(t, cloud, src, func(c *uplink.Config) { c.Backoff.Max = 10 * time.Second })
		time.Sleep(time.Second)
		synctest.Wait()
		err := r.u.Health()
		if !errors.Is(err, uplink.ErrRefused) || !strings.Contains(err.Error(), "injected failure 400") {
			t.Errorf("health: %v", err)
		}
		if s := r.u.Stats(); s.ParkedReadings != 100 || s.ParkedRanges != 2 || s.Failures.Malformed != 3 {
			t.Errorf("stats %s", fmtStats(s))
		}
		if n := src.Stored(); n != 100 {
			t.Fatalf("%d readings left in the queue, want all 100", n)
		}
		waitCount(t, cloud, len(rs), time.Minute)
		synctest.Wait()
		if err := r.u.Health(); err != nil {
			t.Errorf("health after recovery: %v", err)
		}
		r.stop()
		cloud.AssertExactlyOnce(t, uplinktest.Keys(rs))
		src.CheckAckedOnce(t)
	})
}

// A reading the cloud always refuses: bisection isolates it, every other
// reading is delivered, and it stays in the queue.
func TestMalformedIsolatesPoison(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		src := uplink.NewMemSource(1)
		rs := readings("dev-a", 200, time.Now())
		rs[137].Name = "poison"
		src.Append(rs...)
		cloud := uplinktest.New(uplinktest.Options{Tokens: tokens})
		defer cloud.Close()
		picky := http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
			body, _ := io.ReadAll(req.Body)
			if b, err := protocol.DecodeBatch(body); err == nil {
				for _, rd := range b.Readings {
					if rd.Name == "poison" {
						w.Header().Set("Content-Type", "application/json")
						w.WriteHeader(http.StatusBadRequest)
						io.WriteString(w, `{"error":"reading `+rd.Device+`/poison: unknown metric"}`)
						return
					}
				}
			}
			req.Body = io.NopCloser(bytes.NewReader(body))
			cloud.ServeHTTP(w, req)
		})
		cfg := config(cloud.URL())
		cfg.Compression = uplink.CompressionNone
		cfg.MaxReadings = 200
		r := start(t, src, cfg, uplink.WithHTTPClient(&http.Client{Transport: handlerRT{picky}}))
		waitCount(t, cloud, 199, time.Minute)
		synctest.Wait()
		if n := src.Stored(); n != 1 {
			t.Errorf("%d readings left in the queue, want the poison one", n)
		}
		err := r.u.Health()
		if !errors.Is(err, uplink.ErrRefused) || !strings.Contains(err.Error(), "unknown metric") {
			t.Errorf("health: %v", err)
		}
		s := r.u.Stats()
		if s.ParkedReadings != 1 || s.Splits > 16 {
			t.Errorf("stats %s", fmtStats(s))
		}
		r.stop()
		want := append(append([]protocol.Reading(nil), rs[:137]...), rs[138:]...)
		cloud.AssertExactlyOnce(t, uplinktest.Keys(want))
	})
}

// handlerRT serves requests with a handler, in process.
type handlerRT struct{ h http.Handler }

func (h handlerRT) RoundTrip(req *http.Request) (*http.Response, error) {
	rec := httptest.NewRecorder()
	h.h.ServeHTTP(rec, req)
	resp := rec.Result()
	resp.Request = req
	return resp, nil
}

// 401: log that the token was rejected, back off without spinning, fail
// the health check; recover when the token is accepted.
func TestUnauthorizedBacksOff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		src := uplink.NewMemSource(1)
		rs := readings("dev-a", 10, time.Now())
		src.Append(rs...)
		cloud, r := startInProcess(t, src, func(c *uplink.Config) {
			c.Backoff = uplink.Backoff{} // 500ms .. 60s
		}, uplinktest.Options{Tokens: map[string]string{gateway: "another"}})
		time.Sleep(10 * time.Minute)
		synctest.Wait()
		n := len(cloud.Requests())
		// Without backoff this would be many thousands; with full jitter up
		// to 60s, about 25.
		if n < 5 || n > 60 {
			t.Errorf("%d requests in 10 minutes of 401s", n)
		}
		if err := r.u.Health(); !errors.Is(err, uplink.ErrUnauthorized) {
			t.Errorf("health: %v", err)
		}
		if c := strings.Count(r.logs.String(), "token rejected for gateway gw-1"); c == 0 || c > 12 {
			t.Errorf("%d log lines about the token, want a few (rate-limited):\n%s", c, r.logs)
		}
		if s := r.u.Stats(); s.Backoff != 60*time.Second || uint64(n) != s.Failures.Unauthorized {
			t.Errorf("stats %s", fmtStats(s))
		}
		cloud.SetTokens(tokens)
		waitCount(t, cloud, len(rs), 2*time.Minute)
		synctest.Wait()
		if err := r.u.Health(); err != nil {
			t.Errorf("health: %v", err)
		}
	})
}

// While a backlog drains, fresh readings keep flowing, and about
// BacklogShare of the batches come from the backlog.
func TestBacklogShare(t *testing.T) {
	for _, share := range []float64{0.25, 0.5, 0.75} {
		t.Run("", func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				src := uplink.NewMemSource(1)
				const backlog = 3000
				src.Append(readings("old", backlog, time.Now().Add(-time.Hour))...)
				cloud, r := startInProcess(t, src, func(c *uplink.Config) {
					c.MaxInFlight = 1
					c.MaxAge = time.Millisecond
					c.BacklogShare = share
				}, uplinktest.Options{})
				cloud.SetLatency(10 * time.Millisecond)
				time.Sleep(5 * time.Millisecond)
				total := backlog
				for i := 0; (r.u.Stats().BacklogSeqs > 0 || i < 10) && i < 5000; i++ {
					fresh := readings("new", 30, time.Now().Add(time.Duration(i)*time.Minute))
					for j := range fresh {
						fresh[j].Received = time.Now().UnixMicro()
					}
					src.Append(fresh...)
					total += 30
					time.Sleep(10 * time.Millisecond)
				}
				waitCount(t, cloud, total, time.Minute)
				r.stop()
				src.CheckAckedOnce(t)

				bs := cloud.Batches()
				firstFresh, lastOld := -1, -1
				for i, b := range bs {
					if b.First > backlog && firstFresh < 0 {
						firstFresh = i
					}
					if b.First <= backlog {
						lastOld = i
					}
				}
				if firstFresh < 0 || firstFresh > lastOld {
					t.Fatalf("fresh readings waited for the backlog: first fresh batch %d, last backlog batch %d", firstFresh, lastOld)
				}
				old := 0
				for _, b := range bs[firstFresh : lastOld+1] {
					if b.First <= backlog {
						old++
					}
				}
				got := float64(old) / float64(lastOld+1-firstFresh)
				if got < share-0.1 || got > share+0.1 {
					t.Errorf("share %v: %d of %d batches from the backlog while both ends had data (%.2f)", share, old, lastOld+1-firstFresh, got)
				}
				t.Logf("share %v: %.2f of %d contested batches from the backlog", share, got, lastOld+1-firstFresh)
			})
		})
	}
}

// On cancel, Run flushes: requests in progress finish and what is left in
// the queue is sent at once, within DrainTimeout; then it returns. Past
// DrainTimeout it gives up with an error and the readings stay queued.
func TestShutdownDrains(t *testing.T) {
	for _, tc := range []struct {
		name         string
		readings     int
		drainTimeout time.Duration
		latency      time.Duration
		inFlight     int
		wantErr      string
		took         time.Duration
		left         int
	}{
		// 4s: two in progress, then the rest; the flush sends the batch
		// not started yet.
		{name: "drains", readings: 300, latency: 2 * time.Second, inFlight: 2, took: 4 * time.Second},
		{name: "timeout", readings: 100, drainTimeout: time.Second, latency: time.Minute, inFlight: 1,
			wantErr: "drain timeout", took: time.Second, left: 100},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				src := uplink.NewMemSource(1)
				src.Append(readings("dev-a", tc.readings, time.Now())...)
				cloud, r := startInProcess(t, src, func(c *uplink.Config) {
					if tc.drainTimeout > 0 {
						c.DrainTimeout = tc.drainTimeout
					}
				}, uplinktest.Options{})
				cloud.SetLatency(tc.latency)
				synctest.Wait()
				if n := r.u.Stats().InFlight; n != tc.inFlight {
					t.Fatalf("%d in flight, want %d", n, tc.inFlight)
				}
				t0 := time.Now()
				if err := r.stop(); tc.wantErr == "" && err != nil || tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
					t.Errorf("Run: %v, want %q", err, tc.wantErr)
				}
				if d := time.Since(t0); d != tc.took {
					t.Errorf("Run returned after %v, want %v", d, tc.took)
				}
				if n := src.Stored(); n != tc.left {
					t.Errorf("%d readings left, want %d", n, tc.left)
				}
			})
		})
	}
}

// The queue's Ack fails: the uplink retries it; nothing is lost or sent
// as a new batch.
func TestAckFailureRetried(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		src := uplink.NewMemSource(1)
		rs := readings("dev-a", 100, time.Now())
		src.Append(rs...)
		src.FailAcks(3)
		cloud, r := startInProcess(t, src, nil, uplinktest.Options{})
		waitFor(t, time.Minute, "acks", func() bool { return src.Stored() == 0 })
		r.stop()
		src.CheckAckedOnce(t)
		if s := r.u.Stats(); s.Failures.Ack != 3 || len(cloud.Batches()) != 1 {
			t.Errorf("stats %s, %d batches", fmtStats(s), len(cloud.Batches()))
		}
	})
}

// Entries dropped by the queue's quota policy while the uplink runs are
// skipped (gaps), the rest delivered.
func TestGapsSkipped(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		src := uplink.NewMemSource(1)
		rs := readings("dev-a", 1000, time.Now())
		src.Append(rs...)
		src.Drop(1, 50)
		src.Drop(120, 130)
		src.Drop(990, 1000)
		cloud, r := startInProcess(t, src, nil, uplinktest.Options{})
		want := append(append([]protocol.Reading(nil), rs[50:119]...), rs[130:989]...)
		waitCount(t, cloud, len(want), time.Minute)
		r.stop()
		cloud.AssertExactlyOnce(t, uplinktest.Keys(want))
		for _, b := range cloud.Batches() {
			if b.First <= 130 && b.Last >= 120 {
				t.Errorf("batch %d..%d spans a gap", b.First, b.Last)
			}
		}
	})
}

func TestRunTwice(t *testing.T) {
	src := uplink.NewMemSource(1)
	u, err := uplink.New(src, config("http://127.0.0.1:1"))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := u.Run(ctx); err != nil {
		t.Fatal(err)
	}
	if err := u.Run(ctx); !errors.Is(err, uplink.ErrRunning) {
		t.Fatal(err)
	}
}

// A partial batch that is not due yet (MaxAge) is sent on shutdown rather
// than left in the queue.
func TestShutdownFlushesPartialBatch(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		src := uplink.NewMemSource(1)
		cloud, r := startInProcess(t, src, func(c *uplink.Config) { c.MaxAge = time.Hour }, uplinktest.Options{})
		synctest.Wait() // running: what comes now is fresh, not backlog
		src.Append(readings("dev-a", 10, time.Now())...)
		time.Sleep(time.Minute)
		synctest.Wait()
		if n := cloud.Count(); n != 0 {
			t.Fatalf("%d readings sent before the batch was due", n)
		}
		if err := r.stop(); err != nil {
			t.Fatal(err)
		}
		if n := cloud.Count(); n != 10 || src.Stored() != 0 {
			t.Errorf("after stop: %d readings in the cloud, %d left in the queue; want 10 and 0", n, src.Stored())
		}
	})
}

// A 2xx whose acknowledgement does not parse or does not match the
// request (gateway, epoch, sequence range) deletes nothing: the readings
// stay, the failure is counted and logged, and the batch is sent again.
func TestAckMustMatchRequest(t *testing.T) {
	for _, tc := range []struct{ name, body string }{
		{"empty", ""},
		{"html", "<html>captive portal</html>"},
		{"missing fields", `{"gateway":"gw-1","stored":100}`},
		{"other gateway", `{"gateway":"gw-2","epoch":1,"first":1,"last":100}`},
		{"other epoch", `{"gateway":"gw-1","epoch":2,"first":1,"last":100}`},
		{"other range", `{"gateway":"gw-1","epoch":1,"first":1,"last":50}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				src := uplink.NewMemSource(1)
				rs := readings("dev-a", 100, time.Now())
				src.Append(rs...)
				cloud := inProcessCloud(t, uplinktest.Options{})
				var answered atomic.Int32
				storedAtRetry := -1
				h := http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
					if answered.Add(1) > 1 {
						if storedAtRetry < 0 {
							storedAtRetry = src.Stored()
						}
						cloud.ServeHTTP(w, req)
						return
					}
					cloud.ServeHTTP(httptest.NewRecorder(), req) // stored, but the answer is replaced
					w.Header().Set("Content-Type", "application/json")
					io.WriteString(w, tc.body)
				})
				r := start(t, src, config(cloud.URL()), uplink.WithHTTPClient(&http.Client{Transport: handlerRT{h}}))
				waitFor(t, time.Minute, "the retry's acks", func() bool { return src.Stored() == 0 })
				r.stop()
				if storedAtRetry != len(rs) {
					t.Errorf("after a bad acknowledgement %d readings were left in the queue, want all %d", storedAtRetry, len(rs))
				}
				if s := r.u.Stats(); s.Failures.BadAck != 1 || s.ReadingsAcked != uint64(len(rs)) {
					t.Errorf("stats %s", fmtStats(s))
				}
				src.CheckAckedOnce(t)
				cloud.AssertExactlyOnce(t, uplinktest.Keys(rs))
				if !strings.Contains(r.logs.String(), "acknowledgement that does not match") {
					t.Errorf("not logged:\n%s", r.logs)
				}
			})
		})
	}
}
