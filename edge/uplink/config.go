package uplink

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"

	"github.com/tributary-iot/tributary/internal/defaults"
	"github.com/tributary-iot/tributary/internal/tlsfiles"

	"github.com/tributary-iot/tributary/protocol"
)

// Compression names (Config.Compression and the Content-Encoding sent).
const (
	CompressionZstd = "zstd"
	CompressionGzip = "gzip"
	CompressionNone = "none"
)

// Defaults applied by New to zero Config fields.
const (
	DefaultMaxReadings    = 5_000
	DefaultMaxBytes       = 1 << 20
	DefaultMaxAge         = time.Second
	DefaultRequestTimeout = 30 * time.Second
	DefaultBackoffInitial = 500 * time.Millisecond
	DefaultBackoffMax     = 60 * time.Second
	DefaultBackoffFactor  = 2.0
	DefaultBacklogShare   = 0.5
	DefaultMaxInFlight    = 2
	DefaultDrainTimeout   = 10 * time.Second

	// MinMaxBytes is the smallest Config.MaxBytes accepted.
	MinMaxBytes = 1 << 10
	// maxRetryAfter caps a Retry-After the cloud asks for, so that a bogus
	// date cannot stall the uplink for days.
	maxRetryAfter = time.Hour
)

// IngestPath is where batches are posted, below Config.URL.
const IngestPath = "/v1/ingest"

// Config says where and how the uplink ships batches. Zero fields take the
// defaults above; Validate reports every problem at once.
type Config struct {
	// URL is the cloud's base URL, e.g. https://cloud:8080; batches are
	// posted to URL + IngestPath.
	URL string
	// Gateway is this gateway's id (device id rules); Token its bearer
	// token, sent as "Authorization: Bearer <Token>".
	Gateway string
	Token   string
	TLS     tlsfiles.Client
	// Insecure allows a plain http:// URL to a host other than this one
	// (loopback): the token and the readings then cross the network
	// unencrypted. Without it such a URL is refused; https, or http to
	// 127.0.0.1, ::1 or localhost, need nothing.
	Insecure bool

	// Compression is the Content-Encoding: "zstd" (default), "gzip" or
	// "none".
	Compression string

	// MaxReadings (default 5,000, at most protocol.MaxBatchReadings) and
	// MaxBytes (default 1 MiB, the encoded batch before compression, at
	// most protocol.MaxBatchBytes) bound a batch. A single reading larger
	// than MaxBytes travels alone.
	MaxReadings int
	MaxBytes    int
	// MaxAge (default 1s) is how long the oldest reading of a partial
	// fresh batch may wait for more readings before the batch is sent.
	MaxAge time.Duration

	// RequestTimeout bounds one POST (default 30s).
	RequestTimeout time.Duration
	// Backoff after failures: full jitter, growing by Multiplier from
	// Initial (500ms) to Max (60s).
	Backoff Backoff

	// BacklogShare (0 < s ≤ 1, default 0.5) is the fraction of batches
	// taken from the oldest unsent readings while a backlog exists and
	// fresh readings are also waiting; the rest carry the newest readings,
	// so live data keeps flowing while a backlog drains. Zero means the
	// default: a share of 0 would starve the backlog whenever fresh data
	// never stops.
	BacklogShare float64
	// MaxInFlight is the number of concurrent requests (default 2).
	MaxInFlight int
	// DrainTimeout bounds how long Run waits for in-flight requests after
	// its context is cancelled (default 10s).
	DrainTimeout time.Duration
}

// Backoff is the retry schedule after a failed request.
type Backoff struct {
	Initial    time.Duration
	Max        time.Duration
	Multiplier float64
}

// withDefaults returns c with zero fields set to their defaults.
func (c Config) withDefaults() Config {
	defaults.Set(&c.Compression, CompressionZstd)
	defaults.Set(&c.MaxReadings, DefaultMaxReadings)
	defaults.Set(&c.MaxBytes, DefaultMaxBytes)
	defaults.Set(&c.MaxInFlight, DefaultMaxInFlight)
	defaults.Set(&c.MaxAge, DefaultMaxAge)
	defaults.Set(&c.RequestTimeout, DefaultRequestTimeout)
	defaults.Set(&c.Backoff.Initial, DefaultBackoffInitial)
	defaults.Set(&c.Backoff.Max, DefaultBackoffMax)
	defaults.Set(&c.DrainTimeout, DefaultDrainTimeout)
	defaults.Set(&c.Backoff.Multiplier, DefaultBackoffFactor)
	defaults.Set(&c.BacklogShare, DefaultBacklogShare)
	return c
}

// Validate checks c after defaults are applied and reports every problem.
func (c Config) Validate() error {
	c = c.withDefaults()
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("uplink: config: "+format, args...))
	}
	if c.URL == "" {
		bad("url is required (the cloud's base URL, e.g. https://cloud:8080)")
	} else if u, err := url.Parse(c.URL); err != nil {
		bad("url %q: %v", c.URL, err)
	} else if u.Scheme != "http" && u.Scheme != "https" || u.Host == "" {
		bad("url %q: want http://host[:port] or https://host[:port]", c.URL)
	} else if u.RawQuery != "" || u.Fragment != "" {
		bad("url %q: a base URL has no query or fragment", c.URL)
	} else if u.Scheme == "http" && !c.TLS.IsZero() {
		bad("tls settings given but url %q is plain http", c.URL)
	} else if u.Scheme == "http" && !c.Insecure && !LoopbackHost(u.Hostname()) {
		bad("url %q: plain http to a host other than this one sends the token and the readings unencrypted: "+
			"use https, or set Insecure (the agent's cloud.insecure: true) to accept that", c.URL)
	}
	if err := protocol.CheckDeviceID(c.Gateway); err != nil {
		bad("gateway: %v", err)
	}
	if c.Token == "" {
		bad("token is required (issue one with `tributary-cloud token issue GATEWAY`)")
	} else if strings.ContainsAny(c.Token, " \t\r\n") {
		bad("token contains white space")
	}
	switch c.Compression {
	case CompressionZstd, CompressionGzip, CompressionNone:
	default:
		bad("compression %q: want zstd, gzip or none", c.Compression)
	}
	if c.MaxReadings < 1 || c.MaxReadings > protocol.MaxBatchReadings {
		bad("max readings %d: want 1..%d", c.MaxReadings, protocol.MaxBatchReadings)
	}
	if c.MaxBytes < MinMaxBytes || c.MaxBytes > protocol.MaxBatchBytes {
		bad("max bytes %d: want %d..%d", c.MaxBytes, MinMaxBytes, protocol.MaxBatchBytes)
	}
	if c.MaxAge < 0 {
		bad("max age %v is negative", c.MaxAge)
	}
	if c.RequestTimeout < 0 {
		bad("request timeout %v is negative", c.RequestTimeout)
	}
	if c.DrainTimeout < 0 {
		bad("drain timeout %v is negative", c.DrainTimeout)
	}
	if c.Backoff.Initial < 0 || c.Backoff.Max < c.Backoff.Initial {
		bad("backoff: want 0 < initial (%v) ≤ max (%v)", c.Backoff.Initial, c.Backoff.Max)
	}
	if c.Backoff.Multiplier < 1 {
		bad("backoff multiplier %v: want ≥ 1", c.Backoff.Multiplier)
	}
	if !(c.BacklogShare > 0 && c.BacklogShare <= 1) {
		bad("backlog share %v: want 0 < share ≤ 1", c.BacklogShare)
	}
	if c.MaxInFlight < 1 || c.MaxInFlight > 64 {
		bad("max in flight %d: want 1..64", c.MaxInFlight)
	}
	if err := c.TLS.Validate(); err != nil {
		bad("tls: %v", err)
	}
	return errors.Join(errs...)
}

// LoopbackHost reports whether host (a URL's host name, without port) is
// this machine: a loopback IP or "localhost".
func LoopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
