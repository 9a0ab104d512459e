package consumer_test

import (
	"context"
	"fmt"
	"math/big"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"go.uber.org/goleak"

	"github.com/tributary-iot/tributary/cloud/consumer"
	"github.com/tributary-iot/tributary/cloud/kinesisapi"
	"github.com/tributary-iot/tributary/cloud/shardstore"
	"github.com/tributary-iot/tributary/cloud/shardstore/shardstoretest"
	"github.com/tributary-iot/tributary/internal/testenv"
	"github.com/tributary-iot/tributary/protocol"
)

func TestMain(m *testing.M) {
	testenv.RunHelper(map[string]func(){consumerChildName: consumerChild, kafkaChildName: kafkaChild}) // TestKill9ResumesWithoutGaps's child
	goleak.VerifyTestMain(m)
}

const stream = "telemetry"

type env struct {
	store     *shardstore.Store
	client    *kinesis.Client
	url       string       // the Kinesis API's base URL
	iterators atomic.Int64 // GetShardIterator calls answered
}

// start runs a shardstore in t.TempDir() behind the Kinesis API on an
// httptest server and returns an unmodified SDK client pointed at it
// (clientOpts adjust it, e.g. its retries).
func start(t *testing.T, so shardstore.Options, ao kinesisapi.Options, shards int, clientOpts ...func(*kinesis.Options)) *env {
	t.Helper()
	so.TrimInterval = -1
	st := shardstoretest.Open(t, so)
	srv, err := kinesisapi.New(st, ao)
	if err != nil {
		t.Fatal(err)
	}
	e := &env{store: st}
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		srv.ServeHTTP(w, r)
		if r.Header.Get("X-Amz-Target") == "Kinesis_20131202.GetShardIterator" {
			e.iterators.Add(1)
		}
	}))
	t.Cleanup(hs.Close)
	tr := http.DefaultTransport.(*http.Transport).Clone()
	hc := &http.Client{Transport: tr}
	t.Cleanup(hc.CloseIdleConnections)
	cfg := aws.Config{
		Region:      "us-east-1",
		Credentials: aws.NewCredentialsCache(credentials.NewStaticCredentialsProvider("AKIDEXAMPLE", "secret", "")),
		HTTPClient:  hc,
	}
	opts := append([]func(*kinesis.Options){func(o *kinesis.Options) { o.BaseEndpoint = aws.String(hs.URL) }}, clientOpts...)
	e.client, e.url = kinesis.NewFromConfig(cfg, opts...), hs.URL
	if err := st.CreateStream(context.Background(), stream, shards); err != nil {
		t.Fatal(err)
	}
	return e
}

// base is the device time of value 0.
var base = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC).UnixMicro()

// record encodes value n of device dev: two readings, "seq" = n and
// "temp", at time base+n seconds.
func record(t testing.TB, dev string, n int) []byte {
	t.Helper()
	ts := base + int64(n)*1e6
	rs := []protocol.Reading{
		{Device: dev, Name: "seq", Kind: protocol.KindFloat, Value: float64(n), Time: ts, Received: ts + 1000},
		{Device: dev, Name: "temp", Unit: "Cel", Kind: protocol.KindFloat, Value: 20 + float64(n%10), Time: ts, Received: ts + 1000},
	}
	b, err := protocol.AppendRecord(nil, "gw-1", rs)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func devName(i int) string { return fmt.Sprintf("dev-%02d", i) }

// put stores value n of every device in one Put (so per device, values
// land in order) and returns sequence number → device.
func (e *env) put(t testing.TB, devs []string, n int) map[string]string {
	t.Helper()
	entries := make([]shardstore.PutEntry, len(devs))
	for i, d := range devs {
		entries[i] = shardstore.PutEntry{PartitionKey: d, Data: record(t, d, n)}
	}
	res, err := e.store.Put(context.Background(), stream, entries)
	if err != nil {
		t.Fatal(err)
	}
	out := make(map[string]string, len(res))
	for i, r := range res {
		if r.Err != nil {
			t.Fatal(r.Err)
		}
		out[r.SequenceNumber] = devs[i]
	}
	return out
}

func devices(n int) []string {
	var d []string
	for i := range n {
		d = append(d, devName(i))
	}
	return d
}

// collector is a Handler that remembers what it saw.
type collector struct {
	mu      sync.Mutex
	seen    map[string]int               // sequence number → deliveries
	values  map[string][]int             // device → "seq" values in delivery order
	keys    map[protocol.Key]int         // natural keys → deliveries
	batches int                          // handler calls that returned nil
	shards  map[string]map[string]bool   // device → shards it was read from
	hook    func(b consumer.Batch) error // runs first; an error fails the call
}

func newCollector() *collector {
	return &collector{seen: map[string]int{}, values: map[string][]int{}, keys: map[protocol.Key]int{}, shards: map[string]map[string]bool{}}
}

func (c *collector) handle(ctx context.Context, b consumer.Batch) error {
	c.mu.Lock()
	hook := c.hook
	c.mu.Unlock()
	if hook != nil {
		if err := hook(b); err != nil {
			return err
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.batches++
	for _, r := range b.Records {
		c.seen[r.SequenceNumber]++
		if c.shards[r.Device] == nil {
			c.shards[r.Device] = map[string]bool{}
		}
		c.shards[r.Device][b.Shard] = true
	}
	for _, r := range b.Readings {
		c.keys[r.Key()]++
		if r.Name == "seq" {
			c.values[r.Device] = append(c.values[r.Device], int(r.Value))
		}
	}
	return nil
}

func (c *collector) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.seen)
}

// running is a consumer (Kinesis or Kafka) started by run or runKafka.
type running[C consumer.Runner] struct {
	c      C
	cancel context.CancelFunc
	done   chan struct{} // closed when Run returned err
	err    error
}

func (r *running[C]) stop(t testing.TB) {
	t.Helper()
	r.cancel()
	select {
	case <-r.done:
		if r.err != nil {
			t.Errorf("Run: %v", r.err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
}

// startRunner runs c until the test ends.
func startRunner[C consumer.Runner](t testing.TB, c C) *running[C] {
	ctx, cancel := context.WithCancel(context.Background())
	r := &running[C]{c: c, cancel: cancel, done: make(chan struct{})}
	go func() {
		r.err = c.Run(ctx)
		close(r.done)
	}()
	t.Cleanup(func() {
		cancel()
		<-r.done
	})
	return r
}

func run(t testing.TB, client consumer.KinesisAPI, cfg consumer.Config, h consumer.Handler, opts consumer.Options) *running[*consumer.Consumer] {
	t.Helper()
	c, err := consumer.New(client, cfg, h, opts)
	if err != nil {
		t.Fatal(err)
	}
	return startRunner(t, c)
}

func config(t testing.TB, path string) consumer.Config {
	if path == "" {
		path = filepath.Join(t.TempDir(), "checkpoints.db")
	}
	return consumer.Config{
		Stream:         stream,
		Application:    "test",
		PollInterval:   5 * time.Millisecond,
		MaxBackoff:     50 * time.Millisecond,
		ListInterval:   100 * time.Millisecond,
		CheckpointPath: path,
	}
}

// waitCommitted waits until the consumer has checkpointed every open
// shard at its last record: everything is delivered, so whatever was
// delivered twice has been by then.
func waitCommitted(t testing.TB, e *env, r *running[*consumer.Consumer]) {
	t.Helper()
	info, err := e.store.DescribeStream(stream)
	if err != nil {
		t.Fatal(err)
	}
	last := map[string]string{}
	for _, sh := range info.Shards {
		if !sh.Open() {
			continue
		}
		pos, err := e.store.Seek(stream, sh.ShardID, shardstore.Start{Type: shardstore.TrimHorizon})
		for err == nil {
			var res shardstore.ReadResult
			if res, err = e.store.Read(context.Background(), pos, shardstore.MaxReadRecords); err == nil {
				if len(res.Records) == 0 {
					break
				}
				last[sh.ShardID], pos = res.Records[len(res.Records)-1].SequenceNumber, res.Next
			}
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	testenv.WaitFor(t, "every open shard checkpointed at its last record", 10*time.Second, func() bool {
		got := map[string]string{}
		for _, s := range r.c.Stats().Shards {
			got[s.Shard] = s.Checkpoint
		}
		for sh, seq := range last {
			if got[sh] != seq {
				return false
			}
		}
		return true
	})
}

// midpoint is the hash key halfway through a shard's range.
func midpoint(t testing.TB, s *shardstore.Store, shardID string) shardstore.HashKey {
	t.Helper()
	info, err := s.DescribeStream(stream)
	if err != nil {
		t.Fatal(err)
	}
	for _, sh := range info.Shards {
		if sh.ShardID == shardID {
			a, _ := new(big.Int).SetString(sh.StartingHashKey.String(), 10)
			b, _ := new(big.Int).SetString(sh.EndingHashKey.String(), 10)
			m := new(big.Int).Add(a, b)
			m.Rsh(m, 1)
			h, err := shardstore.ParseHashKey(m.String())
			if err != nil {
				t.Fatal(err)
			}
			return h
		}
	}
	t.Fatalf("no shard %s", shardID)
	return shardstore.HashKey{}
}
