package monitor

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/tributary-iot/tributary/internal/boltfile"
)

// Bounds of a Notes file.
const (
	// MaxAcks acknowledgements are kept; beyond, the oldest is forgotten.
	MaxAcks = 10_000
	// MaxSilences active silences at once; more are refused
	// (ErrTooManySilences) until one ends or is deleted.
	MaxSilences = 1000
	// MaxSilence is the longest silence; MinSilence the shortest.
	MaxSilence = 30 * 24 * time.Hour
	MinSilence = time.Minute
)

// Errors of Notes.
var (
	ErrTooManySilences = errors.New("monitor: too many active silences")
	ErrUnknownSilence  = errors.New("monitor: no such silence")
)

// Ack is an operator's acknowledgement of an incident.
type Ack struct {
	Incident string    `json:"incident"`
	At       time.Time `json:"at"`
}

// Silence mutes a device's (or one of its metrics') incidents until
// Until: their events are still recorded and listed, marked silenced, but
// not sent to the webhook.
type Silence struct {
	ID      string    `json:"id"`
	Device  string    `json:"device"`
	Metric  string    `json:"metric,omitempty"` // "": every metric of Device
	Until   time.Time `json:"until"`
	Created time.Time `json:"created"`
}

// Notes are the operators' acknowledgements and silences, kept in a bbolt
// file (the cloud's dashboard.db) so that they survive a restart; every
// change is one fsynced transaction. Safe for concurrent use; one process
// at a time may open a file.
type Notes struct {
	db  *bolt.DB
	now func() time.Time

	mu       sync.Mutex
	acks     map[string]Ack
	silences map[string]Silence
}

var (
	bucketAcks     = []byte("acks")
	bucketSilences = []byte("silences")
)

// OpenNotes opens (creating if needed) the notes file at path. It fails
// after a second if another process holds the file.
func OpenNotes(path string) (*Notes, error) {
	db, err := boltfile.Open(path, bolt.Options{Timeout: time.Second}, "move it aside: acknowledgements and silences are then forgotten")
	if err != nil {
		return nil, fmt.Errorf("monitor: notes: %w", err)
	}
	n := &Notes{db: db, now: time.Now, acks: map[string]Ack{}, silences: map[string]Silence{}}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bucketAcks, bucketSilences} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		if err := tx.Bucket(bucketAcks).ForEach(func(k, v []byte) error {
			var a Ack
			if err := json.Unmarshal(v, &a); err != nil {
				return fmt.Errorf("ack %q: %w", k, err)
			}
			n.acks[a.Incident] = a
			return nil
		}); err != nil {
			return err
		}
		return tx.Bucket(bucketSilences).ForEach(func(k, v []byte) error {
			var s Silence
			if err := json.Unmarshal(v, &s); err != nil {
				return fmt.Errorf("silence %q: %w", k, err)
			}
			n.silences[s.ID] = s
			return nil
		})
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("monitor: notes %s: %w", path, err)
	}
	return n, nil
}

// Close closes the file.
func (n *Notes) Close() error { return n.db.Close() }

// Ack acknowledges an incident (again: the time is updated).
func (n *Notes) Ack(incident string) (Ack, error) {
	a := Ack{Incident: incident, At: n.now().UTC()}
	n.mu.Lock()
	defer n.mu.Unlock()
	var evict string
	if _, ok := n.acks[incident]; !ok && len(n.acks) >= MaxAcks {
		for id, o := range n.acks {
			if evict == "" || o.At.Before(n.acks[evict].At) {
				evict = id
			}
		}
	}
	err := n.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketAcks)
		if evict != "" {
			if err := b.Delete([]byte(evict)); err != nil {
				return err
			}
		}
		v, _ := json.Marshal(a)
		return b.Put([]byte(incident), v)
	})
	if err != nil {
		return Ack{}, fmt.Errorf("monitor: ack: %w", err)
	}
	if evict != "" {
		delete(n.acks, evict)
	}
	n.acks[incident] = a
	return a, nil
}

// Acked returns an incident's acknowledgement, if any.
func (n *Notes) Acked(incident string) (Ack, bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	a, ok := n.acks[incident]
	return a, ok
}

// Silence adds a silence of s.Device (and s.Metric, if set) until
// s.Until; it fills in ID and Created. Silences that ended are removed
// first.
func (n *Notes) Silence(s Silence) (Silence, error) {
	now := n.now().UTC()
	if s.Device == "" {
		return Silence{}, fmt.Errorf("%w: device: required", ErrBadQuery)
	}
	if d := s.Until.Sub(now); d < MinSilence || d > MaxSilence {
		return Silence{}, fmt.Errorf("%w: until: want %v to %v from now", ErrBadQuery, MinSilence, MaxSilence)
	}
	var id [8]byte
	rand.Read(id[:])
	s.ID, s.Created, s.Until = hex.EncodeToString(id[:]), now, s.Until.UTC()
	n.mu.Lock()
	defer n.mu.Unlock()
	var ended []string
	for id, o := range n.silences {
		if !now.Before(o.Until) {
			ended = append(ended, id)
		}
	}
	if len(n.silences)-len(ended) >= MaxSilences {
		return Silence{}, fmt.Errorf("%w: %d; delete some (DELETE /api/v1/silences/{id})", ErrTooManySilences, MaxSilences)
	}
	err := n.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketSilences)
		for _, id := range ended {
			if err := b.Delete([]byte(id)); err != nil {
				return err
			}
		}
		v, _ := json.Marshal(s)
		return b.Put([]byte(s.ID), v)
	})
	if err != nil {
		return Silence{}, fmt.Errorf("monitor: silence: %w", err)
	}
	for _, id := range ended {
		delete(n.silences, id)
	}
	n.silences[s.ID] = s
	return s, nil
}

// Unsilence deletes a silence.
func (n *Notes) Unsilence(id string) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if _, ok := n.silences[id]; !ok {
		return fmt.Errorf("%w: %q", ErrUnknownSilence, truncate(id, 64))
	}
	if err := n.db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bucketSilences).Delete([]byte(id)) }); err != nil {
		return fmt.Errorf("monitor: unsilence: %w", err)
	}
	delete(n.silences, id)
	return nil
}

// Silences returns the active silences, ending soonest first.
func (n *Notes) Silences() []Silence {
	now := n.now()
	n.mu.Lock()
	out := []Silence{}
	for _, s := range n.silences {
		if now.Before(s.Until) {
			out = append(out, s)
		}
	}
	n.mu.Unlock()
	sort.Slice(out, func(i, j int) bool {
		if !out[i].Until.Equal(out[j].Until) {
			return out[i].Until.Before(out[j].Until)
		}
		return out[i].ID < out[j].ID
	})
	return out
}

// Silenced reports whether a device's metric is silenced now.
func (n *Notes) Silenced(device, metric string) bool {
	now := n.now()
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, s := range n.silences {
		if s.Device == device && (s.Metric == "" || s.Metric == metric) && now.Before(s.Until) {
			return true
		}
	}
	return false
}
