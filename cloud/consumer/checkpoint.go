package consumer

import (
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/tributary-iot/tributary/internal/boltfile"
)

// Checkpoint is how far an application has processed one shard.
type Checkpoint struct {
	// SequenceNumber of the last record processed ("" when the shard
	// ended before any record was read); reading resumes after it.
	SequenceNumber string `json:"seq,omitempty"`
	// Ended is set once the shard's end was reached and every record
	// before it processed: the shard is never read again and its children
	// may be.
	Ended   bool      `json:"ended,omitempty"`
	Updated time.Time `json:"updated"`
}

// Checkpoints is a bbolt file of checkpoints keyed by (application,
// stream, shard). Every Set is one fsynced transaction. Safe for
// concurrent use; one process at a time may open a file.
type Checkpoints struct {
	db        *bolt.DB
	closeOnce sync.Once
	closeErr  error
}

var bucketCheckpoints = []byte("checkpoints")

// OpenCheckpoints opens (creating if needed) the checkpoint file at path.
// It fails after a second if another process holds the file.
func OpenCheckpoints(path string) (*Checkpoints, error) {
	db, err := boltfile.Open(path, bolt.Options{Timeout: time.Second}, "move it aside: shards are then read again from start_at")
	if err != nil {
		return nil, fmt.Errorf("consumer: checkpoints: %w", err)
	}
	if err := db.Update(func(tx *bolt.Tx) error {
		_, err := tx.CreateBucketIfNotExists(bucketCheckpoints)
		return err
	}); err != nil {
		db.Close()
		return nil, fmt.Errorf("consumer: open checkpoints %s: %w", path, err)
	}
	return &Checkpoints{db: db}, nil
}

// Close closes the file; it is idempotent.
func (c *Checkpoints) Close() error {
	c.closeOnce.Do(func() { c.closeErr = c.db.Close() })
	return c.closeErr
}

// Get returns the checkpoint of a shard and whether there is one.
func (c *Checkpoints) Get(app, stream, shard string) (Checkpoint, bool, error) {
	var cp Checkpoint
	var ok bool
	err := c.db.View(func(tx *bolt.Tx) error {
		b := streamBucket(tx, app, stream)
		if b == nil {
			return nil
		}
		v := b.Get([]byte(shard))
		if v == nil {
			return nil
		}
		ok = true
		var err error
		cp, err = decodeCheckpoint(v)
		return err
	})
	if err != nil {
		return Checkpoint{}, false, fmt.Errorf("consumer: read checkpoint %s/%s/%s: %w", app, stream, shard, err)
	}
	return cp, ok, nil
}

// All returns every checkpoint of an application on a stream, by shard.
func (c *Checkpoints) All(app, stream string) (map[string]Checkpoint, error) {
	out := make(map[string]Checkpoint)
	err := c.db.View(func(tx *bolt.Tx) error {
		b := streamBucket(tx, app, stream)
		if b == nil {
			return nil
		}
		return b.ForEach(func(k, v []byte) error {
			cp, err := decodeCheckpoint(v)
			if err != nil {
				return fmt.Errorf("shard %s: %w", k, err)
			}
			out[string(k)] = cp
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("consumer: read checkpoints %s/%s: %w", app, stream, err)
	}
	return out, nil
}

// Set stores a shard's checkpoint durably (the call returns after fsync).
func (c *Checkpoints) Set(app, stream, shard string, cp Checkpoint) error {
	v, err := json.Marshal(cp)
	if err != nil {
		return err
	}
	err = c.db.Update(func(tx *bolt.Tx) error {
		a, err := tx.Bucket(bucketCheckpoints).CreateBucketIfNotExists([]byte(app))
		if err != nil {
			return err
		}
		s, err := a.CreateBucketIfNotExists([]byte(stream))
		if err != nil {
			return err
		}
		return s.Put([]byte(shard), v)
	})
	if err != nil {
		return fmt.Errorf("consumer: write checkpoint %s/%s/%s: %w", app, stream, shard, err)
	}
	return nil
}

// maxSeqDigits is the longest sequence number Kinesis issues.
const maxSeqDigits = 128

// decodeCheckpoint decodes a stored checkpoint (JSON), refusing one whose
// sequence number is not a decimal number.
func decodeCheckpoint(v []byte) (Checkpoint, error) {
	var cp Checkpoint
	if err := json.Unmarshal(v, &cp); err != nil {
		return Checkpoint{}, fmt.Errorf("consumer: checkpoint: %w", err)
	}
	seq := cp.SequenceNumber
	if len(seq) > maxSeqDigits || strings.Trim(seq, "0123456789") != "" {
		return Checkpoint{}, fmt.Errorf("consumer: checkpoint: sequence number %.40q is not a decimal number of at most %d digits", seq, maxSeqDigits)
	}
	return cp, nil
}

func streamBucket(tx *bolt.Tx, app, stream string) *bolt.Bucket {
	a := tx.Bucket(bucketCheckpoints).Bucket([]byte(app))
	if a == nil {
		return nil
	}
	return a.Bucket([]byte(stream))
}
