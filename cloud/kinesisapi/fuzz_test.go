package kinesisapi

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/tributary-iot/tributary/cloud/shardstore"
)

// FuzzServeHTTP sends arbitrary bodies to every operation: the server
// must answer every one with valid JSON and a client error or success,
// never a 500 or a panic.
func FuzzServeHTTP(f *testing.F) {
	st, err := shardstore.Open(filepath.Join(f.TempDir(), "fuzz.db"), shardstore.Options{TrimInterval: -1, Throughput: shardstore.Throughput{Unlimited: true}, MaxStreams: 1000})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { st.Close() })
	ctx := context.Background()
	if err := st.CreateStream(ctx, "s", 2); err != nil {
		f.Fatal(err)
	}
	if _, err := st.Put(ctx, "s", []shardstore.PutEntry{{PartitionKey: "k", Data: []byte("x")}}); err != nil {
		f.Fatal(err)
	}
	srv, err := New(st, Options{})
	if err != nil {
		f.Fatal(err)
	}
	ops := make([]string, 0, len(handlers))
	for op := range handlers {
		ops = append(ops, op)
	}
	slices.Sort(ops)
	pos, _ := st.Seek("s", "shardId-000000000000", shardstore.Start{Type: shardstore.TrimHorizon})
	it := srv.iterator(pos)
	for i := range ops {
		for _, body := range []string{
			`{}`, `{"StreamName":"s"}`, `{"StreamName":"s","Limit":2}`, `{"StreamARN":"arn:aws:kinesis:us-east-1:000000000000:stream/s"}`,
			`{"StreamName":"s","ShardId":"shardId-000000000000","ShardIteratorType":"AT_TIMESTAMP","Timestamp":1.5}`,
			`{"StreamName":"s","Records":[{"Data":"eA==","PartitionKey":"k"}]}`, `{"StreamName":"s","Data":"eA==","PartitionKey":"k","ExplicitHashKey":"7"}`,
			`{"ShardIterator":"` + it + `","Limit":10}`, `{"StreamName":"s","ShardToSplit":"shardId-000000000001","NewStartingHashKey":"170141183460469231731687303715884105729"}`,
			`{"StreamName":"s","ShardFilter":{"Type":"AT_TIMESTAMP","Timestamp":"2020-01-01T00:00:00Z"}}`, `{"StreamName":"s","TargetShardCount":3,"ScalingType":"UNIFORM_SCALING"}`,
			`{"StreamName":"t","ShardCount":1}`, `{"StreamName":"s","RetentionPeriodHours":48}`, `null`, `[]`, `{"StreamName":5}`,
		} {
			f.Add(uint8(i), []byte(body))
		}
	}
	f.Fuzz(func(t *testing.T, op uint8, body []byte) {
		name := ops[int(op)%len(ops)]
		if name == "DeleteStream" {
			return // keep the fixture
		}
		req := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(string(body)))
		req.Header.Set("X-Amz-Target", targetPrefix+name)
		req.Header.Set("Content-Type", contentJSON)
		w := httptest.NewRecorder()
		srv.ServeHTTP(w, req)
		if w.Code >= 500 {
			t.Fatalf("%s %q: %d %s", name, body, w.Code, w.Body)
		}
		if !json.Valid(w.Body.Bytes()) {
			t.Fatalf("%s %q: invalid JSON %q", name, body, w.Body)
		}
	})
}
