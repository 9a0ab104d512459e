// Package bolttest damages bbolt files for tests: the ways a disk or a
// careless hand can break one.
package bolttest

import (
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"os"
	"strings"
	"testing"

	"github.com/tributary-iot/tributary/internal/boltfile"
)

// Damage is one damaged copy of a file.
type Damage struct {
	Name string
	Data []byte
}

// Damages returns damaged copies of good, the bytes of an intact bbolt
// file of at least four 4 KiB pages: random garbage, good truncated to
// half of its pages in use, good with its meta pages zeroed, good with
// its root page overwritten by garbage, and a few bytes of text.
func Damages(good []byte) []Damage {
	const page = 4096
	rng := rand.New(rand.NewPCG(1, 2))
	garbage := make([]byte, 16*page)
	for i := range garbage {
		garbage[i] = byte(rng.Uint32())
	}
	overwritten := append([]byte(nil), good...)
	root, hwm := meta(good, page)
	copy(overwritten[root*page:(root+1)*page], garbage)
	return []Damage{
		{"garbage", garbage},
		{"truncated to half", good[:hwm/2*page]}, // of its pages in use (bbolt grows files ahead)
		{"meta pages zeroed", append(make([]byte, 2*page), good[2*page:]...)},
		{"a page overwritten", overwritten},
		{"text", []byte("not a database\n")},
	}
}

// Each calls fn in a subtest for every damaged copy of the file at good,
// written to path (which fn then opens).
func Each(t *testing.T, good, path string, fn func(t *testing.T)) {
	t.Helper()
	data, err := os.ReadFile(good)
	if err != nil {
		t.Fatal(err)
	}
	if len(data) < 4*4096 {
		t.Fatalf("%s: %d bytes, want at least four pages to damage", good, len(data))
	}
	for _, d := range Damages(data) {
		t.Run(d.Name, func(t *testing.T) {
			if err := os.WriteFile(path, d.Data, 0o600); err != nil {
				t.Fatal(err)
			}
			fn(t)
		})
	}
}

// meta returns the root bucket's page and the high water mark (pages in
// use) of the newer meta page (page header 16 bytes, then magic, version,
// page size, flags (4 each), root page id (8) at 16, high water mark at
// 40, txid at 48; bbolt writes the host's byte order), each bounded by
// the file.
func meta(b []byte, page int) (root, hwm int) {
	ne := binary.NativeEndian
	pages := uint64(len(b) / page)
	read := func(i int) (root, hwm, txid uint64) {
		m := b[i*page+16:]
		return ne.Uint64(m[16:]), ne.Uint64(m[40:]), ne.Uint64(m[48:])
	}
	r, h, t0 := read(0)
	if r1, h1, t1 := read(1); t1 > t0 {
		r, h = r1, h1
	}
	if r < 2 || r >= pages {
		r = 2
	}
	if h < 4 || h > pages {
		h = pages
	}
	return int(r), int(h)
}

// CheckOpenError fails t unless err, from opening the damaged file at
// path, wraps boltfile.ErrCorrupt, names the file and gives the advice.
func CheckOpenError(t *testing.T, err error, path, advice string) {
	t.Helper()
	if err == nil {
		t.Fatalf("the damaged file %s opened", path)
	}
	if !errors.Is(err, boltfile.ErrCorrupt) || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), advice) {
		t.Fatalf("error %q: want one wrapping boltfile.ErrCorrupt that names %s and says %q", err, path, advice)
	}
}
