package devicecreds

import (
	"cmp"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Errors of Verifier.Check.
var (
	ErrUnknownDevice = errors.New("devicecreds: unknown device")
	ErrWrongPassword = errors.New("devicecreds: wrong password")
	ErrThrottled     = errors.New("devicecreds: too many failed attempts from this address; try again later")
)

// Options tune a Verifier; zero fields take the defaults.
type Options struct {
	Logger     *slog.Logger
	Registerer prometheus.Registerer // nil: no metrics
	// FailureBurst failed attempts from one source are allowed at once,
	// then one more per FailureEvery. Defaults 10 and 10s.
	FailureBurst int
	FailureEvery time.Duration
	// MaxSources bounds the sources whose failures are remembered
	// (default 4096).
	MaxSources int
	// MaxHashing bounds the derivations running at once (default half the
	// CPUs, at least one).
	MaxHashing int
	// ReloadEvery is the least time between two looks at the file for a
	// change (default 1s).
	ReloadEvery time.Duration
	// Now is the clock (tests); default time.Now.
	Now func() time.Time
}

// Verifier checks device passwords against the file at a path; see the
// package documentation. It is safe for concurrent use.
type Verifier struct {
	path string
	o    Options
	log  *slog.Logger
	key  [32]byte      // HMAC key of the verification cache
	sem  chan struct{} // derivations in progress

	mu      sync.RWMutex
	devices map[string]Device
	stamp   fileStamp
	cache   map[string]cached // id → a verified password's HMAC, for the hash it matched

	lastLook atomic.Int64 // unix ns of the last look at the file

	fmu     sync.Mutex
	sources map[string]*bucket

	checks *prometheus.CounterVec
	hashes prometheus.Counter
}

type cached struct {
	hash string
	mac  [32]byte
}

// bucket is a source's failure allowance.
type bucket struct {
	tokens float64
	at     time.Time
}

// fileStamp tells whether the file changed.
type fileStamp struct {
	exists bool
	mod    time.Time
	size   int64
	ino    any
}

// Check results: the values of tributary_intake_password_checks_total's
// result label.
const (
	ResultAccepted      = "accepted"
	ResultWrongPassword = "wrong_password"
	ResultUnknownDevice = "unknown_device"
	ResultThrottled     = "throttled"
)

// NewVerifier reads the device file at path (a missing one holds no
// device) and returns a Verifier of it.
func NewVerifier(path string, o Options) (*Verifier, error) {
	o.Logger = cmp.Or(o.Logger, slog.New(slog.DiscardHandler))
	o.FailureBurst = cmp.Or(o.FailureBurst, 10)
	o.FailureEvery = cmp.Or(o.FailureEvery, 10*time.Second)
	o.MaxSources = cmp.Or(o.MaxSources, 4096)
	o.MaxHashing = cmp.Or(o.MaxHashing, max(1, runtime.GOMAXPROCS(0)/2))
	o.ReloadEvery = cmp.Or(o.ReloadEvery, time.Second)
	if o.Now == nil {
		o.Now = time.Now
	}
	v := &Verifier{path: path, o: o, log: o.Logger.With("component", "devicecreds", "file", path),
		sem: make(chan struct{}, o.MaxHashing), cache: map[string]cached{}, sources: map[string]*bucket{}}
	_, _ = rand.Read(v.key[:])
	if err := v.reload(statFile(path)); err != nil {
		return nil, err
	}
	v.lastLook.Store(o.Now().UnixNano())
	v.checks = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tributary_intake_password_checks_total",
		Help: "Device password checks at CONNECT, by result: accepted, wrong_password, unknown_device, throttled (too many failures from the address)."},
		[]string{"result"})
	v.hashes = prometheus.NewCounter(prometheus.CounterOpts{Name: "tributary_intake_password_hashes_total",
		Help: "argon2id derivations run to check device passwords (the others were answered from the cache or throttled)."})
	for _, r := range []string{ResultAccepted, ResultWrongPassword, ResultUnknownDevice, ResultThrottled} {
		v.checks.WithLabelValues(r)
	}
	if o.Registerer != nil {
		o.Registerer.MustRegister(v.checks, v.hashes, prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "tributary_intake_password_devices",
			Help: "Devices with a password in the device file."}, func() float64 { return float64(v.Len()) }))
	}
	return v, nil
}

// Len returns the number of devices in the file (as last read).
func (v *Verifier) Len() int {
	v.maybeReload()
	v.mu.RLock()
	defer v.mu.RUnlock()
	return len(v.devices)
}

// Lookup reports whether id is in the file (as last read) and whether it
// is an admin.
func (v *Verifier) Lookup(id string) (known, admin bool) {
	v.maybeReload()
	v.mu.RLock()
	d, ok := v.devices[id]
	v.mu.RUnlock()
	return ok, d.Admin
}

// Check verifies that password is id's, for a client connecting from
// source (a net.Addr's String). It returns nil, or an error wrapping
// ErrUnknownDevice, ErrWrongPassword or ErrThrottled.
func (v *Verifier) Check(source, id string, password []byte) error {
	v.maybeReload()
	src := sourceKey(source)
	v.mu.RLock()
	d, known := v.devices[id]
	c, hit := v.cache[id]
	v.mu.RUnlock()
	if !known {
		return v.fail(src, ResultUnknownDevice, ErrUnknownDevice)
	}
	mac := v.mac(password)
	if hit && c.hash == d.Hash {
		// One password matches a hash: the cached one, or none.
		if hmac.Equal(c.mac[:], mac[:]) {
			v.checks.WithLabelValues(ResultAccepted).Inc()
			return nil
		}
		return v.fail(src, ResultWrongPassword, ErrWrongPassword)
	}
	// A derivation takes one of the source's failures up front, so that
	// many connections at once cannot all pass the check before any of
	// them has failed; a success gives it back.
	if !v.take(src) {
		v.checks.WithLabelValues(ResultThrottled).Inc()
		return ErrThrottled
	}
	v.sem <- struct{}{}
	v.hashes.Inc()
	ok, err := Verify(d.Hash, password)
	<-v.sem
	if err != nil || !ok {
		v.checks.WithLabelValues(ResultWrongPassword).Inc()
		if err != nil { // Load checked every hash: not expected
			return fmt.Errorf("%w: %v", ErrWrongPassword, err)
		}
		return ErrWrongPassword
	}
	v.giveBack(src)
	v.mu.Lock()
	if cur, ok := v.devices[id]; ok && cur.Hash == d.Hash {
		v.cache[id] = cached{hash: d.Hash, mac: mac}
	}
	v.mu.Unlock()
	v.checks.WithLabelValues(ResultAccepted).Inc()
	return nil
}

func (v *Verifier) mac(password []byte) [32]byte {
	h := hmac.New(sha256.New, v.key[:])
	h.Write(password)
	var out [32]byte
	h.Sum(out[:0])
	return out
}

// fail counts a failed attempt from src.
func (v *Verifier) fail(src, result string, err error) error {
	v.checks.WithLabelValues(result).Inc()
	v.fmu.Lock()
	defer v.fmu.Unlock()
	b := v.bucketLocked(src)
	b.tokens = max(b.tokens-1, 0)
	return err
}

// take takes one of src's failures, if it has one left.
func (v *Verifier) take(src string) bool {
	v.fmu.Lock()
	defer v.fmu.Unlock()
	b := v.bucketLocked(src)
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

// giveBack returns what take took, after a success.
func (v *Verifier) giveBack(src string) {
	v.fmu.Lock()
	defer v.fmu.Unlock()
	b := v.bucketLocked(src)
	b.tokens = min(b.tokens+1, float64(v.o.FailureBurst))
}

func (v *Verifier) refill(b *bucket) {
	now := v.o.Now()
	b.tokens = min(float64(v.o.FailureBurst), b.tokens+now.Sub(b.at).Seconds()/v.o.FailureEvery.Seconds())
	b.at = now
}

// bucketLocked returns src's bucket, refilled, making room for it if
// needed: full buckets are forgotten first, then any.
func (v *Verifier) bucketLocked(src string) *bucket {
	if b, ok := v.sources[src]; ok {
		v.refill(b)
		return b
	}
	if len(v.sources) >= v.o.MaxSources {
		for k, b := range v.sources {
			if v.refill(b); b.tokens >= float64(v.o.FailureBurst) {
				delete(v.sources, k)
			}
		}
		for k := range v.sources {
			if len(v.sources) < v.o.MaxSources {
				break
			}
			delete(v.sources, k)
		}
	}
	b := &bucket{tokens: float64(v.o.FailureBurst), at: v.o.Now()}
	v.sources[src] = b
	return b
}

// sourceKey is the address a failure is counted against: the IP of
// host:port, an IPv6 address by its /64.
func sourceKey(addr string) string {
	host := addr
	if h, _, err := net.SplitHostPort(addr); err == nil {
		host = h
	}
	ip := net.ParseIP(host)
	if ip == nil {
		return host
	}
	if ip.To4() == nil {
		return ip.Mask(net.CIDRMask(64, 128)).String() + "/64"
	}
	return ip.String()
}

// maybeReload reads the file again when ReloadEvery has passed since the
// last look and it changed.
func (v *Verifier) maybeReload() {
	now := v.o.Now().UnixNano()
	last := v.lastLook.Load()
	if now-last < int64(v.o.ReloadEvery) || !v.lastLook.CompareAndSwap(last, now) {
		return
	}
	st := statFile(v.path)
	v.mu.RLock()
	same := st == v.stamp
	v.mu.RUnlock()
	if same {
		return
	}
	if err := v.reload(st); err != nil {
		v.log.Error("device file unreadable; keeping the devices read before", "err", err)
		return
	}
	v.log.Info("device file read again", "devices", v.Len())
}

func (v *Verifier) reload(st fileStamp) error {
	ds, err := Load(v.path)
	if err != nil {
		return err
	}
	m := make(map[string]Device, len(ds))
	for _, d := range ds {
		m[d.ID] = d
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	v.devices, v.stamp = m, st
	for id, c := range v.cache { // forget removed devices and changed passwords
		if d, ok := m[id]; !ok || d.Hash != c.hash {
			delete(v.cache, id)
		}
	}
	return nil
}

func statFile(path string) fileStamp {
	fi, err := os.Stat(path)
	if err != nil {
		return fileStamp{}
	}
	return fileStamp{exists: true, mod: fi.ModTime(), size: fi.Size(), ino: inode(fi)}
}
