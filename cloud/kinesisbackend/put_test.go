package kinesisbackend_test

import (
	"context"
	"errors"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/aws/smithy-go"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/tributary-iot/tributary/cloud/kinesisbackend"
)

// These tests run the real SDK against fakeKinesis inside a synctest
// bubble: time is virtual, so backoff and rate limits are checked exactly
// and quickly.

func newFakeBackend(t *testing.T, f *fakeKinesis, mod func(*kinesisbackend.Config)) *kinesisbackend.Backend {
	t.Helper()
	cfg := kinesisbackend.Config{
		Stream:          "s",
		Region:          "us-east-1",
		Endpoint:        "http://kinesis.fake",
		AccessKeyID:     "AKIDEXAMPLE",
		SecretAccessKey: "secret",
		HTTPClient:      &http.Client{Transport: f},
	}
	if mod != nil {
		mod(&cfg)
	}
	b, err := kinesisbackend.New(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

// fakeData is the stored record data by key.
func fakeData(f *fakeKinesis) map[string][]string {
	out := map[string][]string{}
	for k, recs := range f.records() {
		for _, r := range recs {
			out[k] = append(out[k], r.data)
		}
	}
	return out
}

func TestRateLimitAvoidsThrottling(t *testing.T) {
	for _, tc := range []struct {
		name    string
		limited bool
	}{{"client-side limits", true}, {"no client-side limits", false}} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				f := newFakeKinesis("s", 4)
				b := newFakeBackend(t, f, func(c *kinesisbackend.Config) {
					if !tc.limited {
						c.ShardRecordsPerSec, c.ShardBytesPerSec = -1, -1
					}
				})
				es := makeEntries("dev", 400, 15, 100) // 6,000 entries
				start := time.Now()
				res, err := b.Put(t.Context(), "", es)
				elapsed := time.Since(start)
				checkAllWritten(t, res, err, len(es))
				checkExactlyOnceInOrder(t, fakeData(f), wantCounts(es))
				_, _, throttled, keysTwice := f.stats()
				if keysTwice != 0 {
					t.Errorf("%d calls carried a partition key twice", keysTwice)
				}
				// The busiest shard sets the pace: 1,000 records of burst,
				// then 1,000/s.
				busiest := 0
				for _, s := range f.shards {
					busiest = max(busiest, len(s.recs))
				}
				ideal := time.Duration(float64(busiest-1000) / 1000 * float64(time.Second))
				c := b.CountsForTest()
				t.Logf("busiest shard %d records; %v (ideal %v); %d throttled; counters %+v", busiest, elapsed, ideal, throttled, c)
				if c.Written != float64(len(es)) || c.Throttles != float64(throttled) {
					t.Errorf("counters %+v, want %d written and %d throttles", c, len(es), throttled)
				}
				if tc.limited {
					if throttled != 0 {
						t.Errorf("Kinesis throttled %d entries despite the client-side limits", throttled)
					}
					if c.Retries != 0 {
						t.Errorf("%v retries, want none", c.Retries)
					}
					if elapsed < ideal || elapsed > ideal+ideal/10+100*time.Millisecond {
						t.Errorf("took %v, want about %v", elapsed, ideal)
					}
				} else {
					if throttled == 0 {
						t.Error("no throttling without client-side limits: the test proves nothing")
					}
					if c.Retries != float64(throttled) {
						t.Errorf("%v retries, want one per throttled entry (%d)", c.Retries, throttled)
					}
				}
			})
		})
	}
}

// timedPut puts es, fails t if the call fails as a whole, and returns the
// results and how long the call took (on the bubble's clock).
func timedPut(ctx context.Context, t *testing.T, b *kinesisbackend.Backend, stream string, es []kinesisbackend.Entry) ([]kinesisbackend.Result, time.Duration) {
	t.Helper()
	start := time.Now()
	res, err := b.Put(ctx, stream, es)
	if err != nil {
		t.Fatalf("Put: %v", err)
	}
	return res, time.Since(start)
}

func TestThrottledShardBacksOffAlone(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFakeKinesis("s", 4)
		hot := f.shards[0].id
		f.alwaysThrottle[hot] = true
		b := newFakeBackend(t, f, nil)
		es := makeEntries("dev", 40, 3, 50)
		ctx, cancel := context.WithTimeout(t.Context(), 3*time.Second)
		defer cancel()
		start := time.Now()
		res, elapsed := timedPut(ctx, t, b, "", es)
		if elapsed < 3*time.Second || elapsed > 3*time.Second+10*time.Millisecond {
			t.Errorf("Put took %v, want its 3s deadline", elapsed)
		}
		hotKeys := map[string]bool{}
		for i, e := range es {
			if f.route(e.PartitionKey).id == hot {
				hotKeys[e.PartitionKey] = true
				if !errors.Is(res[i].Err, kinesisbackend.ErrThrottled) || !errors.Is(res[i].Err, context.DeadlineExceeded) {
					t.Errorf("entry %d on the throttled shard: %v, want ErrThrottled and DeadlineExceeded", i, res[i].Err)
				}
			} else if res[i].Err != nil {
				t.Errorf("entry %d on a healthy shard: %v", i, res[i].Err)
			}
		}
		if len(hotKeys) == 0 {
			t.Fatal("no key on the throttled shard")
		}
		// The healthy shards did not wait for the throttled one.
		for key, recs := range f.records() {
			for _, r := range recs {
				if d := r.at.Sub(start); d > 0 {
					t.Errorf("%s written %v after the start: slowed by the throttled shard", key, d)
				}
			}
		}
		// The throttled shard saw a backoff, not a hammering: about
		// log2(2s/100ms) doubling steps, then every ~1.5s.
		for key := range hotKeys {
			if n := f.attemptsByKey[key]; n < 3 || n > 10 {
				t.Errorf("key %s on the throttled shard was attempted %d times in 3s, want backoff (3..10)", key, n)
			}
		}
	})
}

func TestPermanentEntryErrorStopsItsKeyOnly(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFakeKinesis("s", 4)
		f.entryError = func(key string) string {
			if key == "dev3" {
				return "KMSAccessDeniedException"
			}
			return ""
		}
		b := newFakeBackend(t, f, nil)
		es := makeEntries("dev", 10, 3, 20)
		res, d := timedPut(t.Context(), t, b, "", es)
		if d != 0 {
			t.Errorf("Put took %v: a permanent error must not wait for the deadline", d)
		}
		first := true
		for i, e := range es {
			if e.PartitionKey != "dev3" {
				if res[i].Err != nil {
					t.Errorf("entry %d (%s): %v", i, e.PartitionKey, res[i].Err)
				}
				continue
			}
			var ee *kinesisbackend.EntryError
			if !errors.As(res[i].Err, &ee) || ee.Code != "KMSAccessDeniedException" || errors.Is(res[i].Err, kinesisbackend.ErrThrottled) {
				t.Errorf("entry %d: %v, want the KMS error", i, res[i].Err)
			}
			if !first && !strings.Contains(res[i].Err.Error(), "earlier entry") {
				t.Errorf("entry %d: %v, want not sent behind the failed one", i, res[i].Err)
			}
			first = false
		}
		if n := f.attemptsByKey["dev3"]; n != 1 {
			t.Errorf("dev3 sent %d times, want once (its later entries must not overtake it)", n)
		}
		got := fakeData(f)
		delete(got, "dev3")
		want := wantCounts(es)
		delete(want, "dev3")
		checkExactlyOnceInOrder(t, got, want)
	})
}

func TestWholeCallErrors(t *testing.T) {
	t.Run("no such stream fails fast", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			f := newFakeKinesis("s", 2)
			b := newFakeBackend(t, f, nil)
			es := makeEntries("dev", 5, 2, 10)
			res, d := timedPut(t.Context(), t, b, "missing", es)
			if d != 0 {
				t.Errorf("took %v, want no retries", d)
			}
			for i, r := range res {
				var ae smithy.APIError
				if !errors.As(r.Err, &ae) || ae.ErrorCode() != "ResourceNotFoundException" {
					t.Errorf("entry %d: %v, want ResourceNotFoundException", i, r.Err)
				}
			}
		})
	})
	for _, tc := range []struct {
		name   string
		status int
		code   string
	}{
		{"throttled call", 400, "ProvisionedThroughputExceededException"},
		{"server error before writing", 500, "InternalFailure"},
	} {
		t.Run(tc.name+" is retried", func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				f := newFakeKinesis("s", 4)
				f.callError = func(call int) (int, string) {
					if call%3 == 1 {
						return tc.status, tc.code
					}
					return 0, ""
				}
				// No SDK retries: Put's own loop must handle it.
				b := newFakeBackend(t, f, func(c *kinesisbackend.Config) { c.MaxRetries = -1 })
				es := makeEntries("dev", 30, 5, 10)
				res, err := b.Put(t.Context(), "", es)
				checkAllWritten(t, res, err, len(es))
				checkExactlyOnceInOrder(t, fakeData(f), wantCounts(es))
				if c := b.CountsForTest(); c.Retries == 0 {
					t.Error("no retries counted")
				}
			})
		})
	}
}

func TestUnknownOutcome(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFakeKinesis("s", 4)
		f.lieAfterWrite = func(int) bool { return true }
		b := newFakeBackend(t, f, func(c *kinesisbackend.Config) { c.MaxRetries = -1 })
		es := makeEntries("dev", 4, 2, 10)
		ctx, cancel := context.WithTimeout(t.Context(), time.Second)
		defer cancel()
		res, err := b.Put(ctx, "", es)
		if !errors.Is(err, kinesisbackend.ErrOutcomeUnknown) {
			t.Fatalf("Put: %v, want ErrOutcomeUnknown", err)
		}
		for i, r := range res {
			if r.Err == nil {
				t.Errorf("entry %d reported written though never acknowledged", i)
			}
		}
		// The later entry of each key was never sent: it must not
		// overtake an entry whose fate is unknown.
		for key, recs := range fakeData(f) {
			for _, d := range recs {
				if seqOf(t, d) != 0 {
					t.Errorf("%s: entry %d written behind an unacknowledged one", key, seqOf(t, d))
				}
			}
		}
	})
}

// A call in flight at the deadline is let finish (its outcome is then
// known); a cancel aborts it (its outcome is not).
func TestCallInFlightAtDeadline(t *testing.T) {
	for _, c := range []struct {
		name    string
		ctx     func(context.Context) (context.Context, context.CancelFunc)
		wantErr error // nil: every entry written
		took    time.Duration
	}{
		{"deadline lets it finish", func(ctx context.Context) (context.Context, context.CancelFunc) {
			return context.WithTimeout(ctx, time.Second)
		}, nil, 2 * time.Second},
		{"cancel aborts it", func(ctx context.Context) (context.Context, context.CancelFunc) {
			ctx, cancel := context.WithCancel(ctx)
			time.AfterFunc(500*time.Millisecond, cancel)
			return ctx, cancel
		}, kinesisbackend.ErrOutcomeUnknown, 500 * time.Millisecond},
	} {
		t.Run(c.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				f := newFakeKinesis("s", 4)
				f.delay = 2 * time.Second
				b := newFakeBackend(t, f, nil)
				es := makeEntries("dev", 8, 1, 10)
				ctx, cancel := c.ctx(t.Context())
				defer cancel()
				start := time.Now()
				res, err := b.Put(ctx, "", es)
				if c.wantErr == nil {
					checkAllWritten(t, res, err, len(es))
				} else if !errors.Is(err, c.wantErr) {
					t.Errorf("Put: %v, want %v", err, c.wantErr)
				}
				if d := time.Since(start); d != c.took {
					t.Errorf("took %v, want %v", d, c.took)
				}
			})
		})
	}
}

func TestStaleShardMapIsRefreshed(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFakeKinesis("s", 2)
		b := newFakeBackend(t, f, nil)
		es := makeEntries("dev", 50, 1, 10)
		res, err := b.Put(t.Context(), "", es)
		checkAllWritten(t, res, err, len(es))
		if _, lists, _, _ := f.stats(); lists != 1 {
			t.Fatalf("%d ListShards calls, want 1", lists)
		}
		f.split(0)
		time.Sleep(10 * time.Second)
		es2 := makeEntries("dev", 50, 3, 10)
		res, err = b.Put(t.Context(), "", es2)
		checkAllWritten(t, res, err, len(es2))
		if _, lists, _, _ := f.stats(); lists != 2 {
			t.Errorf("%d ListShards calls, want 2 (one refresh after the split)", lists)
		}
		for _, e := range es2 {
			if got, want := b.RouteForTest("s", e.PartitionKey), f.route(e.PartitionKey).id; got != want {
				t.Errorf("key %s: Put routes to %q, Kinesis to %q", e.PartitionKey, got, want)
			}
		}
	})
}

func TestCallLimits(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFakeKinesis("s", 4)
		f.noLimits = true
		b := newFakeBackend(t, f, func(c *kinesisbackend.Config) {
			c.ShardRecordsPerSec, c.ShardBytesPerSec = -1, -1
		})
		es := makeEntries("many", 1200, 1, 10)
		res, err := b.Put(t.Context(), "", es)
		checkAllWritten(t, res, err, len(es))
		if f.putCalls != 3 || f.maxCallEntries != kinesisbackend.MaxEntriesPerCall {
			t.Errorf("%d calls of at most %d entries, want 3 of at most 500", f.putCalls, f.maxCallEntries)
		}
		big := makeEntries("big", 12, 1, 900<<10) // 5 per call
		res, err = b.Put(t.Context(), "", big)
		checkAllWritten(t, res, err, len(big))
		if f.maxCallBytes > kinesisbackend.MaxBytesPerCall {
			t.Errorf("a call carried %d bytes, over 5 MiB", f.maxCallBytes)
		}
		if f.putCalls != 3+3 {
			t.Errorf("%d calls for 12 entries of 900 KiB, want 3 (5 per call)", f.putCalls-3)
		}
		checkExactlyOnceInOrder(t, fakeData(f), wantCounts(append(es, big...)))
	})
}

func TestInvalidEntries(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFakeKinesis("s", 2)
		b := newFakeBackend(t, f, nil)
		long := strings.Repeat("é", kinesisbackend.MaxPartitionKeyLen) // 256 characters, 512 bytes: valid
		es := []kinesisbackend.Entry{
			{PartitionKey: "ok", Data: []byte("a")},
			{PartitionKey: "", Data: []byte("b")},
			{PartitionKey: long + "x", Data: []byte("c")},
			{PartitionKey: "bad\xff", Data: []byte("d")},
			{PartitionKey: "big", Data: make([]byte, kinesisbackend.MaxRecordBytes)},
			{PartitionKey: long, Data: []byte("e")},
			{PartitionKey: "empty"},
		}
		res, err := b.Put(t.Context(), "", es)
		if err != nil {
			t.Fatal(err)
		}
		for i, wantInvalid := range []bool{false, true, true, true, true, false, false} {
			if got := errors.Is(res[i].Err, kinesisbackend.ErrInvalidEntry); got != wantInvalid {
				t.Errorf("entry %d: %v, want invalid=%v", i, res[i].Err, wantInvalid)
			}
			if !wantInvalid && res[i].Err != nil {
				t.Errorf("entry %d: %v", i, res[i].Err)
			}
		}
		if _, err := b.Put(t.Context(), "not a stream!", es); err == nil {
			t.Error("Put to an invalid stream name: no error")
		}
		if res, err := b.Put(t.Context(), "", nil); err != nil || len(res) != 0 {
			t.Errorf("Put of nothing: %v, %v", res, err)
		}
	})
}

func TestConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  kinesisbackend.Config
		want string // "" = valid
	}{
		{"zero", kinesisbackend.Config{}, ""},
		{"name", kinesisbackend.Config{Stream: "telemetry"}, ""},
		{"arn", kinesisbackend.Config{Stream: "arn:aws:kinesis:eu-west-1:123456789012:stream/telemetry"}, ""},
		{"bad stream", kinesisbackend.Config{Stream: "tele metry"}, "neither a stream name"},
		{"bad arn", kinesisbackend.Config{Stream: "arn:aws:kinesis:eu-west-1:1234:stream/x"}, "neither a stream name"},
		{"endpoint", kinesisbackend.Config{Endpoint: "http://127.0.0.1:4567"}, ""},
		{"endpoint without scheme", kinesisbackend.Config{Endpoint: "127.0.0.1:4567"}, "not an http(s) URL"},
		{"half credentials", kinesisbackend.Config{AccessKeyID: "a"}, "both AccessKeyID and SecretAccessKey"},
		{"token alone", kinesisbackend.Config{SessionToken: "t"}, "SessionToken needs"},
		{"negative timeout", kinesisbackend.Config{RequestTimeout: -time.Second}, "RequestTimeout is negative"},
		{"backoff inverted", kinesisbackend.Config{RetryBase: time.Second, RetryMax: time.Millisecond}, "RetryMax"},
		{"concurrency", kinesisbackend.Config{Concurrency: 65}, "Concurrency 65"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Validate()
			if tc.want == "" {
				if err != nil {
					t.Errorf("Validate: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Validate: %v, want %q", err, tc.want)
			}
		})
	}
}

func TestMetricsRegistered(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		reg := prometheus.NewRegistry()
		f := newFakeKinesis("s", 2)
		f.entryError = func(key string) string {
			if key == "dev1" && f.attemptsByKey[key] == 1 {
				return "ProvisionedThroughputExceededException"
			}
			return ""
		}
		b := newFakeBackend(t, f, func(c *kinesisbackend.Config) { c.Registerer = reg })
		es := makeEntries("dev", 3, 2, 10)
		res, err := b.Put(t.Context(), "", es)
		checkAllWritten(t, res, err, len(es))
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]float64{}
		for _, mf := range mfs {
			for _, m := range mf.GetMetric() {
				name := mf.GetName()
				for _, l := range m.GetLabel() {
					name += "{" + l.GetName() + "=" + l.GetValue() + "}"
				}
				switch {
				case m.Counter != nil:
					got[name] = m.GetCounter().GetValue()
				case m.Histogram != nil:
					got[name] = float64(m.GetHistogram().GetSampleCount())
				}
			}
		}
		want := map[string]float64{
			"tributary_kinesis_records_total{result=written}": 6,
			"tributary_kinesis_retries_total":                 1,
			"tributary_kinesis_throttles_total":               1,
			"tributary_kinesis_put_seconds":                   1,
			"tributary_kinesis_put_records_seconds":           float64(f.putCalls),
		}
		for k, v := range want {
			if got[k] != v {
				t.Errorf("%s = %v, want %v (all: %v)", k, got[k], v, got)
			}
		}
		// A second Backend on the same registry is refused, not silently
		// unmeasured.
		if _, err := kinesisbackend.New(t.Context(), kinesisbackend.Config{Region: "us-east-1", Registerer: reg}); err == nil {
			t.Error("second registration on one registry: no error")
		}
	})
}

func TestNewRegion(t *testing.T) {
	t.Setenv("AWS_REGION", "")
	t.Setenv("AWS_DEFAULT_REGION", "")
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(t.TempDir(), "none"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(t.TempDir(), "none"))
	if _, err := kinesisbackend.New(t.Context(), kinesisbackend.Config{}); err == nil || !strings.Contains(err.Error(), "no AWS region") {
		t.Errorf("New without a region for real AWS: %v, want a region error", err)
	}
	// Real AWS with the default credential chain: nothing is called yet.
	b, err := kinesisbackend.New(t.Context(), kinesisbackend.Config{Region: "eu-west-1", Stream: "telemetry"})
	if err != nil {
		t.Fatal(err)
	}
	b.Close()
	b.Close() // idempotent
	if _, err := kinesisbackend.New(t.Context(), kinesisbackend.Config{Concurrency: -1}); err == nil {
		t.Error("New with an invalid config: no error")
	}
}
