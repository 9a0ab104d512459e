package kinesisapi

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tributary-iot/tributary/cloud/shardstore"
	"github.com/tributary-iot/tributary/internal/defaults"
)

// Defaults of Options.
const (
	DefaultRegion       = "us-east-1"
	DefaultAccount      = "000000000000"
	DefaultIteratorTTL  = 5 * time.Minute
	DefaultMaxBodyBytes = 8 << 20
	// listTokenTTL is how long a ListShards NextToken stays valid.
	listTokenTTL = 5 * time.Minute
	targetPrefix = "Kinesis_20131202."
	contentJSON  = "application/x-amz-json-1.1"
	contentCBOR  = "application/x-amz-cbor-1.1"
)

// Options configure a Server. The zero value is valid.
type Options struct {
	// Region and Account appear in stream ARNs and messages (defaults
	// us-east-1 and 000000000000). A StreamARN naming another region or
	// account names no stream here.
	Region, Account string
	// Credentials maps access key ids to secret keys. When set, every
	// request must carry a valid AWS Signature Version 4 (service
	// "kinesis", this Region, host and x-amz-target among the signed
	// headers) by one of them, its headers checked before the body is
	// read; when empty, any signature, or none, is accepted (like
	// kinesalite).
	Credentials map[string]string
	// IteratorKey is the 32-byte AES-256 key that seals shard iterators
	// and list tokens. Default: random per process, so iterators do not
	// survive a restart (clients then get InvalidArgumentException and
	// ask for a new one, as after expiry).
	IteratorKey []byte
	// IteratorTTL is how long a shard iterator is valid (default 5 min).
	IteratorTTL time.Duration
	// MaxBodyBytes bounds request bodies (default 8 MiB: a full
	// PutRecords is 5 MiB of data, 6.7 MiB once base64-encoded).
	MaxBodyBytes int64
	// Now is the clock for iterator expiry and signatures (default
	// time.Now). The store has its own.
	Now func() time.Time
	// Logger gets request failures (and every request at debug level).
	Logger *slog.Logger
	// Registerer, if set, gets the server's Prometheus metrics.
	Registerer prometheus.Registerer
}

// Server answers the Kinesis Data Streams JSON 1.1 protocol over a
// shardstore.Store. It is an http.Handler; it serves every path.
type Server struct {
	store  *shardstore.Store
	opts   Options
	log    *slog.Logger
	sealer *sealer
	m      *metrics
}

var _ http.Handler = (*Server)(nil)

// New returns a Server over store.
func New(store *shardstore.Store, opts Options) (*Server, error) {
	defaults.Set(&opts.Region, DefaultRegion)
	defaults.Set(&opts.Account, DefaultAccount)
	defaults.Set(&opts.IteratorTTL, DefaultIteratorTTL)
	defaults.Set(&opts.MaxBodyBytes, DefaultMaxBodyBytes)
	if opts.IteratorTTL < 0 || opts.MaxBodyBytes < 0 {
		return nil, errors.New("kinesisapi: IteratorTTL and MaxBodyBytes must not be negative")
	}
	if opts.IteratorKey != nil && len(opts.IteratorKey) != 32 {
		return nil, fmt.Errorf("kinesisapi: IteratorKey must be 32 bytes, got %d", len(opts.IteratorKey))
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	sl, err := newSealer(opts.IteratorKey)
	if err != nil {
		return nil, fmt.Errorf("kinesisapi: %w", err)
	}
	m, err := newMetrics(opts.Registerer)
	if err != nil {
		return nil, err
	}
	return &Server{store: store, opts: opts, log: opts.Logger.With("component", "kinesisapi"), sealer: sl, m: m}, nil
}

func (s *Server) now() time.Time { return s.opts.Now() }

// rawJSON is a response body encoded already.
type rawJSON []byte

// pooledJSON is a response body in a buffer of bufPool, returned to the
// pool once written. GetRecords responses (up to tens of MB) use it.
type pooledJSON struct{ b *[]byte }

var bufPool = sync.Pool{New: func() any { return new([]byte) }}

// maxPooled is the largest buffer kept for reuse.
const maxPooled = 16 << 20

// ServeHTTP answers one Kinesis API call.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	op := "unknown"
	reqID := newRequestID()
	w.Header().Set("X-Amzn-RequestId", reqID)
	resp, aerr := s.serve(w, r, &op)
	code := "OK"
	status := http.StatusOK
	var body []byte
	if aerr != nil {
		code, status = aerr.Type, aerr.Status
		body, _ = json.Marshal(map[string]string{"__type": aerr.Type, "message": aerr.Message})
		w.Header().Set("X-Amzn-ErrorType", aerr.Type)
	} else if raw, ok := resp.(rawJSON); ok {
		body = raw
	} else if p, ok := resp.(pooledJSON); ok {
		body = *p.b
		defer func() {
			if cap(*p.b) <= maxPooled {
				bufPool.Put(p.b)
			}
		}()
	} else {
		var err error
		if body, err = json.Marshal(resp); err != nil {
			s.log.Error("kinesisapi: encode response", "op", op, "err", err)
			code, status = typeInternalFailure, http.StatusInternalServerError
			body = []byte(`{"__type":"InternalFailure","message":"The response could not be encoded."}`)
		}
	}
	w.Header().Set("Content-Type", contentJSON)
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	_, _ = w.Write(body)

	d := time.Since(start)
	s.m.requests.WithLabelValues(op, code).Inc()
	s.m.duration.WithLabelValues(op).Observe(d.Seconds())
	switch {
	case status >= 500:
		s.log.Warn("kinesis request failed", "op", op, "status", status, "type", code, "message", aerr.Message, "request_id", reqID)
	case aerr != nil:
		s.log.Debug("kinesis request rejected", "op", op, "status", status, "type", code, "message", aerr.Message, "request_id", reqID)
	default:
		s.log.Debug("kinesis request", "op", op, "duration", d, "request_id", reqID)
	}
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request, op *string) (any, *apiError) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		return nil, &apiError{Status: http.StatusMethodNotAllowed, Type: typeUnknownOperation,
			Message: "the Kinesis API takes POST requests with an X-Amz-Target header"}
	}
	target := r.Header.Get("X-Amz-Target")
	name, ok := strings.CutPrefix(target, targetPrefix)
	h := handlers[name]
	if !ok || h == nil {
		return nil, clientErr(typeUnknownOperation, "unknown operation %q: X-Amz-Target must be %s<Operation>", target, targetPrefix)
	}
	*op = name
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	switch ct {
	case contentJSON, "application/x-amz-json-1.0":
	case contentCBOR:
		return nil, &apiError{Status: http.StatusUnsupportedMediaType, Type: typeUnsupportedMediaType,
			Message: "this server speaks the JSON 1.1 protocol only (Content-Type " + contentJSON + "), not CBOR: configure the client for JSON (for the AWS Java SDK v1 / KCL, set AWS_CBOR_DISABLE=true or -Dcom.amazonaws.sdk.disableCbor)"}
	default:
		return nil, &apiError{Status: http.StatusUnsupportedMediaType, Type: typeUnsupportedMediaType,
			Message: fmt.Sprintf("Content-Type %q is not supported: send %s", r.Header.Get("Content-Type"), contentJSON)}
	}
	var sig *sigV4
	if len(s.opts.Credentials) > 0 {
		var aerr *apiError
		if sig, aerr = s.checkSigV4(r); aerr != nil {
			return nil, aerr
		}
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.opts.MaxBodyBytes))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, &apiError{Status: http.StatusRequestEntityTooLarge, Type: typeRequestTooLarge,
				Message: fmt.Sprintf("request body exceeds %d bytes", s.opts.MaxBodyBytes)}
		}
		return nil, clientErr(typeSerialization, "reading the request body: %v", err)
	}
	if sig != nil {
		if aerr := sig.verify(r, body); aerr != nil {
			return nil, aerr
		}
	}
	return h(s, r.Context(), body)
}

func newRequestID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	h := hex.EncodeToString(b[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

type metrics struct {
	requests  *prometheus.CounterVec
	duration  *prometheus.HistogramVec
	throttled *prometheus.CounterVec
	records   *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tributary_kinesis_api_requests_total",
			Help: "Kinesis API requests by operation and outcome (OK or the error type).",
		}, []string{"op", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "tributary_kinesis_api_request_duration_seconds",
			Help:    "Kinesis API request handling time by operation.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14),
		}, []string{"op"}),
		throttled: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tributary_kinesis_api_throttled_total",
			Help: "Records (PutRecord, PutRecords) and calls (GetRecords) refused with ProvisionedThroughputExceededException.",
		}, []string{"op"}),
		records: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tributary_kinesis_api_records_total",
			Help: "Records stored (direction in) and returned (direction out) through the API.",
		}, []string{"direction"}),
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.requests, m.duration, m.throttled, m.records} {
			if err := reg.Register(c); err != nil {
				return nil, fmt.Errorf("kinesisapi: register metrics: %w", err)
			}
		}
	}
	return m, nil
}

// Limited returns a handler that answers like s with at most limit calls in
// progress (at least 1). A call beyond it is refused at once with
// LimitExceededException (HTTP 400, a throttling error the AWS SDKs back
// off from and retry), before its body is read: a crowd of slow or
// greedy clients cannot pile up work or memory. The cloud serves
// kinesis_listen through it; its own in-process consumer calls s itself.
func (s *Server) Limited(limit int) http.Handler {
	sem := make(chan struct{}, max(limit, 1))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case sem <- struct{}{}:
			defer func() { <-sem }()
			s.ServeHTTP(w, r)
		default:
			s.m.requests.WithLabelValues("unknown", typeLimitExceeded).Inc()
			body := `{"__type":"` + typeLimitExceeded + `","message":"Rate exceeded: too many calls in progress (kinesis_api.max_in_flight)."}`
			h := w.Header()
			h.Set("X-Amzn-RequestId", newRequestID())
			h.Set("X-Amzn-ErrorType", typeLimitExceeded)
			h.Set("Content-Type", contentJSON)
			h.Set("Content-Length", strconv.Itoa(len(body)))
			w.WriteHeader(http.StatusBadRequest)
			_, _ = io.WriteString(w, body)
		}
	})
}
