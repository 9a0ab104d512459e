package queue

import (
	"os"

	"github.com/tributary-iot/tributary/internal/boltfile"
	"github.com/tributary-iot/tributary/protocol"
)

// Internals exposed to the black-box tests.

func EncodeEntry(r *protocol.Reading) ([]byte, error) { return appendEntry(nil, r) }

func DecodeEntry(b []byte) (protocol.Reading, error) {
	var d decoder
	var r protocol.Reading
	err := d.decodeEntry(b, &r)
	return r, err
}

var ErrEntry = errEntry

// VerifyFile runs the structural check Open runs before bbolt maps a file.
func VerifyFile(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	return boltfile.Verify(f, fi.Size())
}

// AppendLimit is the size appends may grow the file to (the quota less
// the reserve kept for acknowledgements).
func (q *Queue) AppendLimit() int64 { return q.lim.appendLimit }

// DeadLetter encoding, for the fuzz target.
func EncodeDeadLetter(d DeadLetter, maxPayload int) []byte { return encodeDeadLetter(d, maxPayload) }
func DecodeDeadLetter(b []byte) (DeadLetter, error)        { return decodeDeadLetter(b) }

// State is the meta bucket's state record, decoded.
type State struct {
	Next, Appended, Duplicates, Dropped, Acked, Corrupt, DLNext uint64
}

// DecodeMeta checks the meta bucket's records as Open does.
func DecodeMeta(format, epoch, salt, st []byte) (e, s uint64, out State, err error) {
	e, s, v, err := decodeMeta(format, epoch, salt, st)
	return e, s, State{v.next, v.appended, v.duplicates, v.dropped, v.acked, v.corrupt, v.dlNext}, err
}

// EncodeState encodes a state record.
func EncodeState(s State) []byte {
	v := state{s.Next, s.Appended, s.Duplicates, s.Dropped, s.Acked, s.Corrupt, s.DLNext}
	return v.encode(nil)
}

const FormatVersion = formatVersion
