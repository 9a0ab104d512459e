package kafkabackend

import (
	"context"
	"crypto/sha256"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/tributary-iot/tributary/cloud/ingest"
)

// flightKey identifies a record by its content: topic, key and value.
type flightKey [sha256.Size]byte

func keyOf(topic string, e *ingest.Entry) flightKey {
	h := sha256.New()
	h.Write([]byte(topic))
	h.Write([]byte{0})
	h.Write([]byte(e.PartitionKey))
	h.Write([]byte{0})
	h.Write(e.Data)
	var k flightKey
	h.Sum(k[:0])
	return k
}

// flight is a record handed to the producer; done closes when its promise
// has run (rec and err are set then).
type flight struct {
	done chan struct{}
	rec  *kgo.Record
	err  error
	// abandoned: a Put reported it unknown (guarded by flights.mu).
	abandoned bool
}

// late is a record acknowledged after its Put reported it unknown.
type late struct {
	partition int32
	offset    int64
	at        time.Time
}

// flights tracks records by content: those in the producer (a resend of
// one waits for it), and for a while those acknowledged after their Put
// gave up on them (a resend of one is acknowledged at once). Both are
// bounded: the first by the producer's buffer, the second by max entries
// and ttl.
type flights struct {
	mu        sync.Mutex
	flying    map[flightKey]*flight
	late      map[flightKey]late
	lateOrder []flightKey // oldest first, for eviction
	max       int
	ttl       time.Duration
	// unresolved are the flights a Put reported unknown that the producer
	// still holds (bounded by its buffer): what Settle waits for.
	unresolved map[*flight]struct{}
}

func (fs *flights) init(max int, ttl time.Duration) {
	fs.flying, fs.late, fs.max, fs.ttl = make(map[flightKey]*flight), make(map[flightKey]late), max, ttl
	fs.unresolved = make(map[*flight]struct{})
}

// Settle returns once every record that a Put reported as unknown before
// the call has resolved inside the producer (acknowledged by the broker,
// or failed), or with ctx's error wrapping ingest.ErrOutcomeUnknown
// (ingest.Settler). After it, reading the topic back (Scan) tells exactly
// which of them were written: the ingest does so before it writes a resend
// of readings whose first write had an unknown outcome.
func (b *Backend) Settle(ctx context.Context) error {
	fs := &b.flights
	fs.mu.Lock()
	waits := make([]chan struct{}, 0, len(fs.unresolved))
	for f := range fs.unresolved {
		waits = append(waits, f.done)
	}
	fs.mu.Unlock()
	for i, done := range waits {
		select {
		case <-done:
		case <-ctx.Done():
			return fmt.Errorf("kafkabackend: %d of %d records reported unknown are still unacknowledged: %w: %w",
				len(waits)-i, len(waits), ingest.ErrOutcomeUnknown, ctx.Err())
		}
	}
	return nil
}

// produce hands e to the producer, or returns the flight of an identical
// record in flight, or a done flight for one acknowledged late.
func (b *Backend) produce(ctx context.Context, topic string, e *ingest.Entry) *flight {
	k := keyOf(topic, e)
	fs := &b.flights
	fs.mu.Lock()
	if f := fs.flying[k]; f != nil {
		fs.mu.Unlock()
		b.m.joined.Inc()
		return f
	}
	if l, ok := fs.late[k]; ok && time.Since(l.at) < fs.ttl {
		fs.mu.Unlock()
		b.m.joined.Inc()
		f := &flight{done: make(chan struct{}), rec: &kgo.Record{Partition: l.partition, Offset: l.offset}}
		close(f.done)
		return f
	}
	f := &flight{done: make(chan struct{})}
	fs.flying[k] = f
	fs.mu.Unlock()
	rec := &kgo.Record{Topic: topic, Key: []byte(e.PartitionKey), Value: e.Data}
	b.client.TryProduce(ctx, rec, func(r *kgo.Record, err error) {
		// Locked throughout, so that settle either sees done closed or
		// marks f abandoned before this runs.
		fs.mu.Lock()
		defer fs.mu.Unlock()
		f.rec, f.err = r, err
		delete(fs.flying, k)
		if f.abandoned {
			delete(fs.unresolved, f)
			b.m.late.Inc()
			if err == nil {
				fs.remember(k, late{partition: r.Partition, offset: r.Offset, at: time.Now()})
			}
		}
		close(f.done)
	})
	return f
}

// remember keeps k as acknowledged late, evicting the oldest beyond max
// and those past ttl. Called locked.
func (fs *flights) remember(k flightKey, l late) {
	fs.late[k] = l
	fs.lateOrder = append(fs.lateOrder, k)
	for len(fs.lateOrder) > 0 {
		old := fs.lateOrder[0]
		if len(fs.lateOrder) <= fs.max && time.Since(fs.late[old].at) < fs.ttl {
			break
		}
		delete(fs.late, old)
		fs.lateOrder = fs.lateOrder[1:]
	}
}

// settle waits for f until timeout is closed and says what became of it.
func (b *Backend) settle(f *flight, timeout <-chan struct{}) ingest.Result {
	select {
	case <-f.done:
	case <-timeout:
		b.flights.mu.Lock()
		select {
		case <-f.done:
		default:
			f.abandoned = true
			b.flights.unresolved[f] = struct{}{}
			b.flights.mu.Unlock()
			return ingest.Result{Err: fmt.Errorf("%w: kafkabackend: sent to the broker and not acknowledged by the deadline (the producer keeps retrying it)", ingest.ErrOutcomeUnknown)}
		}
		b.flights.mu.Unlock()
	}
	if f.err == nil {
		return ingest.Result{ShardID: strconv.Itoa(int(f.rec.Partition)), SequenceNumber: strconv.FormatInt(f.rec.Offset, 10)}
	}
	return ingest.Result{Err: classify(f.err)}
}
