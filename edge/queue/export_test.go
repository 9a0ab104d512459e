package queue

import (
	"os"

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
	return verifyFile(f, fi.Size())
}

// AppendLimit is the size appends may grow the file to (the quota less
// the reserve kept for acknowledgements).
func (q *Queue) AppendLimit() int64 { return q.lim.appendLimit }
