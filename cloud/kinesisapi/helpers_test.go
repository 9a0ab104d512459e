package kinesisapi_test

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/smithy-go"
	"go.uber.org/goleak"

	"github.com/tributary-iot/tributary/cloud/kinesisapi"
	"github.com/tributary-iot/tributary/cloud/shardstore"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// fakeClock is an injectable clock shared by the store and the server.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *fakeClock { return &fakeClock{t: time.Now().Truncate(time.Millisecond)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

type env struct {
	store  *shardstore.Store
	server *kinesisapi.Server
	http   *httptest.Server
	client *kinesis.Client
}

// start runs a store and the API on an httptest server (127.0.0.1:0) and
// returns an unmodified SDK client pointed at it.
func start(t testing.TB, so shardstore.Options, ao kinesisapi.Options) *env {
	t.Helper()
	if so.TrimInterval == 0 {
		so.TrimInterval = -1
	}
	st, err := shardstore.Open(filepath.Join(t.TempDir(), "streams.db"), so)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := kinesisapi.New(st, ao)
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv)
	e := &env{store: st, server: srv, http: hs}
	e.client = sdkClient(t, hs.URL, "AKIDEXAMPLE", "dummy-secret")
	t.Cleanup(func() {
		hs.Close()
		st.Close()
	})
	return e
}

// sdkClient is kinesis.NewFromConfig with static credentials, region
// us-east-1 and BaseEndpoint url: nothing else changed.
func sdkClient(t testing.TB, url, akid, secret string) *kinesis.Client {
	t.Helper()
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 16 // concurrent benchmark writers and readers keep their connections
	hc := &http.Client{Transport: tr}
	t.Cleanup(hc.CloseIdleConnections)
	// aws.Config built by hand rather than config.LoadDefaultConfig, so
	// that nothing from the environment (profiles, AWS_CA_BUNDLE, endpoint
	// variables) changes the client.
	cfg := aws.Config{
		Region:      "us-east-1",
		Credentials: aws.NewCredentialsCache(credentials.NewStaticCredentialsProvider(akid, secret, "")),
		HTTPClient:  hc,
	}
	return kinesis.NewFromConfig(cfg, func(o *kinesis.Options) { o.BaseEndpoint = aws.String(url) })
}

func apiCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

func noRetry(o *kinesis.Options) { o.RetryMaxAttempts = 1 }

// rawCall posts body to the server with the given target and content type
// (no signature) and returns the status and decoded error or result.
func rawCall(t testing.TB, url, target, contentType, body string) (int, map[string]any, http.Header) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Close = true // no idle connections left for goleak
	if target != "" {
		req.Header.Set("X-Amz-Target", target)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var out map[string]any
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatalf("response is not JSON: %q", b)
	}
	return resp.StatusCode, out, resp.Header
}

func errorsAs[T error](err error, target *T) bool { return errors.As(err, target) }

// serve calls h directly with an unsigned JSON request for op.
func serve(h http.Handler, op, body string) (int, map[string]any) {
	req := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(body))
	req.Header.Set("X-Amz-Target", "Kinesis_20131202."+op)
	req.Header.Set("Content-Type", "application/x-amz-json-1.1")
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	var out map[string]any
	_ = json.Unmarshal(w.Body.Bytes(), &out)
	return w.Code, out
}
