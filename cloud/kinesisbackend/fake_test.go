package kinesisbackend_test

import (
	"bytes"
	"crypto/md5"
	"encoding/json"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"strings"
	"sync"
	"time"
)

// fakeKinesis answers the Kinesis JSON 1.1 protocol (ListShards,
// PutRecords) in process, as an http.RoundTripper, so that tests run the
// real SDK inside a synctest bubble. Its shards enforce Kinesis's write
// limits with token buckets (like cloud/shardstore) and fail entries over
// them with ProvisionedThroughputExceededException, as Kinesis does.
type fakeKinesis struct {
	mu     sync.Mutex
	stream string
	shards []*fakeShard
	// Hooks, all optional.
	alwaysThrottle map[string]bool                          // shard IDs
	entryError     func(key string) string                  // an ErrorCode for the entry, or ""
	callError      func(call int) (status int, code string) // fail a whole call before writing
	lieAfterWrite  func(call int) bool                      // write, then answer 500
	delay          time.Duration                            // before answering a PutRecords
	noLimits       bool

	putCalls, listCalls int
	throttled           int            // entries failed for capacity
	attemptsByKey       map[string]int // entries sent, by partition key
	keysTwiceInCall     int
	maxCallEntries      int
	maxCallBytes        int
}

type fakeShard struct {
	id         string
	start, end *big.Int
	closed     bool
	recs       []fakeRecord
	tokens     float64
	byteTokens float64
	last       time.Time
	nextSeq    int
}

type fakeRecord struct {
	key, data, seq string
	at             time.Time
}

func newFakeKinesis(stream string, nShards int) *fakeKinesis {
	f := &fakeKinesis{stream: stream, alwaysThrottle: map[string]bool{}, attemptsByKey: map[string]int{}}
	space := new(big.Int).Lsh(big.NewInt(1), 128)
	step := new(big.Int).Div(space, big.NewInt(int64(nShards)))
	for i := 0; i < nShards; i++ {
		start := new(big.Int).Mul(step, big.NewInt(int64(i)))
		end := new(big.Int).Sub(new(big.Int).Add(start, step), big.NewInt(1))
		if i == nShards-1 {
			end = new(big.Int).Sub(space, big.NewInt(1))
		}
		f.addShard(start, end)
	}
	return f
}

func (f *fakeKinesis) addShard(start, end *big.Int) *fakeShard {
	s := &fakeShard{id: fmt.Sprintf("shardId-%012d", len(f.shards)), start: start, end: end,
		tokens: 1000, byteTokens: 1 << 20, last: time.Now()}
	f.shards = append(f.shards, s)
	return s
}

// split closes shard i and opens two children over its halves.
func (f *fakeKinesis) split(i int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	p := f.shards[i]
	p.closed = true
	mid := new(big.Int).Rsh(new(big.Int).Add(p.start, p.end), 1)
	f.addShard(p.start, mid)
	f.addShard(new(big.Int).Add(mid, big.NewInt(1)), p.end)
}

func (f *fakeKinesis) route(key string) *fakeShard {
	sum := md5.Sum([]byte(key))
	h := new(big.Int).SetBytes(sum[:])
	for _, s := range f.shards {
		if !s.closed && h.Cmp(s.start) >= 0 && h.Cmp(s.end) <= 0 {
			return s
		}
	}
	panic("no shard for " + key)
}

func (s *fakeShard) admit(now time.Time, size int) bool {
	dt := now.Sub(s.last).Seconds()
	s.last = now
	s.tokens = min(1000, s.tokens+dt*1000)
	s.byteTokens = min(1<<20, s.byteTokens+dt*(1<<20))
	if s.tokens < 1 || s.byteTokens < float64(size) {
		return false
	}
	s.tokens--
	s.byteTokens -= float64(size)
	return true
}

// records returns every stored record by partition key, in stream order.
func (f *fakeKinesis) records() map[string][]fakeRecord {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := map[string][]fakeRecord{}
	for _, s := range f.shards {
		for _, r := range s.recs {
			out[r.key] = append(out[r.key], r)
		}
	}
	return out
}

func (f *fakeKinesis) stats() (putCalls, listCalls, throttled, keysTwice int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.putCalls, f.listCalls, f.throttled, f.keysTwiceInCall
}

func (f *fakeKinesis) RoundTrip(req *http.Request) (*http.Response, error) {
	body, err := io.ReadAll(req.Body)
	req.Body.Close()
	if err != nil {
		return nil, err
	}
	target := strings.TrimPrefix(req.Header.Get("X-Amz-Target"), "Kinesis_20131202.")
	switch target {
	case "ListShards":
		return f.listShards(req)
	case "PutRecords":
		return f.putRecords(req, body)
	}
	return jsonError(req, 400, "UnknownOperationException", target), nil
}

func (f *fakeKinesis) listShards(req *http.Request) (*http.Response, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.listCalls++
	type hkr struct{ StartingHashKey, EndingHashKey string }
	type snr struct {
		StartingSequenceNumber string
		EndingSequenceNumber   string `json:",omitempty"`
	}
	type shard struct {
		ShardId             string
		HashKeyRange        hkr
		SequenceNumberRange snr
	}
	var out struct{ Shards []shard }
	for _, s := range f.shards {
		sh := shard{ShardId: s.id, HashKeyRange: hkr{s.start.String(), s.end.String()}, SequenceNumberRange: snr{StartingSequenceNumber: "0"}}
		if s.closed {
			sh.SequenceNumberRange.EndingSequenceNumber = "99999"
		}
		out.Shards = append(out.Shards, sh)
	}
	return jsonOK(req, out), nil
}

func (f *fakeKinesis) putRecords(req *http.Request, body []byte) (*http.Response, error) {
	var in struct {
		StreamName string
		Records    []struct {
			Data         []byte
			PartitionKey string
		}
	}
	if err := json.Unmarshal(body, &in); err != nil {
		return jsonError(req, 400, "SerializationException", err.Error()), nil
	}
	if f.delay > 0 {
		select {
		case <-time.After(f.delay):
		case <-req.Context().Done():
			return nil, req.Context().Err()
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.putCalls++
	call := f.putCalls
	if in.StreamName != f.stream {
		return jsonError(req, 400, "ResourceNotFoundException", "Stream "+in.StreamName+" under account 000000000000 not found."), nil
	}
	if f.callError != nil {
		if status, code := f.callError(call); status != 0 {
			return jsonError(req, status, code, "injected"), nil
		}
	}
	type result struct {
		SequenceNumber, ShardId string `json:",omitempty"`
		ErrorCode, ErrorMessage string `json:",omitempty"`
	}
	var out struct {
		FailedRecordCount int
		Records           []result
	}
	now := time.Now()
	f.maxCallEntries = max(f.maxCallEntries, len(in.Records))
	nb := 0
	for _, r := range in.Records {
		nb += len(r.Data) + len(r.PartitionKey)
	}
	f.maxCallBytes = max(f.maxCallBytes, nb)
	seen := map[string]bool{}
	dup := false
	for _, r := range in.Records {
		f.attemptsByKey[r.PartitionKey]++
		dup = dup || seen[r.PartitionKey]
		seen[r.PartitionKey] = true
		s := f.route(r.PartitionKey)
		if code := f.entryErrorFor(r.PartitionKey); code != "" {
			out.Records = append(out.Records, result{ErrorCode: code, ErrorMessage: "injected"})
			out.FailedRecordCount++
			continue
		}
		if f.alwaysThrottle[s.id] || (!f.noLimits && !s.admit(now, len(r.Data)+len(r.PartitionKey))) {
			f.throttled++
			out.Records = append(out.Records, result{ErrorCode: "ProvisionedThroughputExceededException",
				ErrorMessage: "Rate exceeded for shard " + s.id + " in stream " + f.stream + " under account 000000000000."})
			out.FailedRecordCount++
			continue
		}
		s.nextSeq++
		seq := fmt.Sprintf("%s-%08d", s.id, s.nextSeq)
		s.recs = append(s.recs, fakeRecord{key: r.PartitionKey, data: string(r.Data), seq: seq, at: now})
		out.Records = append(out.Records, result{SequenceNumber: seq, ShardId: s.id})
	}
	if dup {
		f.keysTwiceInCall++
	}
	if f.lieAfterWrite != nil && f.lieAfterWrite(call) {
		return jsonError(req, 500, "InternalFailure", "injected after write"), nil
	}
	return jsonOK(req, out), nil
}

func (f *fakeKinesis) entryErrorFor(key string) string {
	if f.entryError == nil {
		return ""
	}
	return f.entryError(key)
}

func jsonOK(req *http.Request, v any) *http.Response {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return respond(req, 200, b)
}

func jsonError(req *http.Request, status int, code, msg string) *http.Response {
	b, _ := json.Marshal(map[string]string{"__type": code, "message": msg})
	return respond(req, status, b)
}

func respond(req *http.Request, status int, b []byte) *http.Response {
	return &http.Response{
		StatusCode:    status,
		Status:        http.StatusText(status),
		Proto:         "HTTP/1.1",
		ProtoMajor:    1,
		ProtoMinor:    1,
		Header:        http.Header{"Content-Type": {"application/x-amz-json-1.1"}, "X-Amzn-Requestid": {"fake"}},
		Body:          io.NopCloser(bytes.NewReader(b)),
		ContentLength: int64(len(b)),
		Request:       req,
	}
}
