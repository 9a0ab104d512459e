package intake_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	"go.uber.org/goleak"

	"github.com/tributary-iot/tributary/edge/devicecreds"
	"github.com/tributary-iot/tributary/protocol"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// t0 is the device time of test readings.
var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC).UnixMicro()

// testClock stamps the real time with fixed flags.
type testClock struct{ flags protocol.Flags }

func (c testClock) Now() (int64, protocol.Flags) { return time.Now().UnixMicro(), c.flags }

// deadLetter is one Store.DeadLetter call.
type deadLetter struct {
	topic, reason string
	payload       []byte
}

// memStore is a Store in memory. With block set, Append waits until
// release is called or its ctx ends; failNext makes Appends fail.
type memStore struct {
	mu       sync.Mutex
	appends  int // calls
	blocked  int // calls waiting now
	readings []protocol.Reading
	dead     []deadLetter
	release  chan struct{} // closed to release blocked Appends; nil: no blocking
	failNext int
}

func (s *memStore) block() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.release = make(chan struct{})
}

func (s *memStore) unblock() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.release != nil {
		close(s.release)
		s.release = nil
	}
}

func (s *memStore) Append(ctx context.Context, rs []protocol.Reading) error {
	s.mu.Lock()
	s.appends++
	release := s.release
	if s.failNext > 0 {
		s.failNext--
		s.mu.Unlock()
		return fmt.Errorf("memstore: injected failure")
	}
	s.blocked++
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.blocked--
		s.mu.Unlock()
	}()
	if release != nil {
		select {
		case <-release:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.readings = append(s.readings, rs...)
	return nil
}

func (s *memStore) DeadLetter(ctx context.Context, topic, reason string, payload []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.dead = append(s.dead, deadLetter{topic, reason, bytes.Clone(payload)})
	return nil
}

func (s *memStore) snapshot() (appends, blocked int, readings []protocol.Reading, dead []deadLetter) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.appends, s.blocked, append([]protocol.Reading(nil), s.readings...), append([]deadLetter(nil), s.dead...)
}

// groupStore commits every period: the Appends waiting then share one
// commit, like the real queue's group commit.
type groupStore struct {
	period time.Duration

	mu       sync.Mutex
	waiting  []chan struct{}
	readings int
	appends  int
	commits  int
	stop     chan struct{}
	done     chan struct{}
}

func newGroupStore(t *testing.T, period time.Duration) *groupStore {
	s := &groupStore{period: period, stop: make(chan struct{}), done: make(chan struct{})}
	go s.loop()
	t.Cleanup(func() { close(s.stop); <-s.done })
	return s
}

func (s *groupStore) loop() {
	defer close(s.done)
	tk := time.NewTicker(s.period)
	defer tk.Stop()
	for {
		select {
		case <-s.stop:
			s.commit()
			return
		case <-tk.C:
			s.commit()
		}
	}
}

func (s *groupStore) commit() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.waiting) == 0 {
		return
	}
	s.commits++
	for _, w := range s.waiting {
		close(w)
	}
	s.waiting = nil
}

func (s *groupStore) Append(ctx context.Context, rs []protocol.Reading) error {
	w := make(chan struct{})
	s.mu.Lock()
	s.appends++
	s.readings += len(rs)
	s.waiting = append(s.waiting, w)
	s.mu.Unlock()
	select {
	case <-w:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (s *groupStore) DeadLetter(context.Context, string, string, []byte) error { return nil }

func (s *groupStore) counts() (appends, readings, commits int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.appends, s.readings, s.commits
}

// waitFor polls cond until it holds or the timeout passes.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// testLogger logs into a buffer that is printed if the test fails.
func testLogger(t *testing.T) *slog.Logger {
	var mu sync.Mutex
	var buf bytes.Buffer
	t.Cleanup(func() {
		if t.Failed() {
			mu.Lock()
			defer mu.Unlock()
			t.Logf("log:\n%s", buf.String())
		}
	})
	return slog.New(slog.NewTextHandler(writerFunc(func(p []byte) (int, error) {
		mu.Lock()
		defer mu.Unlock()
		if buf.Len() < 1<<20 {
			buf.Write(p)
		}
		return len(p), nil
	}), &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

// runner is something with Run(ctx).
type runner interface{ Run(context.Context) error }

// start runs r until the returned stop is called (or the test ends); stop
// waits for Run to return and checks its error.
func start(t *testing.T, r runner) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("Run: %v", err)
				}
			case <-time.After(15 * time.Second):
				t.Errorf("Run did not return within 15s of cancel")
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

// pack is a SenML pack of one reading named "m" with value v at t0+v s.
func pack(device string, v int, cbor bool) []byte {
	rs := []protocol.Reading{{Device: device, Name: "m", Unit: "Cel", Kind: protocol.KindFloat,
		Value: float64(v), Time: t0 + int64(v)*1_000_000}}
	if cbor {
		return protocol.EncodeSenMLCBOR(rs, nil)
	}
	return protocol.EncodeSenMLJSON(rs, nil)
}

// reasonCodes returns the reason code of each dead letter, in order.
func reasonCodes(dead []deadLetter) []string {
	var codes []string
	for _, d := range dead {
		code, _, _ := strings.Cut(d.reason, ":")
		codes = append(codes, code)
	}
	return codes
}

// values returns the sorted values of readings, and how often each came.
func values(rs []protocol.Reading) (distinct []int, dups int) {
	seen := map[int]int{}
	for _, r := range rs {
		seen[int(r.Value)]++
	}
	for v, n := range seen {
		distinct = append(distinct, v)
		dups += n - 1
	}
	sort.Ints(distinct)
	return distinct, dups
}

// publisher connects a paho client (MQTT 3.1.1).
func publisher(t *testing.T, url, id string, tune ...func(*mqtt.ClientOptions)) mqtt.Client {
	t.Helper()
	c, err := connect(url, id, tune...)
	if err != nil {
		t.Fatalf("publisher %s: connect %s: %v", id, url, err)
	}
	t.Cleanup(func() { c.Disconnect(100) })
	return c
}

func connect(url, id string, tune ...func(*mqtt.ClientOptions)) (mqtt.Client, error) {
	o := mqtt.NewClientOptions().AddBroker(url).SetClientID(id).SetProtocolVersion(4).
		SetCleanSession(true).SetAutoReconnect(false).SetConnectTimeout(5 * time.Second).
		SetKeepAlive(30 * time.Second)
	for _, f := range tune {
		f(o)
	}
	c := mqtt.NewClient(o)
	tok := c.Connect()
	if !tok.WaitTimeout(10 * time.Second) {
		c.Disconnect(0)
		return nil, fmt.Errorf("no CONNACK within 10s")
	}
	if err := tok.Error(); err != nil {
		return nil, err
	}
	return c, nil
}

// publish publishes at QoS 1 and waits for the PUBACK.
func publish(t *testing.T, c mqtt.Client, topic string, payload []byte) {
	t.Helper()
	tok := c.Publish(topic, 1, false, payload)
	if !tok.WaitTimeout(10 * time.Second) {
		t.Fatalf("publish to %s: no PUBACK within 10s", topic)
	}
	if err := tok.Error(); err != nil {
		t.Fatalf("publish to %s: %v", topic, err)
	}
}

// passwords writes a device password file with entries "id:password" or
// "id:password:admin" and returns a Verifier of it.
func passwords(t *testing.T, entries ...string) *devicecreds.Verifier {
	t.Helper()
	path := filepath.Join(t.TempDir(), devicecreds.FileName)
	for _, e := range entries {
		parts := strings.Split(e, ":")
		admin := len(parts) == 3 && parts[2] == "admin"
		if err := devicecreds.Add(path, parts[0], []byte(parts[1]), admin, devicecreds.Params{Memory: 64, Time: 1, Threads: 1}); err != nil {
			t.Fatal(err)
		}
	}
	v, err := devicecreds.NewVerifier(path, devicecreds.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return v
}
