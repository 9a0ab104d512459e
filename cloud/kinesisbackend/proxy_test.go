package kinesisbackend_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"io"
	"math/rand/v2"
	"net/http"
	"sync"
)

// faultProxy sits between the SDK and a real Kinesis API (kinesalite, our
// kinesisapi) and fakes Kinesis's failures for real:
//
//   - partial failures: it removes chosen entries from a PutRecords
//     request before forwarding it (so they are not written) and splices
//     ProvisionedThroughputExceededException results for them into the
//     answer, at their positions;
//   - throttled calls: it answers a whole call 400
//     ProvisionedThroughputExceededException without forwarding it (the
//     first time it sees that body; the SDK's retry then passes);
//   - lost answers: it forwards a call (written) and answers 500, the
//     first time it sees that body, so the retry writes it again.
type faultProxy struct {
	target string
	client *http.Client

	mu             sync.Mutex
	rng            *rand.Rand
	entryFailRate  float64
	throttleCallsN int // throttle a call whose body hash ≡ 0 mod N
	loseAnswersN   int // lose the answer of a call whose body hash ≡ 0 mod N
	seen           map[[32]byte]bool

	calls, entriesFailed, callsThrottled, answersLost, recordsInLostAnswers int
	keysTwiceInCall, maxCallEntries, maxCallBytes                           int
}

func newFaultProxy(target string, seed uint64) *faultProxy {
	return &faultProxy{
		target: target,
		client: &http.Client{Transport: &http.Transport{}},
		rng:    rand.New(rand.NewPCG(seed, seed)),
		seen:   map[[32]byte]bool{},
	}
}

func (p *faultProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), 500)
		return
	}
	if r.Header.Get("X-Amz-Target") != "Kinesis_20131202.PutRecords" {
		p.forward(w, r, body)
		return
	}
	var req map[string]json.RawMessage
	var recs []json.RawMessage
	if json.Unmarshal(body, &req) != nil || json.Unmarshal(req["Records"], &recs) != nil {
		p.forward(w, r, body)
		return
	}
	sum := sha256.Sum256(body)
	p.mu.Lock()
	p.calls++
	first := !p.seen[sum]
	p.seen[sum] = true
	keys := map[string]bool{}
	size, dup := 0, false
	for _, raw := range recs {
		var rec struct {
			Data         []byte
			PartitionKey string
		}
		json.Unmarshal(raw, &rec)
		dup = dup || keys[rec.PartitionKey]
		keys[rec.PartitionKey] = true
		size += len(rec.Data) + len(rec.PartitionKey)
	}
	if dup {
		p.keysTwiceInCall++
	}
	p.maxCallEntries = max(p.maxCallEntries, len(recs))
	p.maxCallBytes = max(p.maxCallBytes, size)
	if first && p.throttleCallsN > 0 && sum[0]%byte(p.throttleCallsN) == 0 {
		p.callsThrottled++
		p.mu.Unlock()
		writeJSON(w, 400, map[string]string{"__type": "ProvisionedThroughputExceededException", "message": "Rate exceeded for stream (injected)"})
		return
	}
	lose := first && p.loseAnswersN > 0 && sum[1]%byte(p.loseAnswersN) == 0
	failed := make([]bool, len(recs))
	var kept []json.RawMessage
	for i := range recs {
		if p.rng.Float64() < p.entryFailRate {
			failed[i] = true
			p.entriesFailed++
		} else {
			kept = append(kept, recs[i])
		}
	}
	if lose {
		p.answersLost++
		p.recordsInLostAnswers += len(kept)
	}
	p.mu.Unlock()

	var results []json.RawMessage
	if len(kept) > 0 {
		req["Records"], _ = json.Marshal(kept)
		nb, _ := json.Marshal(req)
		status, hdr, rb, err := p.do(r, nb)
		if err != nil {
			http.Error(w, err.Error(), 502)
			return
		}
		if status != 200 {
			copyHeaders(w, hdr)
			w.WriteHeader(status)
			w.Write(rb)
			return
		}
		var resp struct{ Records []json.RawMessage }
		if err := json.Unmarshal(rb, &resp); err != nil || len(resp.Records) != len(kept) {
			http.Error(w, "proxy: bad answer from target", 502)
			return
		}
		results = resp.Records
	}
	if lose {
		writeJSON(w, 500, map[string]string{"__type": "InternalFailure", "message": "answer lost (injected)"})
		return
	}
	out := struct {
		FailedRecordCount int
		Records           []json.RawMessage
	}{}
	for i := range recs {
		if failed[i] {
			out.FailedRecordCount++
			out.Records = append(out.Records, json.RawMessage(
				`{"ErrorCode":"ProvisionedThroughputExceededException","ErrorMessage":"Rate exceeded for shard (injected)"}`))
			continue
		}
		out.Records = append(out.Records, results[0])
		results = results[1:]
	}
	writeJSON(w, 200, out)
}

func (p *faultProxy) forward(w http.ResponseWriter, r *http.Request, body []byte) {
	status, hdr, rb, err := p.do(r, body)
	if err != nil {
		http.Error(w, err.Error(), 502)
		return
	}
	copyHeaders(w, hdr)
	w.WriteHeader(status)
	w.Write(rb)
}

func (p *faultProxy) do(r *http.Request, body []byte) (int, http.Header, []byte, error) {
	req, err := http.NewRequestWithContext(r.Context(), r.Method, p.target+r.URL.RequestURI(), bytes.NewReader(body))
	if err != nil {
		return 0, nil, nil, err
	}
	for k, v := range r.Header {
		if k != "Content-Length" && k != "Accept-Encoding" {
			req.Header[k] = v
		}
	}
	resp, err := p.client.Do(req)
	if err != nil {
		return 0, nil, nil, err
	}
	defer resp.Body.Close()
	rb, err := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, rb, err
}

func (p *faultProxy) close() { p.client.CloseIdleConnections() }

func copyHeaders(w http.ResponseWriter, h http.Header) {
	for _, k := range []string{"Content-Type", "X-Amzn-Requestid", "X-Amzn-Errortype"} {
		if v := h.Get(k); v != "" {
			w.Header().Set(k, v)
		}
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, _ := json.Marshal(v)
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	w.WriteHeader(status)
	w.Write(b)
}
