package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"go.uber.org/goleak"

	"github.com/tributary-iot/tributary/cloud/server"
	"github.com/tributary-iot/tributary/cloud/shardstore"
	"github.com/tributary-iot/tributary/edge/uplink"
	"github.com/tributary-iot/tributary/internal/jsonkeys"
	"github.com/tributary-iot/tributary/internal/testenv"
	"github.com/tributary-iot/tributary/internal/tlsfiles"
	"github.com/tributary-iot/tributary/protocol"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// running is a server in the background.
type running struct {
	s    *server.Server
	stop func() error
}

func start(t *testing.T, cfg server.Config, so shardstore.Options) *running {
	t.Helper()
	return startWith(t, cfg, server.Options{StoreOptions: so})
}

// startWith is start with options (the logger and version are set).
func startWith(t *testing.T, cfg server.Config, opts server.Options) *running {
	t.Helper()
	if cfg.Listen == "" {
		cfg.Listen = "127.0.0.1:0"
	}
	if cfg.KinesisListen == "" {
		cfg.KinesisListen = "127.0.0.1:0"
	}
	if cfg.Admin.Listen == "" {
		cfg.Admin.Listen = "127.0.0.1:0"
	}
	cfg.Tokens.ReloadEvery = 10 * time.Millisecond
	cfg.Ingest.ThrottleWait = 50 * time.Millisecond
	opts.Logger, opts.Version = slog.New(slog.DiscardHandler), "test"
	s, err := server.New(t.Context(), cfg, opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	var once sync.Once
	var runErr error
	r := &running{s: s, stop: func() error {
		once.Do(func() { cancel(); runErr = <-done })
		return runErr
	}}
	t.Cleanup(func() { r.stop() })
	return r
}

// src is a minimal in-memory uplink.Source (seqs from 1, Ack deletes).
type src struct {
	mu     sync.Mutex
	rs     []protocol.Reading
	left   map[uint64]bool
	notify chan struct{}
	empty  chan struct{} // closed when every reading is acknowledged
}

func newSrc(rs []protocol.Reading) *src {
	s := &src{rs: rs, left: map[uint64]bool{}, notify: make(chan struct{}, 1), empty: make(chan struct{})}
	for i := range rs {
		s.left[uint64(i)+1] = true
	}
	if len(rs) == 0 {
		close(s.empty)
	}
	s.notify <- struct{}{}
	return s
}

func (s *src) Epoch() uint64           { return 1 }
func (s *src) Notify() <-chan struct{} { return s.notify }
func (s *src) Tail() uint64            { return uint64(len(s.rs)) }
func (s *src) Head() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := range s.rs {
		if s.left[uint64(i)+1] {
			return uint64(i) + 1
		}
	}
	return 0
}
func (s *src) Read(from uint64, maxR, maxB int, dst []protocol.Reading) (uint64, []protocol.Reading, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	dst = dst[:0]
	seq := max(from, 1)
	for seq <= uint64(len(s.rs)) && !s.left[seq] {
		seq++
	}
	first := seq
	for ; seq <= uint64(len(s.rs)) && s.left[seq] && len(dst) < maxR; seq++ {
		dst = append(dst, s.rs[seq-1])
	}
	if len(dst) == 0 {
		return 0, dst, nil
	}
	return first, dst, nil
}
func (s *src) Ack(_ context.Context, first, last uint64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := len(s.left)
	for seq := first; seq <= last; seq++ {
		delete(s.left, seq)
	}
	if n > 0 && len(s.left) == 0 {
		close(s.empty)
	}
	return nil
}
func (s *src) remaining() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.left)
}

func readings(n, devices int, t0 time.Time) []protocol.Reading {
	rs := make([]protocol.Reading, n)
	for i := range rs {
		tm := t0.Add(time.Duration(i) * time.Millisecond).UnixMicro()
		rs[i] = protocol.Reading{Device: fmt.Sprintf("node-%d", i%devices), Name: "humidity", Unit: "%RH",
			Kind: protocol.KindFloat, Value: 40 + float64(i%100)/10, Time: tm, Received: tm + 1000}
	}
	return rs
}

// ship runs an uplink until the source is empty.
func ship(t *testing.T, s *src, cfg uplink.Config, opts ...uplink.Option) {
	t.Helper()
	cfg.Gateway = "gw-1"
	if cfg.MaxReadings == 0 {
		cfg.MaxReadings = 250
	}
	cfg.MaxAge = 5 * time.Millisecond
	cfg.Backoff = uplink.Backoff{Initial: time.Millisecond, Max: 50 * time.Millisecond}
	up, err := uplink.New(s, cfg, opts...)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- up.Run(ctx) }()
	select {
	case <-s.empty:
	case <-time.After(20 * time.Second):
	}
	cancel()
	if err := <-done; err != nil {
		t.Error(err)
	}
	if n := s.remaining(); n > 0 {
		t.Fatalf("%d readings not acknowledged: %+v", n, up.Stats())
	}
}

// readStream reads every record of the stream through the Kinesis API
// with the AWS SDK.
func readStream(t *testing.T, addr, stream string) (recs []types.Record) {
	t.Helper()
	hc := &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone()}
	defer hc.CloseIdleConnections()
	c := kinesis.NewFromConfig(aws.Config{Region: "us-east-1", HTTPClient: hc,
		Credentials: credentials.NewStaticCredentialsProvider("AKIDTEST", "secret", "")},
		func(o *kinesis.Options) { o.BaseEndpoint = aws.String("http://" + addr) })
	ctx := context.Background()
	shards, err := c.ListShards(ctx, &kinesis.ListShardsInput{StreamName: aws.String(stream)})
	if err != nil {
		t.Fatal(err)
	}
	if len(shards.Shards) != 4 {
		t.Errorf("%d shards, want 4", len(shards.Shards))
	}
	for _, sh := range shards.Shards {
		it, err := c.GetShardIterator(ctx, &kinesis.GetShardIteratorInput{StreamName: aws.String(stream),
			ShardId: sh.ShardId, ShardIteratorType: types.ShardIteratorTypeTrimHorizon})
		if err != nil {
			t.Fatal(err)
		}
		iter := it.ShardIterator
		for iter != nil {
			out, err := c.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: iter})
			if err != nil {
				t.Fatal(err)
			}
			recs = append(recs, out.Records...)
			if len(out.Records) == 0 && aws.ToInt64(out.MillisBehindLatest) == 0 {
				break
			}
			iter = out.NextShardIterator
		}
	}
	return recs
}

func checkStream(t *testing.T, recs []types.Record, want []protocol.Reading) {
	t.Helper()
	got := map[protocol.Key]int{}
	for _, r := range recs {
		rec, err := protocol.DecodeRecord(r.Data)
		if err != nil {
			t.Fatal(err)
		}
		if aws.ToString(r.PartitionKey) != rec.Device || rec.Gateway != "gw-1" {
			t.Errorf("record of %s from %s keyed %q", rec.Device, rec.Gateway, aws.ToString(r.PartitionKey))
		}
		for i := range rec.Readings {
			got[rec.Readings[i].Key()]++
		}
	}
	exactlyOnce(t, got, want)
}

// exactlyOnce: every reading of want was counted once in got, and got
// holds nothing else.
func exactlyOnce(t *testing.T, got map[protocol.Key]int, want []protocol.Reading) {
	t.Helper()
	bad := 0
	for i := range want {
		if got[want[i].Key()] != 1 {
			bad++
		}
	}
	if bad > 0 || len(got) != len(want) {
		t.Errorf("%d of %d readings not in the stream exactly once (%d distinct in the stream)", bad, len(want), len(got))
	}
}

var t0 = time.Date(2026, 4, 1, 8, 0, 0, 0, time.UTC)

// End to end: tokens, the real uplink, the embedded store, the Kinesis API
// read with the AWS SDK; a restart keeps the stream and the dedupe state.
func TestEndToEnd(t *testing.T) {
	data := t.TempDir()
	unlimited := shardstore.Options{Throughput: shardstore.Throughput{Unlimited: true}}
	r := start(t, server.Config{Data: data}, unlimited)
	tok, err := r.s.Tokens().Issue("gw-1")
	if err != nil {
		t.Fatal(err)
	}
	url := "http://" + r.s.Addr()

	// /healthz and /metrics.
	var h server.Health
	getJSON(t, url+"/healthz", &h)
	if h.Status != "ok" || h.Shards != 4 || h.Stream != "telemetry" || h.Gateways != 1 {
		t.Errorf("healthz %+v", h)
	}
	if err := jsonkeys.CheckSnakeCase([]byte(get(t, url+"/healthz"))); err != nil {
		t.Error(err)
	}

	rs := readings(2000, 9, t0)
	ship(t, newSrc(rs), uplink.Config{URL: url, Token: tok})
	body := get(t, "http://"+r.s.AdminAddr()+"/metrics")
	for _, m := range []string{`tributary_ingest_requests_total{code="200"}`, "tributary_ingest_readings_total 2000", "go_goroutines",
		`tributary_build_info{goversion="go`, `version="test"} 1`} {
		if !strings.Contains(body, m) {
			t.Errorf("/metrics lacks %s", m)
		}
	}
	checkStream(t, readStream(t, r.s.KinesisAddr(), "telemetry"), rs)

	// Restart: the same batches are duplicates; the stream is kept.
	if err := r.stop(); err != nil {
		t.Fatal(err)
	}
	r = start(t, server.Config{Data: data}, unlimited)
	url = "http://" + r.s.Addr()
	ship(t, newSrc(rs), uplink.Config{URL: url, Token: tok})
	checkStream(t, readStream(t, r.s.KinesisAddr(), "telemetry"), rs)
	if body := get(t, "http://"+r.s.AdminAddr()+"/metrics"); !strings.Contains(body, "tributary_ingest_duplicate_readings_total 2000") {
		t.Error("the resent readings were not counted as duplicates")
	}

	// A token revoked by another process (the CLI) stops working.
	if err := r.s.Tokens().Revoke("gw-1"); err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodPost, url+"/v1/ingest", bytes.NewReader([]byte{0xa0}))
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 401 {
		t.Errorf("revoked token: %d", resp.StatusCode)
	}
}

// The kinesis backend: one tributary-cloud writes through the Kinesis API
// of another (as it would to Amazon Kinesis).
func TestKinesisBackendServer(t *testing.T) {
	unlimited := shardstore.Options{Throughput: shardstore.Throughput{Unlimited: true}}
	store := start(t, server.Config{Data: t.TempDir()}, unlimited)
	front := start(t, server.Config{Data: t.TempDir(), KinesisListen: "off", Stream: server.StreamConfig{
		Backend: server.BackendKinesis,
		Kinesis: server.KinesisConfig{Endpoint: "http://" + store.s.KinesisAddr(), Region: "us-east-1",
			AccessKeyID: "AKIDTEST", SecretAccessKey: "secret"},
	}}, shardstore.Options{})
	if front.s.Store() != nil || front.s.KinesisAddr() != "" {
		t.Error("the kinesis backend opened a local store or Kinesis API")
	}
	tok, _ := front.s.Tokens().Issue("gw-1")
	rs := readings(800, 6, t0)
	ship(t, newSrc(rs), uplink.Config{URL: "http://" + front.s.Addr(), Token: tok})
	checkStream(t, readStream(t, store.s.KinesisAddr(), "telemetry"), rs)
}

// The store's throughput limits reach the gateway as 429 + Retry-After;
// it backs off, resends, and everything arrives once.
func TestThrottledStore(t *testing.T) {
	slow := shardstore.Options{Throughput: shardstore.Throughput{WriteRecordsPerSec: 20, ReadsPerSec: -1, ReadBytesPerSec: -1}}
	r := start(t, server.Config{Data: t.TempDir()}, slow)
	tok, _ := r.s.Tokens().Issue("gw-1")
	rs := readings(200, 200, t0) // a record per reading: ~25 per shard per batch of 100
	ship(t, newSrc(rs), uplink.Config{URL: "http://" + r.s.Addr(), Token: tok, MaxReadings: 100})
	checkStream(t, readStream(t, r.s.KinesisAddr(), "telemetry"), rs)
	if body := get(t, "http://"+r.s.AdminAddr()+"/metrics"); !strings.Contains(body, `tributary_ingest_requests_total{code="429"}`) {
		t.Error("no 429 answered")
	}
}

// TLS with client certificates: a gateway with a certificate from the
// client CA gets through; one without is refused at the handshake.
func TestTLSClientCerts(t *testing.T) {
	dir := t.TempDir()
	pki := testenv.NewPKI(t)
	srvCert, srvKey := pki.Server(t, "cloud")
	cliCert, cliKey := pki.Client(t, "gw-1")
	r := start(t, server.Config{Data: filepath.Join(dir, "data"), TLS: tlsfiles.Server{
		CertFile: srvCert, KeyFile: srvKey, ClientCAFile: pki.CAFile}}, shardstore.Options{})
	tok, _ := r.s.Tokens().Issue("gw-1")
	url := "https://" + r.s.Addr()
	rs := readings(300, 3, t0)
	ship(t, newSrc(rs), uplink.Config{URL: url, Token: tok, TLS: tlsfiles.Client{
		CAFile: pki.CAFile, CertFile: cliCert, KeyFile: cliKey}})
	checkStream(t, readStream(t, r.s.KinesisAddr(), "telemetry"), rs)

	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig.RootCAs = pki.Pool
	defer tr.CloseIdleConnections()
	if _, err := (&http.Client{Transport: tr}).Get(url + "/healthz"); err == nil {
		t.Error("a client without a certificate got through")
	}
}

func TestBusyPort(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	_, err = server.New(t.Context(), server.Config{Data: t.TempDir(), Listen: ln.Addr().String(), KinesisListen: "off"}, server.Options{Logger: slog.New(slog.DiscardHandler)})
	if err == nil || !strings.Contains(err.Error(), "listen") {
		t.Errorf("busy port: %v", err)
	}
}

func get(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	b.ReadFrom(resp.Body)
	return b.String()
}

func getJSON(t *testing.T, url string, v any) {
	t.Helper()
	if err := json.Unmarshal([]byte(get(t, url)), v); err != nil {
		t.Fatal(err)
	}
}

func postBatch(t *testing.T, url string, b *protocol.Batch) {
	t.Helper()
	if code, _ := sendBatch(t, url, "t", b); code != 200 {
		t.Fatalf("status %d", code)
	}
}

// sendBatch posts b uncompressed with the bearer token and returns the
// status and the Retry-After header.
func sendBatch(t *testing.T, url, token string, b *protocol.Batch) (int, string) {
	t.Helper()
	raw, err := protocol.AppendBatch(nil, b)
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodPost, url+"/v1/ingest", bytes.NewReader(raw))
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", protocol.ContentTypeBatch)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, resp.Header.Get("Retry-After")
}
