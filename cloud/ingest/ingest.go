package ingest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/klauspost/compress/zstd"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/tributary-iot/tributary/internal/loglimit"
	"github.com/tributary-iot/tributary/protocol"
)

// Path is where gateways post batches.
const Path = "/v1/ingest"

// Defaults for zero Options fields.
const (
	DefaultMaxInFlight  = 32
	DefaultThrottleWait = time.Second
	DefaultRetryAfter   = time.Second
	DefaultPutTimeout   = 30 * time.Second
	DefaultEpochTTL     = 30 * 24 * time.Hour
	DefaultMaxSpans     = 1024
	DefaultSlotWait     = 2 * time.Second
	DefaultExpireEvery  = time.Hour
	// DefaultMaxInFlightPerGateway is four times the agent's default
	// uplink.max_in_flight (2).
	DefaultMaxInFlightPerGateway = 8
	DefaultReadTimeout           = 2 * time.Minute
	DefaultMaxDevicesPerGateway  = 10_000 // the agent's own bound (intake.DefaultMaxDevices)
	DefaultMaxSeriesPerGateway   = 100_000
	DefaultSeriesTTL             = 30 * 24 * time.Hour
)

// TokenVerifier maps a bearer token to its gateway (auth.Store).
type TokenVerifier interface {
	Verify(token string) (gateway string, ok bool)
}

// Options configure an Ingest. Backend, Tokens and Path are required.
type Options struct {
	Backend Backend
	Tokens  TokenVerifier
	// Path is the ack log's bbolt file (ingest.db in the data folder).
	Path string
	// Stream is the stream written to (default protocol.DefaultStream).
	Stream     string
	Logger     *slog.Logger          // default: discard
	Registerer prometheus.Registerer // metrics, if set

	// MaxBytes bounds a request body, both as received and decompressed
	// (default and at most protocol.MaxBatchBytes); larger is 413.
	MaxBytes int
	// MaxInFlight bounds the requests decoded and written at once
	// (default 32); a request that finds no slot within SlotWait (default
	// 2s) is answered 503 with Retry-After.
	MaxInFlight int
	SlotWait    time.Duration
	// MaxInFlightPerGateway bounds the requests of one gateway in
	// progress, from its token's check to the answer, body reading
	// included (default 8); one more is answered 429 with Retry-After at
	// once. Requests with a bad token never count.
	MaxInFlightPerGateway int
	// ReadTimeout bounds the reading of a request's body, from when its
	// gateway's slot is taken (default 2m); a body still incomplete then
	// is answered 408.
	ReadTimeout time.Duration
	// MaxDevicesPerGateway and MaxSeriesPerGateway bound the devices and
	// the series (device, metric) one gateway may send (defaults 10,000 and
	// 100,000): readings of a device or series beyond them are refused,
	// acknowledged and counted (see the package documentation). A device
	// or series not sent for SeriesTTL (default 30 days) stops counting.
	MaxDevicesPerGateway int
	MaxSeriesPerGateway  int
	SeriesTTL            time.Duration
	// ThrottleWait is how long one request keeps retrying entries the
	// backend throttles before it answers 429 (default 1s).
	ThrottleWait time.Duration
	// RetryAfter is sent with 429 and 503 (default 1s, whole seconds).
	RetryAfter time.Duration
	// PutTimeout bounds the backend writes of one request (default 30s).
	// They are not cancelled when the client goes away: finishing them and
	// recording the ack means a resend is recognised as a duplicate.
	PutTimeout time.Duration
	// EpochTTL: the ack state of a (gateway, epoch) not updated for this
	// long is forgotten by Run (default 30 days).
	EpochTTL    time.Duration
	ExpireEvery time.Duration // how often Run looks (default 1h)
	// MaxSpans bounds the acknowledged seq ranges kept per (gateway,
	// epoch) (default 1024); past it the lowest are forgotten.
	MaxSpans int
	Now      func() time.Time // default time.Now
}

// Ingest is the POST /v1/ingest handler. It is safe for concurrent use.
type Ingest struct {
	opts  Options
	log   *slog.Logger
	acks  *ackLog
	locks keyLocks
	slots chan struct{}
	zdec  *zstd.Decoder
	bufs  sync.Pool // *bytes.Buffer for bodies
	m     *metrics

	uncertain atomic.Int64 // pending seqs across all keys
	// recovered holds, per gateway, the natural keys of readings found in
	// the stream at start among the records written just before the last
	// stop (see recoverPending); read-only after New.
	recovered map[string]map[protocol.Key]struct{}
	// scanner and settler are the Backend's, when it implements them;
	// recoverSlot lets one live recovery run at a time (recoverLive).
	scanner     Scanner
	settler     Settler
	recoverSlot chan struct{}
	limitLog    logLimiter
	gwSlots     gatewaySlots
	busyLog     loglimit.Keyed // by gateway (authenticated, so bounded by the tokens)
	capLog      loglimit.Keyed // by gateway
	caps        *seriesCaps
	closeOnce   sync.Once
	closeErr    error
}

var _ http.Handler = (*Ingest)(nil)

// New opens the ack log and builds the handler. Call Close when done. The
// recovery after a crash reads the stream back under ctx (see
// recoverPending): when ctx ends, New returns an error wrapping ctx.Err().
func New(ctx context.Context, opts Options) (*Ingest, error) {
	switch {
	case opts.Backend == nil:
		return nil, errors.New("ingest: no backend")
	case opts.Tokens == nil:
		return nil, errors.New("ingest: no token verifier")
	case opts.Path == "":
		return nil, errors.New("ingest: no ack log path")
	case opts.MaxBytes < 0 || opts.MaxBytes > protocol.MaxBatchBytes:
		return nil, fmt.Errorf("ingest: MaxBytes %d: want 1..%d", opts.MaxBytes, protocol.MaxBatchBytes)
	}
	if opts.Stream == "" {
		opts.Stream = protocol.DefaultStream
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.MaxBytes == 0 {
		opts.MaxBytes = protocol.MaxBatchBytes
	}
	orDefault(&opts.SlotWait, DefaultSlotWait)
	orDefault(&opts.ThrottleWait, DefaultThrottleWait)
	orDefault(&opts.RetryAfter, DefaultRetryAfter)
	orDefault(&opts.PutTimeout, DefaultPutTimeout)
	orDefault(&opts.EpochTTL, DefaultEpochTTL)
	orDefault(&opts.ExpireEvery, DefaultExpireEvery)
	orDefault(&opts.ReadTimeout, DefaultReadTimeout)
	orDefault(&opts.SeriesTTL, DefaultSeriesTTL)
	orDefault(&opts.MaxInFlight, DefaultMaxInFlight)
	orDefault(&opts.MaxInFlightPerGateway, DefaultMaxInFlightPerGateway)
	orDefault(&opts.MaxSpans, DefaultMaxSpans)
	orDefault(&opts.MaxDevicesPerGateway, DefaultMaxDevicesPerGateway)
	orDefault(&opts.MaxSeriesPerGateway, DefaultMaxSeriesPerGateway)
	if opts.Now == nil {
		opts.Now = time.Now
	}
	zdec, err := zstd.NewReader(nil,
		zstd.WithDecoderConcurrency(min(opts.MaxInFlight, 8)),
		zstd.WithDecoderMaxMemory(uint64(opts.MaxBytes)),
		zstd.WithDecoderMaxWindow(uint64(max(opts.MaxBytes, zstd.MinWindowSize))))
	if err != nil {
		return nil, fmt.Errorf("ingest: zstd: %w", err)
	}
	acks, err := openAckLog(opts.Path)
	if err != nil {
		zdec.Close()
		return nil, err
	}
	in := &Ingest{
		opts:  opts,
		log:   opts.Logger.With("component", "ingest"),
		acks:  acks,
		locks: keyLocks{m: map[ackKey]*keyLock{}},
		slots: make(chan struct{}, opts.MaxInFlight),
		zdec:  zdec,

		recoverSlot: make(chan struct{}, 1),
	}
	in.scanner, _ = opts.Backend.(Scanner)
	in.settler, _ = opts.Backend.(Settler)
	in.m = newMetrics(in)
	caps, bad, err := openSeriesCaps(acks, opts.MaxDevicesPerGateway, opts.MaxSeriesPerGateway)
	if err != nil {
		in.Close()
		return nil, err
	}
	in.caps = caps
	if bad > 0 {
		in.log.Error("corrupt series entries in the ack log skipped: those series count again when next sent", "entries", bad)
	}
	if err := in.recoverPending(ctx); err != nil {
		in.Close()
		return nil, err
	}
	if opts.Registerer != nil {
		if err := in.m.register(opts.Registerer); err != nil {
			in.Close()
			return nil, fmt.Errorf("ingest: registering metrics: %w", err)
		}
	}
	return in, nil
}

// orDefault sets *v to d when it is not positive.
func orDefault[T int | time.Duration](v *T, d T) {
	if *v <= 0 {
		*v = d
	}
}

// maxRecovered bounds the natural keys recoverPending keeps.
const maxRecovered = 500_000

// recoverPending reports seqs left pending by an earlier run: their
// records may be in the stream already. With a Scanner backend it reads
// the records that arrived between the oldest pending mark and now (the
// tail written before the crash) and remembers the natural keys of the
// readings of the gateways concerned: when such a gateway resends those
// seqs, the readings found are acknowledged without being written again.
func (in *Ingest) recoverPending(ctx context.Context) error {
	var total uint64
	from := int64(0)
	gateways := map[string]bool{}
	err := in.acks.each(func(k ackKey, st *ackState, err error) {
		if err != nil {
			in.log.Error("corrupt ack state: batches of this gateway and epoch will be stored again if resent", "gateway", k.gateway, "epoch", k.epoch, "err", err)
			return
		}
		if n := st.pending.count(); n > 0 {
			total += n
			in.log.Warn("readings were being written when the ingest last stopped; the stream is checked for them",
				"gateway", k.gateway, "epoch", k.epoch, "readings", n, "seqs", fmtSpans(st.pending, 8))
			gateways[k.gateway] = true
			if st.pendingFrom > 0 && (from == 0 || st.pendingFrom < from) {
				from = st.pendingFrom
			}
		}
	})
	if err != nil {
		return fmt.Errorf("ingest: ack log: %w", err)
	}
	in.uncertain.Store(int64(total))
	sc := in.scanner
	if total == 0 || sc == nil || from == 0 {
		if total > 0 {
			in.log.Warn("the stream backend cannot be read back: pending readings will be written again if resent, and may appear twice")
		}
		return nil
	}
	in.recovered = map[string]map[protocol.Key]struct{}{}
	n := 0
	start, to := time.UnixMilli(from).Add(-time.Second), in.opts.Now().Add(time.Second)
	sctx, cancel := context.WithTimeout(ctx, in.opts.PutTimeout)
	defer cancel()
	errFull := errors.New("full")
	records, err := scanReadings(sctx, sc, in.opts.Stream, start, to, 0, func(gw string) bool { return gateways[gw] },
		func(gw string, r *protocol.Reading) error {
			if n >= maxRecovered {
				return errFull
			}
			m := in.recovered[gw]
			if m == nil {
				m = map[protocol.Key]struct{}{}
				in.recovered[gw] = m
			}
			m[r.Key()] = struct{}{}
			n++
			return nil
		})
	switch {
	case ctx.Err() != nil:
		return fmt.Errorf("ingest: reading the stream's tail back: %w", ctx.Err())
	case errors.Is(err, errFull):
		in.log.Warn("too many readings in the stream's tail to remember; the rest of the pending readings will be written again if resent", "kept", n)
	case err != nil:
		in.log.Error("reading the stream's tail back failed: pending readings will be written again if resent", "err", err)
	}
	in.log.Info("stream tail read back for the pending readings", "from", start, "records", records, "readings_of_those_gateways", n)
	return nil
}

// errScanFull stops scanReadings at its bound of records.
var errScanFull = errors.New("ingest: too many records to read back")

// scanReadings reads back the records of stream that arrived in [from,
// to) and calls fn with each reading of the records of the gateways keep
// accepts; it returns how many records it read. With maxRecords > 0 it
// stops with errScanFull after that many. Records that do not decode are
// skipped (they are not the ingest's). recoverPending (at start) and
// recoverLive share it.
func scanReadings(ctx context.Context, sc Scanner, stream string, from, to time.Time, maxRecords int,
	keep func(gateway string) bool, fn func(gateway string, r *protocol.Reading) error) (int, error) {
	records := 0
	err := sc.Scan(ctx, stream, from, to, func(data []byte) error {
		if maxRecords > 0 && records >= maxRecords {
			return errScanFull
		}
		records++
		rec, err := protocol.DecodeRecord(data)
		if err != nil || !keep(rec.Gateway) {
			return nil
		}
		for i := range rec.Readings {
			if err := fn(rec.Gateway, &rec.Readings[i]); err != nil {
				return err
			}
		}
		return nil
	})
	return records, err
}

// settleFound acknowledges, among fresh seqs that an earlier write left
// pending, those whose readings are in keys (found in the stream), and
// returns the seqs still to write and how many were settled.
func settleFound(b *protocol.Batch, st *ackState, fresh spans, keys map[protocol.Key]struct{}) (spans, int) {
	if len(keys) == 0 {
		return fresh, 0
	}
	again := intersectAll(st.pending, fresh)
	n := 0
	for _, s := range again {
		for seq := s.lo; seq <= s.hi && seq >= s.lo; seq++ {
			r := &b.Readings[seq-b.FirstSeq]
			if _, ok := keys[r.Key()]; !ok {
				continue
			}
			st.acked = st.acked.add(seq, seq)
			st.pending = st.pending.remove(seq, seq)
			fresh = fresh.remove(seq, seq)
			n++
		}
	}
	if st.pending.count() == 0 {
		st.pendingFrom = 0
	}
	return fresh, n
}

// Close closes the ack log. Call it after the HTTP server has stopped
// sending requests. It is idempotent.
func (in *Ingest) Close() error {
	in.closeOnce.Do(func() {
		in.zdec.Close()
		if in.caps != nil {
			if _, err := in.caps.flush(0); err != nil {
				in.log.Warn("saving the series' last days", "err", err)
			}
		}
		in.closeErr = in.acks.close()
	})
	return in.closeErr
}

// Run forgets the ack state of epochs idle for longer than EpochTTL, now
// and every ExpireEvery, until ctx is done (then it returns nil).
func (in *Ingest) Run(ctx context.Context) error {
	t := time.NewTicker(in.opts.ExpireEvery)
	defer t.Stop()
	for {
		if err := in.Expire(); err != nil {
			in.log.Error("expiring old epochs", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// Expire forgets the ack state of epochs idle for longer than EpochTTL (a
// batch of a forgotten epoch is stored again if it is ever resent) and the
// series not sent for SeriesTTL (they no longer count against their
// gateway's caps), and saves the days the others were last sent.
func (in *Ingest) Expire() error {
	now := in.opts.Now()
	forgot, err := in.caps.flush(unixDay(now.Add(-in.opts.SeriesTTL)))
	if err != nil {
		return err
	}
	if forgot > 0 {
		in.log.Info("series not sent for series_ttl no longer count against their gateway's caps", "series", forgot, "idle_for", in.opts.SeriesTTL)
	}
	before := now.Add(-in.opts.EpochTTL).Unix()
	keys, err := in.acks.stale(before)
	if err != nil {
		return err
	}
	n := 0
	for _, k := range keys {
		release, ok := in.locks.tryAcquire(k)
		if !ok {
			continue // in use: not idle
		}
		dropped, pending, err := in.acks.drop(k, before)
		release()
		if err != nil {
			return err
		}
		if dropped {
			n++
			in.uncertain.Add(-int64(pending))
		}
	}
	if n > 0 {
		in.log.Info("forgot the acknowledgements of idle epochs", "epochs", n, "idle_for", in.opts.EpochTTL)
		in.m.expired.Add(float64(n))
	}
	return nil
}

// response is the 200 answer.
type response struct {
	Gateway    string `json:"gateway"`
	Epoch      uint64 `json:"epoch"`
	First      uint64 `json:"first"`
	Last       uint64 `json:"last"`
	Stored     int    `json:"stored"`     // readings written now
	Duplicates int    `json:"duplicates"` // readings acknowledged before
	// Refused: readings of devices or series beyond the gateway's caps,
	// acknowledged (the gateway deletes them) but not stored; why in
	// RefusedReason.
	Refused       int    `json:"refused"`
	RefusedReason string `json:"refused_reason,omitempty"`
}

type apiError struct {
	Error string `json:"error"`
}

// httpError is an answer other than 200.
type httpError struct {
	status     int
	msg        string
	retryAfter bool
}

func (e *httpError) Error() string { return e.msg }

func fail(status int, format string, args ...any) *httpError {
	return &httpError{status: status, msg: fmt.Sprintf(format, args...)}
}

// ServeHTTP implements POST /v1/ingest.
func (in *Ingest) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	in.m.inFlight.Inc()
	defer in.m.inFlight.Dec()
	var bodyRead bool
	resp, gateway, err := in.serve(w, r, &bodyRead)
	status := http.StatusOK
	if err != nil {
		status = err.status
		in.logRefusal(r, gateway, err)
		if !bodyRead && r.ContentLength != 0 && r.ProtoMajor == 1 {
			// Refused on the headers: close rather than read the body
			// to keep the connection (which net/http would otherwise do,
			// for as long as the sender takes). HTTP/2 resets the
			// stream instead.
			w.Header().Set("Connection", "close")
		}
		if err.retryAfter {
			w.Header().Set("Retry-After", strconv.Itoa(ceilSeconds(in.opts.RetryAfter)))
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(apiError{Error: err.msg})
	} else {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(resp)
	}
	in.m.requests.WithLabelValues(strconv.Itoa(status)).Inc()
	in.m.requestSeconds.Observe(time.Since(start).Seconds())
}

// logRefusal logs answers that need a human: a token refused, a batch
// refused as malformed or too large (a bug or a misconfiguration on one
// side). At most one line per kind per second; 429 and 503 are logged
// where they arise.
func (in *Ingest) logRefusal(r *http.Request, gateway string, err *httpError) {
	var msg string
	switch err.status {
	case http.StatusUnauthorized, http.StatusForbidden:
		msg = "token refused"
	case http.StatusBadRequest:
		msg = "batch refused as malformed; the gateway keeps it and retries"
	case http.StatusRequestEntityTooLarge:
		msg = "batch refused as too large; the gateway splits it"
	case http.StatusUnsupportedMediaType:
		msg = "request refused: unsupported content type or encoding"
	default:
		return
	}
	if in.limitLog.allow(strconv.Itoa(err.status)) {
		in.log.Warn(msg, "status", err.status, "gateway", gateway, "remote", r.RemoteAddr, "err", err.msg)
	}
}

func (in *Ingest) serve(w http.ResponseWriter, r *http.Request, bodyRead *bool) (*response, string, *httpError) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		return nil, "", fail(http.StatusMethodNotAllowed, "use POST to send batches to %s", Path)
	}
	// The token is checked on the headers alone (a hash lookup): nothing
	// is held, waited for or read for a request that does not pass.
	token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || token == "" {
		return nil, "", fail(http.StatusUnauthorized, "missing bearer token: send Authorization: Bearer <token> (issue one with `tributary-cloud token issue GATEWAY`)")
	}
	gateway, ok := in.opts.Tokens.Verify(token)
	if !ok {
		return nil, "", fail(http.StatusUnauthorized, "unknown or revoked token")
	}
	log := in.log.With("gateway", gateway)
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != protocol.ContentTypeBatch {
		return nil, gateway, fail(http.StatusUnsupportedMediaType, "content type %q: send %s", r.Header.Get("Content-Type"), protocol.ContentTypeBatch)
	}
	enc, herr := contentEncoding(r.Header.Get("Content-Encoding"))
	if herr != nil {
		return nil, gateway, herr
	}
	if r.ContentLength > int64(in.opts.MaxBytes) {
		return nil, gateway, fail(http.StatusRequestEntityTooLarge, "body of %d bytes, limit %d: send smaller batches", r.ContentLength, in.opts.MaxBytes)
	}
	release, herr := in.gatewaySlot(gateway, log)
	if herr != nil {
		return nil, gateway, herr
	}
	defer release()
	// The body is read under the gateway's slot only: a slow sender holds
	// its own gateway's slots, never the shared ones.
	body, herr := in.readBody(w, r)
	*bodyRead = true
	if herr != nil {
		return nil, gateway, herr
	}
	defer in.putBuf(body)
	if herr := in.acquireSlot(r.Context()); herr != nil {
		return nil, gateway, herr
	}
	defer func() { <-in.slots }()

	b, herr := in.decode(enc, body)
	if herr != nil {
		return nil, gateway, herr
	}
	if b.Gateway != gateway {
		return nil, gateway, fail(http.StatusForbidden, "the token is gateway %s's, the batch is from gateway %s", gateway, b.Gateway)
	}
	if herr := checkStreamable(b); herr != nil {
		return nil, gateway, herr
	}
	resp, herr := in.store(r.Context(), b, log)
	return resp, gateway, herr
}

// decode decompresses and decodes a body.
func (in *Ingest) decode(enc encoding, body *bytes.Buffer) (*protocol.Batch, *httpError) {
	raw, herr := in.decompress(enc, body.Bytes())
	if herr != nil {
		return nil, herr
	}
	in.m.bytes.WithLabelValues("wire").Add(float64(body.Len()))
	in.m.bytes.WithLabelValues("raw").Add(float64(len(raw)))
	b, err := protocol.DecodeBatch(raw)
	if enc != encIdentity {
		in.putRaw(raw)
	}
	if err != nil {
		if errors.Is(err, protocol.ErrTooLarge) {
			return nil, fail(http.StatusRequestEntityTooLarge, "%v", err)
		}
		return nil, fail(http.StatusBadRequest, "%v", err)
	}
	return b, nil
}

// gatewaySlot takes one of the gateway's MaxInFlightPerGateway slots, or
// answers 429 at once.
func (in *Ingest) gatewaySlot(gateway string, log *slog.Logger) (release func(), herr *httpError) {
	release, ok := in.gwSlots.tryAcquire(gateway, in.opts.MaxInFlightPerGateway)
	if ok {
		return release, nil
	}
	in.m.gatewayBusy.WithLabelValues(gateway).Inc()
	if ok, n := in.busyLog.Allow(gateway); ok {
		log.Warn("gateway over its in-flight limit: answering 429", "limit", in.opts.MaxInFlightPerGateway,
			"setting", "ingest.max_in_flight_per_gateway", "suppressed", n)
	}
	return nil, &httpError{status: http.StatusTooManyRequests, retryAfter: true,
		msg: fmt.Sprintf("gateway %s has %d requests in progress (ingest.max_in_flight_per_gateway): retry later, or send fewer at once (uplink.max_in_flight)",
			gateway, in.opts.MaxInFlightPerGateway)}
}

func (in *Ingest) acquireSlot(ctx context.Context) *httpError {
	select {
	case in.slots <- struct{}{}:
		return nil
	default:
	}
	t := time.NewTimer(in.opts.SlotWait)
	defer t.Stop()
	select {
	case in.slots <- struct{}{}:
		return nil
	case <-t.C:
		in.m.busy.Inc()
		return &httpError{status: http.StatusServiceUnavailable, retryAfter: true,
			msg: fmt.Sprintf("ingest busy: %d requests in progress", in.opts.MaxInFlight)}
	case <-ctx.Done():
		return fail(http.StatusServiceUnavailable, "request cancelled while waiting")
	}
}

// checkStreamable refuses readings a stream record cannot carry: every
// resolved time on the stream is absolute (at least 2^28 s).
func checkStreamable(b *protocol.Batch) *httpError {
	const minTime = protocol.RelativeTimeLimit * 1_000_000
	for i := range b.Readings {
		if t := b.Readings[i].Time; t < minTime {
			return fail(http.StatusBadRequest, "protocol: batch: reading %d (seq %d): time: %d µs is before 1978-07-04 (2^28 s): stream records carry absolute times only",
				i, b.FirstSeq+uint64(i), t)
		}
	}
	return nil
}

func ceilSeconds(d time.Duration) int { return max(1, int((d+time.Second-1)/time.Second)) }

// logLimiter allows one log line per kind per second.
type logLimiter struct{ last sync.Map }

func (l *logLimiter) allow(kind string) bool {
	now := time.Now().UnixNano()
	v, _ := l.last.LoadOrStore(kind, new(atomic.Int64))
	last := v.(*atomic.Int64)
	prev := last.Load()
	return now-prev >= int64(time.Second) && last.CompareAndSwap(prev, now)
}
