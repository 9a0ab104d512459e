// Package alerts delivers anomaly alerts from the live detectors to where
// operators look: the log, an `alerts` stream (one JSON record per alert,
// partition key the device, so other consumers can read them through the
// Kinesis API) and an optional webhook (one JSON POST per alert).
//
// An alert is one event of an incident (cloud/anomaly): "open" when a
// series (or a silent device) becomes anomalous, "update" while it stays
// so and the incident changes, "resolve" when it is back to normal. Every
// event of an incident carries the incident's id, kind, start, peak score
// and the range of values the detector expected; a stream record and a
// webhook body are the same JSON object:
//
//	{
//	  "id": "9f1c2a7e3b4d5c6a",           // the incident's, in all its events
//	  "event": "open",                     // open | update | resolve
//	  "device": "sim-00042",
//	  "metric": "temperature",             // "" for a device-wide missing-data incident
//	  "time": "2026-03-01T10:04:00Z",      // of the point (or sweep) behind this event
//	  "score": 0.93,                       // that point's score in [0, 1]; 0 in a resolve
//	  "kind": "level_shift",               // spike level_shift drift stuck noise missing pattern
//	  "value": 27.4,                       // that point's value (missing: the last value, 0 device-wide)
//	  "peak": 0.97,                        // the incident's highest score so far
//	  "start": "2026-03-01T10:04:00Z",     // when the incident opened
//	  "end": "2026-03-01T10:21:30Z",       // resolve only: when it resolved
//	  "expected": {"low": 20.1, "high": 22.3}, // absent for missing data
//	  "reason": "normal"                   // resolve only: normal settled resumed forgotten
//	}
//
// A consumer that wants one alert per incident takes the open events; one
// that tracks state keys by id. Records written before incidents existed
// have no id, event, peak, start, end or expected: read a missing event as
// "open".
//
// Send never blocks the consumer that found the anomaly: each sink has a
// bounded queue (Config.QueueSize), and an alert that does not fit is
// dropped and counted (tributary_alerts_dropped_total{sink}). The stream
// sink writes in batches and retries a failed write with backoff until
// Run's context ends; the webhook sink retries a failed POST
// (connection error, 429 or 5xx) up to Config.WebhookRetries times, then
// drops it and counts it. Alerts are at most once per sink across a
// restart: the queues are in memory.
//
// SendSilenced is Send for an alert whose device or metric an operator
// silenced in the dashboard (cloud/monitor's silences): it is logged
// (silenced=true) and written to the stream, but not posted to the
// webhook.
//
// Webhook hygiene: with Config.WebhookSecret every POST carries an
// HMAC-SHA256 signature of its timestamp and body (SignatureHeader, which
// documents the format; VerifySignature is a reference receiver). A
// redirect is not followed: it counts as a failure
// (tributary_alerts_webhook_redirects_total) and the alert is dropped.
// The URL appears in logs and errors only redacted (RedactURL).
package alerts

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tributary-iot/tributary/cloud/anomaly"
	"github.com/tributary-iot/tributary/cloud/ingest"
	"github.com/tributary-iot/tributary/internal/backoff"
	"github.com/tributary-iot/tributary/internal/defaults"
)

// Defaults of Config.
const (
	DefaultStream         = "alerts"
	DefaultQueueSize      = 4096
	DefaultWebhookTimeout = 5 * time.Second
	DefaultWebhookRetries = 3
	maxBatch              = 500 // records per stream write (Kinesis PutRecords' limit)
)

// Config says where alerts go. The zero Config logs alerts only.
type Config struct {
	// Stream receives every alert as a JSON record ("" disables it).
	Stream string
	// WebhookURL, if set, gets every alert as a JSON POST.
	WebhookURL string
	// WebhookSecret, if set, signs every POST (SignatureHeader).
	WebhookSecret  []byte
	WebhookTimeout time.Duration // per attempt, default 5s
	WebhookRetries int           // attempts after the first, default 3
	// QueueSize bounds each sink's queue (default 4096).
	QueueSize int
}

// Validate says what is wrong with c.
func (c Config) Validate() error {
	var errs []error
	if c.WebhookURL != "" {
		u, err := url.Parse(c.WebhookURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			errs = append(errs, fmt.Errorf("alerts: webhook %q: want an http:// or https:// URL", RedactURL(c.WebhookURL)))
		}
	}
	if c.WebhookTimeout < 0 || c.WebhookRetries < 0 || c.QueueSize < 0 {
		errs = append(errs, errors.New("alerts: webhook_timeout, webhook_retries and queue_size must not be negative"))
	}
	return errors.Join(errs...)
}

func (c Config) withDefaults() Config {
	defaults.Set(&c.WebhookTimeout, DefaultWebhookTimeout)
	defaults.Set(&c.WebhookRetries, DefaultWebhookRetries)
	defaults.Set(&c.QueueSize, DefaultQueueSize)
	return c
}

// Options are a Dispatcher's collaborators.
type Options struct {
	// Backend writes the alerts stream (required when Config.Stream is set).
	Backend ingest.Backend
	Logger  *slog.Logger // nil discards
	// Registerer gets the counters, if set.
	Registerer prometheus.Registerer
	// Client posts to the webhook (default: a client with
	// Config.WebhookTimeout). Redirects are never followed, whatever its
	// CheckRedirect.
	Client *http.Client
	// Now stamps the signatures (default time.Now).
	Now func() time.Time
}

// Dispatcher fans alerts out to the sinks. Send may be called
// concurrently; Run delivers.
type Dispatcher struct {
	cfg    Config
	opts   Options
	log    *slog.Logger
	stream chan anomaly.Alert // nil without a stream sink
	hook   chan anomaly.Alert // nil without a webhook

	sent      *prometheus.CounterVec
	dropped   *prometheus.CounterVec
	failed    *prometheus.CounterVec
	redirects prometheus.Counter
	hookURL   string // the webhook URL, redacted: for logs

	mu    sync.Mutex
	stats Stats
}

// Stats counts what a Dispatcher did, per sink.
type Stats struct {
	Received                      uint64
	StreamSent, StreamDropped     uint64
	WebhookSent, WebhookDropped   uint64
	StreamFailures, WebhookFailed uint64 // failed attempts (retried) / alerts given up
}

// New checks cfg and makes a Dispatcher.
func New(cfg Config, opts Options) (*Dispatcher, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	if cfg.Stream != "" && opts.Backend == nil {
		return nil, errors.New("alerts: a backend is required to write the alerts stream")
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Client == nil {
		opts.Client = &http.Client{Timeout: cfg.WebhookTimeout}
	}
	opts.Client = noRedirects(opts.Client)
	if opts.Now == nil {
		opts.Now = time.Now
	}
	d := &Dispatcher{
		cfg: cfg, opts: opts, log: opts.Logger.With("component", "alerts"), hookURL: RedactURL(cfg.WebhookURL),
		redirects: prometheus.NewCounter(prometheus.CounterOpts{Name: "tributary_alerts_webhook_redirects_total",
			Help: "Webhook answers that were redirects (3xx): not followed, the alert dropped. Point anomaly.webhook at the final URL."}),
		sent:    prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tributary_alerts_sent_total", Help: "Alerts delivered, by sink (log, stream, webhook)."}, []string{"sink"}),
		dropped: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tributary_alerts_dropped_total", Help: "Alerts not delivered to a sink: its queue was full, or the webhook kept failing."}, []string{"sink"}),
		failed:  prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tributary_alerts_attempt_failures_total", Help: "Failed delivery attempts (retried), by sink."}, []string{"sink"}),
	}
	if cfg.Stream != "" {
		d.stream = make(chan anomaly.Alert, cfg.QueueSize)
	}
	if cfg.WebhookURL != "" {
		d.hook = make(chan anomaly.Alert, cfg.QueueSize)
	}
	if opts.Registerer != nil {
		for _, c := range []prometheus.Collector{d.sent, d.dropped, d.failed, d.redirects} {
			if err := opts.Registerer.Register(c); err != nil {
				return nil, fmt.Errorf("alerts: register metrics: %w", err)
			}
		}
	}
	return d, nil
}

// Send logs a and queues it for the stream and the webhook; it never
// blocks.
func (d *Dispatcher) Send(a anomaly.Alert) { d.send(a, false) }

// SendSilenced is Send for an alert an operator silenced (the
// dashboard's silences): logged and streamed, not sent to the webhook.
func (d *Dispatcher) SendSilenced(a anomaly.Alert) { d.send(a, true) }

func (d *Dispatcher) send(a anomaly.Alert, silenced bool) {
	d.log.Warn("anomaly", "silenced", silenced, "event", a.Event.String(), "id", a.ID, "device", a.Device, "metric", a.Metric, "kind", a.Kind.String(),
		"score", strconv.FormatFloat(a.Score, 'f', 3, 64), "peak", strconv.FormatFloat(a.Peak, 'f', 3, 64), "value", a.Value, "time", a.Time)
	d.sent.WithLabelValues("log").Inc()
	d.mu.Lock()
	d.stats.Received++
	d.mu.Unlock()
	if d.stream != nil {
		select {
		case d.stream <- a:
		default:
			d.drop("stream", &d.stats.StreamDropped)
		}
	}
	if d.hook != nil && !silenced {
		select {
		case d.hook <- a:
		default:
			d.drop("webhook", &d.stats.WebhookDropped)
		}
	}
}

func (d *Dispatcher) drop(sink string, n *uint64) {
	d.dropped.WithLabelValues(sink).Inc()
	d.mu.Lock()
	*n++
	d.mu.Unlock()
}

func (d *Dispatcher) count(f func(*Stats)) {
	d.mu.Lock()
	f(&d.stats)
	d.mu.Unlock()
}

// Stats returns the counters so far.
func (d *Dispatcher) Stats() Stats {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.stats
}

// Run delivers queued alerts until ctx ends. Alerts still queued then are
// given a last chance to reach the stream within a second.
func (d *Dispatcher) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	if d.stream != nil {
		wg.Go(func() { d.runStream(ctx) })
	}
	if d.hook != nil {
		wg.Go(func() { d.runWebhook(ctx) })
	}
	wg.Wait()
	return nil
}

// Record is an alert as the alerts stream stores it and the webhook
// receives it: anomaly.Alert's JSON (see the package documentation).
func Record(a anomaly.Alert) ([]byte, error) { return json.Marshal(a) }

func (d *Dispatcher) runStream(ctx context.Context) {
	batch := make([]anomaly.Alert, 0, maxBatch)
	for {
		batch = batch[:0]
		select {
		case <-ctx.Done():
			d.drainStream()
			return
		case a := <-d.stream:
			batch = append(batch, a)
		}
	fill:
		for len(batch) < maxBatch {
			select {
			case a := <-d.stream:
				batch = append(batch, a)
			default:
				break fill
			}
		}
		d.putAll(ctx, batch)
	}
}

// drainStream writes what is queued at shutdown, within a second.
func (d *Dispatcher) drainStream() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	var batch []anomaly.Alert
	for {
		select {
		case a := <-d.stream:
			batch = append(batch, a)
			continue
		default:
		}
		break
	}
	for len(batch) > 0 && ctx.Err() == nil {
		n := min(len(batch), maxBatch)
		d.putAll(ctx, batch[:n])
		batch = batch[n:]
	}
	if len(batch) > 0 {
		d.dropped.WithLabelValues("stream").Add(float64(len(batch)))
		d.count(func(s *Stats) { s.StreamDropped += uint64(len(batch)) })
	}
}

// putAll writes batch to the alerts stream, retrying the entries that
// failed until they are written or ctx ends.
func (d *Dispatcher) putAll(ctx context.Context, batch []anomaly.Alert) {
	entries := make([]ingest.Entry, 0, len(batch))
	for _, a := range batch {
		b, err := Record(a)
		if err != nil { // a NaN score, say: nothing a retry fixes
			d.log.Error("alert not encodable; dropped", "device", a.Device, "err", err)
			d.drop("stream", &d.stats.StreamDropped)
			continue
		}
		entries = append(entries, ingest.Entry{PartitionKey: a.Device, Data: b})
	}
	retry := backoff.Backoff{Initial: 100 * time.Millisecond, Max: 5 * time.Second, Jitter: backoff.None}
	wait := retry.Next()
	for len(entries) > 0 {
		res, err := d.opts.Backend.Put(ctx, d.cfg.Stream, entries)
		var left []ingest.Entry
		if err != nil || len(res) != len(entries) {
			left = entries
			if err == nil {
				err = fmt.Errorf("%d results for %d records", len(res), len(entries))
			}
		} else {
			for i, r := range res {
				if r.Err != nil {
					left = append(left, entries[i])
					err = r.Err
				}
			}
		}
		sent := len(entries) - len(left)
		d.sent.WithLabelValues("stream").Add(float64(sent))
		d.count(func(s *Stats) { s.StreamSent += uint64(sent) })
		if len(left) == 0 {
			return
		}
		d.failed.WithLabelValues("stream").Inc()
		d.count(func(s *Stats) { s.StreamFailures++ })
		d.log.Warn("writing alerts to the stream failed; retrying", "stream", d.cfg.Stream, "alerts", len(left), "err", err, "in", wait)
		if !backoff.Sleep(ctx, wait) {
			d.dropped.WithLabelValues("stream").Add(float64(len(left)))
			d.count(func(s *Stats) { s.StreamDropped += uint64(len(left)) })
			return
		}
		wait = retry.Next()
		entries = left
	}
}

func (d *Dispatcher) runWebhook(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case a := <-d.hook:
			d.post(ctx, a)
		}
	}
}

// post delivers one alert to the webhook with retries.
func (d *Dispatcher) post(ctx context.Context, a anomaly.Alert) {
	body, err := json.Marshal(a)
	if err != nil {
		d.drop("webhook", &d.stats.WebhookFailed)
		return
	}
	retry := backoff.Backoff{Initial: 200 * time.Millisecond, Max: 10 * time.Second}
	for attempt := 0; ; attempt++ {
		err := d.postOnce(ctx, body)
		if err == nil {
			d.sent.WithLabelValues("webhook").Inc()
			d.count(func(s *Stats) { s.WebhookSent++ })
			return
		}
		d.failed.WithLabelValues("webhook").Inc()
		if attempt >= d.cfg.WebhookRetries || ctx.Err() != nil {
			d.log.Warn("webhook gave up on an alert", "url", d.hookURL, "device", a.Device, "attempts", attempt+1, "err", err)
			d.drop("webhook", &d.stats.WebhookFailed)
			return
		}
		var perm permanent
		if errors.As(err, &perm) {
			d.log.Warn("webhook refused an alert; not retried", "url", d.hookURL, "device", a.Device, "err", err)
			d.drop("webhook", &d.stats.WebhookFailed)
			return
		}
		if !backoff.Sleep(ctx, retry.Next()) {
			d.drop("webhook", &d.stats.WebhookFailed)
			return
		}
	}
}

type permanent struct{ error }

func (d *Dispatcher) postOnce(ctx context.Context, body []byte) error {
	ctx, cancel := context.WithTimeout(ctx, d.cfg.WebhookTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, d.cfg.WebhookURL, bytes.NewReader(body))
	if err != nil {
		return permanent{redactErr(err)}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "tributary-cloud")
	if len(d.cfg.WebhookSecret) > 0 {
		req.Header.Set(SignatureHeader, Sign(d.cfg.WebhookSecret, body, d.opts.Now()))
	}
	resp, err := d.opts.Client.Do(req)
	if err != nil {
		return redactErr(err)
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	switch {
	case resp.StatusCode < 300:
		return nil
	case resp.StatusCode < 400:
		d.redirects.Inc()
		return permanent{fmt.Errorf("%w (%s to %s)", errRedirect, resp.Status, RedactURL(resp.Header.Get("Location")))}
	case resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500:
		return fmt.Errorf("webhook answered %s", resp.Status)
	default:
		return permanent{fmt.Errorf("webhook answered %s", resp.Status)}
	}
}
