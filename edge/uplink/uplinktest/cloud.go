// Package uplinktest is a fake cloud ingest endpoint for tests: a real
// HTTP handler for POST /v1/ingest that follows the cloud contract (bearer
// tokens, Content-Encoding, size limit, protocol.DecodeBatch, dedupe by
// (gateway, epoch, seq)) and records every reading it accepts, with
// controls to inject outages, throttling, failures and latency.
//
// Serve it on 127.0.0.1 with NewServer or NewTLSServer, or in-process
// (no sockets, usable inside a testing/synctest bubble) with New and
// Cloud.Client.
package uplinktest

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"

	"github.com/tributary-iot/tributary/protocol"
)

// IngestPath is the endpoint the Cloud serves.
const IngestPath = "/v1/ingest"

// Options configure a Cloud.
type Options struct {
	// Tokens maps gateway id → bearer token. Nil accepts any gateway
	// with any bearer token (but a request without one is still 401).
	Tokens map[string]string
	// MaxBytes is the largest body accepted, compressed and decompressed
	// (default protocol.MaxBatchBytes); larger is 413.
	MaxBytes int
	// RetryAfter is sent with the 503 answers while down (default 1s).
	RetryAfter time.Duration
	// ClientCAs, when set on a TLS server, makes it require a client
	// certificate signed by one of them.
	ClientCAs *x509.CertPool
}

// Batch describes one accepted request.
type Batch struct {
	Gateway     string
	Epoch       uint64
	First, Last uint64
	Readings    int    // readings in the batch
	Stored      int    // readings not seen before
	Encoding    string // Content-Encoding ("" for identity)
	WireBytes   int    // body bytes as received
	RawBytes    int    // encoded batch bytes
	Time        time.Time
}

// Request is one POST and how it was answered.
type Request struct {
	Time   time.Time
	Status int
	// First and Last are the batch's seq range when it could be decoded.
	First, Last uint64
}

type stream struct {
	gateway string
	epoch   uint64
}

// Cloud is the fake ingest endpoint. It is an http.Handler.
type Cloud struct {
	opts Options
	dec  *zstd.Decoder
	srv  *httptest.Server

	mu         sync.Mutex
	down       bool
	failNext   []int // statuses for the next requests
	loseNext   int   // accept, then answer 503 (a lost acknowledgement)
	latency    time.Duration
	throttleTo time.Time
	seen       map[stream]map[uint64]struct{}
	readings   []protocol.Reading
	batches    []Batch
	requests   []Request
	dups       int
	dupRead    int
	active     map[stream][][2]uint64 // ranges being handled, to catch overlapping requests
	overlaps   int
	changed    chan struct{} // closed and replaced whenever something is recorded
}

// New returns a Cloud that is not listening: use it as an http.Handler or
// through Client. Call Close when done.
func New(opts Options) *Cloud {
	if opts.MaxBytes <= 0 {
		opts.MaxBytes = protocol.MaxBatchBytes
	}
	if opts.RetryAfter <= 0 {
		opts.RetryAfter = time.Second
	}
	dec, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxMemory(uint64(opts.MaxBytes)+1))
	if err != nil {
		panic(err) // only bad options fail
	}
	return &Cloud{
		opts:    opts,
		dec:     dec,
		seen:    map[stream]map[uint64]struct{}{},
		active:  map[stream][][2]uint64{},
		changed: make(chan struct{}),
	}
}

// NewServer starts a Cloud on an HTTP server at 127.0.0.1, closed when
// the test ends.
func NewServer(t testing.TB, opts Options) *Cloud {
	c := New(opts)
	c.srv = httptest.NewServer(c)
	t.Cleanup(c.Close)
	return c
}

// NewTLSServer starts a Cloud on an HTTPS server at 127.0.0.1 (its
// certificate is valid for 127.0.0.1 and "example.com"; see CertPEM),
// closed when the test ends.
func NewTLSServer(t testing.TB, opts Options) *Cloud {
	c := New(opts)
	c.srv = httptest.NewUnstartedServer(c)
	c.srv.Config.ErrorLog = log.New(io.Discard, "", 0) // failed handshakes are what some tests want
	if opts.ClientCAs != nil {
		c.srv.TLS = &tls.Config{ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: opts.ClientCAs}
	}
	c.srv.StartTLS()
	t.Cleanup(c.Close)
	return c
}

// URL is the server's base URL (NewServer, NewTLSServer), or
// "http://localhost" for an in-process Cloud (it never dials).
func (c *Cloud) URL() string {
	if c.srv == nil {
		return "http://localhost"
	}
	return c.srv.URL
}

// CertPEM is the TLS server's certificate in PEM: write it to a file to
// use as a CA file. Nil for a plain HTTP or in-process Cloud.
func (c *Cloud) CertPEM() []byte {
	if c.srv == nil || c.srv.TLS == nil {
		return nil
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.srv.Certificate().Raw})
}

// Client returns a client for the Cloud: for a server, one that trusts
// its certificate; for an in-process Cloud, one whose transport calls the
// handler directly (no sockets, so it works inside a synctest bubble).
func (c *Cloud) Client() *http.Client {
	if c.srv != nil {
		return c.srv.Client()
	}
	return &http.Client{Transport: handlerTransport{c}}
}

// Close stops the server, if any, and releases the decoder.
func (c *Cloud) Close() {
	if c.srv != nil {
		c.srv.Close()
	}
	c.dec.Close()
}

type handlerTransport struct{ h http.Handler }

func (t handlerTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if err := req.Context().Err(); err != nil {
		return nil, err
	}
	in := req.Clone(req.Context())
	in.RequestURI = req.URL.RequestURI()
	in.RemoteAddr = "127.0.0.1:1"
	if in.Body == nil {
		in.Body = http.NoBody
	}
	rec := httptest.NewRecorder()
	t.h.ServeHTTP(rec, in)
	if err := req.Context().Err(); err != nil {
		return nil, err
	}
	resp := rec.Result()
	resp.Request = req
	return resp, nil
}

// SetDown makes every request fail with 503 and Retry-After
// (Options.RetryAfter) until SetDown(false).
func (c *Cloud) SetDown(down bool) {
	c.mu.Lock()
	c.down = down
	c.mu.Unlock()
}

// FailNext makes the next n requests fail with status and a JSON error,
// before any other check. Calls queue up.
func (c *Cloud) FailNext(n, status int) {
	c.mu.Lock()
	for range n {
		c.failNext = append(c.failNext, status)
	}
	c.mu.Unlock()
}

// LoseNext makes the next n requests that would be accepted be stored,
// then answered with 503: the acknowledgement is lost, so the gateway
// sends the batch again and the Cloud must not store it twice.
func (c *Cloud) LoseNext(n int) {
	c.mu.Lock()
	c.loseNext += n
	c.mu.Unlock()
}

// SetTokens replaces Options.Tokens (a token issued or revoked).
func (c *Cloud) SetTokens(tokens map[string]string) {
	c.mu.Lock()
	c.opts.Tokens = tokens
	c.mu.Unlock()
}

// SetLatency delays every answer by d.
func (c *Cloud) SetLatency(d time.Duration) {
	c.mu.Lock()
	c.latency = d
	c.mu.Unlock()
}

// Throttle answers every request with 429 and a Retry-After of the time
// left (whole seconds, rounded up) for the next retryAfter; 0 ends it.
func (c *Cloud) Throttle(retryAfter time.Duration) {
	c.mu.Lock()
	c.throttleTo = time.Now().Add(retryAfter)
	c.mu.Unlock()
}

type apiError struct {
	Error string `json:"error"`
}

func writeError(w http.ResponseWriter, status int, format string, args ...any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(apiError{Error: fmt.Sprintf(format, args...)})
}

// ServeHTTP implements POST /v1/ingest.
func (c *Cloud) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != IngestPath {
		writeError(w, http.StatusNotFound, "no such endpoint %s; batches go to %s", r.URL.Path, IngestPath)
		return
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		writeError(w, http.StatusMethodNotAllowed, "use POST")
		return
	}
	start := time.Now()
	status, first, last := c.serve(w, r)
	c.mu.Lock()
	c.requests = append(c.requests, Request{Time: start, Status: status, First: first, Last: last})
	c.notifyLocked()
	c.mu.Unlock()
}

// answer is an error response: its status, JSON message and, for 429
// and 503, Retry-After seconds.
type answer struct {
	status     int
	retryAfter int
	msg        string
}

func reject(status int, format string, args ...any) *answer {
	return &answer{status: status, msg: fmt.Sprintf(format, args...)}
}

func (a *answer) write(w http.ResponseWriter) int {
	if a.retryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(a.retryAfter))
	}
	writeError(w, a.status, "%s", a.msg)
	return a.status
}

// incoming is a request body, decoded up front (errors are answered
// later, in the contract's order) so that the seq range is known while
// the request is handled.
type incoming struct {
	enc         string // Content-Encoding
	body, raw   []byte // as received, decompressed
	b           *protocol.Batch
	derr, berr  error // decompression, batch decoding
	first, last uint64
}

// serve answers one POST: read the body, decode it, track its seq range,
// wait the injected latency, apply injected faults, check the request
// against the contract, store the batch.
func (c *Cloud) serve(w http.ResponseWriter, r *http.Request) (status int, first, last uint64) {
	body, a := c.readBody(w, r)
	if a != nil {
		return a.write(w), 0, 0
	}
	in := c.decode(r, body)
	if in.b != nil {
		defer c.track(in)()
	}
	if !c.wait(r.Context()) {
		return 0, in.first, in.last
	}
	if a := c.injected(); a != nil {
		return a.write(w), in.first, in.last
	}
	if a := c.check(r, in); a != nil {
		return a.write(w), in.first, in.last
	}
	return c.store(w, in), in.first, in.last
}

func (c *Cloud) readBody(w http.ResponseWriter, r *http.Request) ([]byte, *answer) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, int64(c.opts.MaxBytes)))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, reject(http.StatusRequestEntityTooLarge, "body over %d bytes", c.opts.MaxBytes)
		}
		return nil, reject(http.StatusBadRequest, "reading the body: %v", err)
	}
	return body, nil
}

func (c *Cloud) decode(r *http.Request, body []byte) *incoming {
	in := &incoming{enc: r.Header.Get("Content-Encoding"), body: body}
	in.raw, in.derr = c.decompress(in.enc, body)
	if in.derr == nil {
		in.b, in.berr = protocol.DecodeBatch(in.raw)
	}
	if in.b != nil {
		in.first, in.last = in.b.FirstSeq, in.b.LastSeq()
	}
	return in
}

// track records the request's seq range as being handled (counting
// overlaps with others of the same stream); the returned func forgets it.
func (c *Cloud) track(in *incoming) func() {
	key, rng := stream{in.b.Gateway, in.b.Epoch}, [2]uint64{in.first, in.last}
	c.mu.Lock()
	for _, a := range c.active[key] {
		if in.first <= a[1] && a[0] <= in.last {
			c.overlaps++
		}
	}
	c.active[key] = append(c.active[key], rng)
	c.mu.Unlock()
	return func() {
		c.mu.Lock()
		if i := slices.Index(c.active[key], rng); i >= 0 {
			c.active[key] = slices.Delete(c.active[key], i, i+1)
		}
		c.mu.Unlock()
	}
}

// wait waits the injected latency; false if the client gave up.
func (c *Cloud) wait(ctx context.Context) bool {
	c.mu.Lock()
	latency := c.latency
	c.mu.Unlock()
	if latency <= 0 {
		return true
	}
	t := time.NewTimer(latency)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// injected answers an outage, throttling or an injected failure.
func (c *Cloud) injected() *answer {
	c.mu.Lock()
	down, left := c.down, time.Until(c.throttleTo)
	fail := 0
	if !down && left <= 0 && len(c.failNext) > 0 {
		fail, c.failNext = c.failNext[0], c.failNext[1:]
	}
	c.mu.Unlock()
	switch {
	case down:
		a := reject(http.StatusServiceUnavailable, "ingest is down")
		a.retryAfter = ceilSeconds(c.opts.RetryAfter)
		return a
	case left > 0:
		a := reject(http.StatusTooManyRequests, "shards at capacity")
		a.retryAfter = ceilSeconds(left)
		return a
	case fail != 0:
		return reject(fail, "injected failure %d", fail)
	}
	return nil
}

// check applies the contract's checks, in its order: bearer token,
// content type, encoding, batch, token for the batch's gateway.
func (c *Cloud) check(r *http.Request, in *incoming) *answer {
	gateway, a := c.authenticate(r)
	if a != nil {
		return a
	}
	if ct := r.Header.Get("Content-Type"); ct != protocol.ContentTypeBatch {
		return reject(http.StatusUnsupportedMediaType, "content type %q, want %s", ct, protocol.ContentTypeBatch)
	}
	switch err := in.derr; {
	case errors.Is(err, errUnsupported):
		return reject(http.StatusUnsupportedMediaType, "%v", err)
	case errors.Is(err, errTooLarge):
		return reject(http.StatusRequestEntityTooLarge, "%v", err)
	case err != nil:
		return reject(http.StatusBadRequest, "%v", err)
	}
	if in.berr != nil {
		if errors.Is(in.berr, protocol.ErrTooLarge) {
			return reject(http.StatusRequestEntityTooLarge, "%v", in.berr)
		}
		return reject(http.StatusBadRequest, "%v", in.berr)
	}
	if gateway != "" && in.b.Gateway != gateway {
		return reject(http.StatusUnauthorized, "token is not valid for gateway %s", in.b.Gateway)
	}
	return nil
}

// authenticate returns the gateway the bearer token belongs to ("" when
// any token is accepted).
func (c *Cloud) authenticate(r *http.Request) (string, *answer) {
	token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || token == "" {
		return "", reject(http.StatusUnauthorized, "missing bearer token")
	}
	c.mu.Lock()
	toks := c.opts.Tokens
	c.mu.Unlock()
	if toks == nil {
		return "", nil
	}
	gateway := ""
	for gw, tok := range toks {
		if tok == token {
			gateway = gw
		}
	}
	if gateway == "" {
		return "", reject(http.StatusUnauthorized, "unknown token")
	}
	return gateway, nil
}

// store records the batch's new readings (deduplicated by seq) and
// acknowledges it, unless its acknowledgement is to be lost.
func (c *Cloud) store(w http.ResponseWriter, in *incoming) int {
	b := in.b
	key := stream{b.Gateway, b.Epoch}
	c.mu.Lock()
	seen := c.seen[key]
	if seen == nil {
		seen = map[uint64]struct{}{}
		c.seen[key] = seen
	}
	stored, dup := 0, false
	for i := range b.Readings {
		seq := in.first + uint64(i)
		if _, ok := seen[seq]; ok {
			dup = true
			c.dupRead++
			continue
		}
		seen[seq] = struct{}{}
		c.readings = append(c.readings, b.Readings[i])
		stored++
	}
	if dup {
		c.dups++
	}
	c.batches = append(c.batches, Batch{
		Gateway: b.Gateway, Epoch: b.Epoch, First: in.first, Last: in.last,
		Readings: len(b.Readings), Stored: stored, Encoding: in.enc,
		WireBytes: len(in.body), RawBytes: len(in.raw), Time: time.Now(),
	})
	lose := c.loseNext > 0
	if lose {
		c.loseNext--
	}
	c.notifyLocked()
	c.mu.Unlock()
	if lose {
		return reject(http.StatusServiceUnavailable, "stored, but the acknowledgement is lost (injected)").write(w)
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(struct {
		Gateway string `json:"gateway"`
		Epoch   uint64 `json:"epoch"`
		First   uint64 `json:"first"`
		Last    uint64 `json:"last"`
		Stored  int    `json:"stored"`
	}{b.Gateway, b.Epoch, in.first, in.last, stored})
	return http.StatusOK
}

var (
	errUnsupported = errors.New("unsupported content encoding")
	errTooLarge    = errors.New("decompressed body too large")
)

func (c *Cloud) decompress(enc string, body []byte) ([]byte, error) {
	limit := c.opts.MaxBytes
	switch enc {
	case "", "identity":
		return body, nil
	case "zstd":
		out, err := c.dec.DecodeAll(body, nil)
		if err != nil {
			if errors.Is(err, zstd.ErrDecoderSizeExceeded) || errors.Is(err, zstd.ErrWindowSizeExceeded) {
				return nil, fmt.Errorf("%w: over %d bytes", errTooLarge, limit)
			}
			return nil, fmt.Errorf("zstd: %v", err)
		}
		if len(out) > limit {
			return nil, fmt.Errorf("%w: %d bytes, limit %d", errTooLarge, len(out), limit)
		}
		return out, nil
	case "gzip":
		zr, err := gzip.NewReader(bytes.NewReader(body))
		if err != nil {
			return nil, fmt.Errorf("gzip: %v", err)
		}
		out, err := io.ReadAll(io.LimitReader(zr, int64(limit)+1))
		if err != nil {
			return nil, fmt.Errorf("gzip: %v", err)
		}
		if len(out) > limit {
			return nil, fmt.Errorf("%w: over %d bytes", errTooLarge, limit)
		}
		return out, nil
	}
	return nil, fmt.Errorf("%w %q: use zstd, gzip or identity", errUnsupported, enc)
}

func ceilSeconds(d time.Duration) int { return int((d + time.Second - 1) / time.Second) }

func (c *Cloud) notifyLocked() {
	close(c.changed)
	c.changed = make(chan struct{})
}

// Readings returns a copy of every accepted reading, in arrival order,
// each stored once.
func (c *Cloud) Readings() []protocol.Reading {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.readings)
}

// Count is the number of readings stored.
func (c *Cloud) Count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.readings)
}

// Batches returns the accepted requests, in arrival order (a resent batch
// appears again, with Stored 0).
func (c *Cloud) Batches() []Batch {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.batches)
}

// Requests returns every request and its answer, in arrival order.
func (c *Cloud) Requests() []Request {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.requests)
}

// Duplicates is the number of accepted batches that carried seqs already
// stored (resent after a lost acknowledgement or a timeout).
func (c *Cloud) Duplicates() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.dups
}

// Overlaps is the number of times a request arrived while another request
// for an overlapping seq range of the same stream was being handled: a
// gateway should never send the same readings twice concurrently.
func (c *Cloud) Overlaps() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.overlaps
}

// UniqueKeys is the number of distinct natural keys stored.
func (c *Cloud) UniqueKeys() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	keys := make(map[protocol.Key]struct{}, len(c.readings))
	for i := range c.readings {
		keys[c.readings[i].Key()] = struct{}{}
	}
	return len(keys)
}

// WaitCount waits until at least n readings are stored or ctx is done.
func (c *Cloud) WaitCount(ctx context.Context, n int) error {
	for {
		c.mu.Lock()
		have, ch := len(c.readings), c.changed
		c.mu.Unlock()
		if have >= n {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("uplinktest: %d of %d readings stored: %w", have, n, ctx.Err())
		case <-ch:
		}
	}
}

// Keys returns the natural keys of rs, in order (the want of
// AssertExactlyOnce).
func Keys(rs []protocol.Reading) []protocol.Key {
	ks := make([]protocol.Key, len(rs))
	for i := range rs {
		ks[i] = rs[i].Key()
	}
	return ks
}

// AssertExactlyOnce reports (t.Error) every natural key of want that was
// not stored, stored more than once, and every stored key not in want. It
// returns whether all is well.
func (c *Cloud) AssertExactlyOnce(t testing.TB, want []protocol.Key) bool {
	t.Helper()
	c.mu.Lock()
	got := make(map[protocol.Key]int, len(c.readings))
	for i := range c.readings {
		got[c.readings[i].Key()]++
	}
	c.mu.Unlock()
	wanted := make(map[protocol.Key]bool, len(want))
	var lost, dup, extra []protocol.Key
	for _, k := range want {
		if wanted[k] {
			continue
		}
		wanted[k] = true
		switch n := got[k]; {
		case n == 0:
			lost = append(lost, k)
		case n > 1:
			dup = append(dup, k)
		}
	}
	for k := range got {
		if !wanted[k] {
			extra = append(extra, k)
		}
	}
	report := func(what string, ks []protocol.Key) {
		if len(ks) == 0 {
			return
		}
		slices.SortFunc(ks, func(a, b protocol.Key) int {
			return strings.Compare(fmt.Sprint(a), fmt.Sprint(b))
		})
		show := ks[:min(len(ks), 5)]
		t.Errorf("uplinktest: %d readings %s (of %d wanted), e.g. %v", len(ks), what, len(wanted), show)
	}
	report("lost", lost)
	report("stored more than once", dup)
	report("stored but not wanted", extra)
	return len(lost)+len(dup)+len(extra) == 0
}
