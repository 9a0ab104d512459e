package boltfile

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/fnv"
	"io"
	"os"
)

// Verify checks the structure of an existing bbolt file before bbolt
// maps it. bbolt trusts its file: a damaged page id or element offset makes
// it read outside the mapping (a fault that kills the process) or panic in
// a goroutine of its own. This walker reads the file with ReadAt and checks
// what bbolt will dereference: the meta page bbolt will pick, every page
// reachable from the root bucket (ids, types, bounds, element offsets, key
// order, single reference, nested and inline buckets) and the persisted
// freelist, if any. It follows bbolt v1.5's file format (version 2);
// TestVerifierMatchesBBoltVersion fails when the bbolt in go.mod changes,
// so that this file is checked against the new release.
//
// It reads every reachable page once; bbolt reads them all again when it
// rebuilds its freelist at Open when the file does not persist it.
func Verify(f io.ReaderAt, size int64) error {
	v := &verifier{f: f, size: size}
	return v.run()
}

const (
	bMagic        = 0xED0CDAED
	bVersion      = 2
	bPageHeader   = 16
	bElemSize     = 16 // branch and leaf elements are both 16 bytes
	bBucketHeader = 16
	bMetaSize     = 64
	flagBranch    = 0x01
	flagLeaf      = 0x02
	flagFreelist  = 0x10
	leafBucket    = 0x01
	noFreelist    = ^uint64(0)
	maxDepth      = 64
)

type bmeta struct {
	magic, version, pageSize, flags uint32
	root, sequence, freelist, pgid  uint64
	txid, checksum                  uint64
	valid                           bool
}

type verifier struct {
	f    io.ReaderAt
	size int64
	ps   uint64
	hw   uint64
	seen []uint64 // bitset of pages referenced
}

var ne = binary.NativeEndian // bbolt writes the host's byte order

func (v *verifier) read(off int64, n int) ([]byte, error) {
	if off < 0 || n < 0 || off+int64(n) > v.size {
		return nil, fmt.Errorf("read of %d bytes at %d beyond the file (%d bytes)", n, off, v.size)
	}
	b := make([]byte, n)
	if _, err := v.f.ReadAt(b, off); err != nil {
		return nil, err
	}
	return b, nil
}

func parseMeta(p []byte) bmeta {
	m := p[bPageHeader:]
	mt := bmeta{
		magic: ne.Uint32(m[0:]), version: ne.Uint32(m[4:]), pageSize: ne.Uint32(m[8:]), flags: ne.Uint32(m[12:]),
		root: ne.Uint64(m[16:]), sequence: ne.Uint64(m[24:]), freelist: ne.Uint64(m[32:]), pgid: ne.Uint64(m[40:]),
		txid: ne.Uint64(m[48:]), checksum: ne.Uint64(m[56:]),
	}
	h := fnv.New64a()
	h.Write(m[:56])
	mt.valid = mt.magic == bMagic && mt.version == bVersion && mt.checksum == h.Sum64()
	return mt
}

func (v *verifier) run() error {
	const minPS, maxPS = 512, 64 << 10
	if v.size < 2*minPS {
		return fmt.Errorf("file is %d bytes, too small for a database", v.size)
	}
	// bbolt takes the page size from meta 0, or from meta 1 at the OS page
	// size when meta 0 is invalid.
	b, err := v.read(0, bPageHeader+bMetaSize)
	if err != nil {
		return err
	}
	m0 := parseMeta(b)
	var ps uint64
	if m0.valid {
		ps = uint64(m0.pageSize)
	} else {
		off := int64(os.Getpagesize())
		b, err := v.read(off, bPageHeader+bMetaSize)
		if err != nil {
			return fmt.Errorf("meta page 0 invalid and meta page 1 unreadable: %v", err)
		}
		m1 := parseMeta(b)
		if !m1.valid {
			return fmt.Errorf("both meta pages are invalid")
		}
		ps = uint64(m1.pageSize)
	}
	if ps < minPS || ps > maxPS || ps&(ps-1) != 0 {
		return fmt.Errorf("page size %d is invalid", ps)
	}
	v.ps = ps
	b0, err := v.read(0, bPageHeader+bMetaSize)
	if err != nil {
		return err
	}
	b1, err := v.read(int64(ps), bPageHeader+bMetaSize)
	if err != nil {
		return err
	}
	m0, m1 := parseMeta(b0), parseMeta(b1)
	if !m0.valid && !m1.valid {
		return fmt.Errorf("both meta pages are invalid")
	}
	// bbolt's choice (DB.meta): the higher txid if valid, else the other.
	a, c := m0, m1
	if m1.txid > m0.txid {
		a, c = m1, m0
	}
	m := a
	if !a.valid {
		m = c
	}
	if uint64(m.pageSize) != ps {
		return fmt.Errorf("meta page size %d differs from %d", m.pageSize, ps)
	}
	if m.pgid < 3 || m.pgid > uint64(v.size)/ps {
		return fmt.Errorf("high water mark %d pages outside the file (%d bytes)", m.pgid, v.size)
	}
	v.hw = m.pgid
	v.seen = make([]uint64, (v.hw+63)/64)
	v.mark(0, 0)
	v.mark(1, 0)
	var freeIDs []uint64
	if m.freelist != noFreelist {
		if freeIDs, err = v.freelist(m.freelist); err != nil {
			return err
		}
	}
	if err := v.page(m.root, nil, nil, 0); err != nil {
		return err
	}
	for _, id := range freeIDs {
		if v.isSeen(id) {
			return fmt.Errorf("page %d is both free and in use", id)
		}
	}
	return nil
}

func (v *verifier) isSeen(id uint64) bool { return v.seen[id/64]&(1<<(id%64)) != 0 }

func (v *verifier) mark(id uint64, overflow uint32) error {
	for i := uint64(0); i <= uint64(overflow); i++ {
		p := id + i
		if p >= v.hw {
			return fmt.Errorf("page %d beyond the high water mark %d", p, v.hw)
		}
		if v.isSeen(p) {
			return fmt.Errorf("page %d referenced twice", p)
		}
		v.seen[p/64] |= 1 << (p % 64)
	}
	return nil
}

// load reads page id with its overflow pages after checking its header.
func (v *verifier) load(id uint64, wantFlags uint16) ([]byte, error) {
	if id < 2 || id >= v.hw {
		return nil, fmt.Errorf("page id %d out of range [2,%d)", id, v.hw)
	}
	h, err := v.read(int64(id*v.ps), bPageHeader)
	if err != nil {
		return nil, err
	}
	if got := ne.Uint64(h); got != id {
		return nil, fmt.Errorf("page %d has id %d", id, got)
	}
	flags, overflow := ne.Uint16(h[8:]), ne.Uint32(h[12:])
	if flags&wantFlags == 0 || flags&^wantFlags != 0 || flags != flagBranch && flags != flagLeaf && flags != flagFreelist {
		return nil, fmt.Errorf("page %d has flags %#x", id, flags)
	}
	if uint64(overflow) >= v.hw-id {
		return nil, fmt.Errorf("page %d overflows past the high water mark", id)
	}
	if err := v.mark(id, overflow); err != nil {
		return nil, err
	}
	return v.read(int64(id*v.ps), int((uint64(overflow)+1)*v.ps))
}

func (v *verifier) freelist(id uint64) ([]uint64, error) {
	p, err := v.load(id, flagFreelist)
	if err != nil {
		return nil, fmt.Errorf("freelist: %v", err)
	}
	count, idx := uint64(ne.Uint16(p[10:])), uint64(0)
	if count == 0xFFFF {
		if len(p) < bPageHeader+8 {
			return nil, fmt.Errorf("freelist: truncated")
		}
		count, idx = ne.Uint64(p[bPageHeader:]), 1
	}
	if count > v.hw || bPageHeader+(idx+count)*8 > uint64(len(p)) {
		return nil, fmt.Errorf("freelist: %d ids do not fit", count)
	}
	ids := make([]uint64, count)
	dup := make(map[uint64]bool, count)
	for i := range ids {
		id := ne.Uint64(p[bPageHeader+(idx+uint64(i))*8:])
		if id < 2 || id >= v.hw || dup[id] {
			return nil, fmt.Errorf("freelist: bad or repeated page id %d", id)
		}
		dup[id] = true
		ids[i] = id
	}
	return ids, nil
}

// page checks the subtree rooted at page id; its keys must lie in
// [lo, hi) (nil: unbounded).
func (v *verifier) page(id uint64, lo, hi []byte, depth int) error {
	if depth > maxDepth {
		return fmt.Errorf("tree deeper than %d", maxDepth)
	}
	p, err := v.load(id, flagBranch|flagLeaf)
	if err != nil {
		return err
	}
	if ne.Uint16(p[8:]) == flagLeaf {
		return v.leaf(p, lo, hi, depth)
	}
	count := int(ne.Uint16(p[10:]))
	if count == 0 || bPageHeader+count*bElemSize > len(p) {
		return fmt.Errorf("branch page %d: bad count %d", id, count)
	}
	keys := make([][]byte, count)
	kids := make([]uint64, count)
	for i := range count {
		e := bPageHeader + i*bElemSize
		pos, ksize := uint64(ne.Uint32(p[e:])), uint64(ne.Uint32(p[e+4:]))
		start := uint64(e) + pos
		if start+ksize > uint64(len(p)) {
			return fmt.Errorf("branch page %d: element %d outside the page", id, i)
		}
		keys[i] = p[start : start+ksize]
		kids[i] = ne.Uint64(p[e+8:])
		if i > 0 && bytes.Compare(keys[i-1], keys[i]) >= 0 {
			return fmt.Errorf("branch page %d: keys out of order", id)
		}
	}
	if hi != nil && bytes.Compare(keys[count-1], hi) >= 0 || lo != nil && bytes.Compare(keys[0], lo) < 0 {
		return fmt.Errorf("branch page %d: key beyond its parent's range", id)
	}
	for i := range count {
		clo, chi := keys[i], hi
		if i+1 < count {
			chi = keys[i+1]
		}
		if err := v.page(kids[i], clo, chi, depth+1); err != nil {
			return err
		}
	}
	return nil
}

// leaf checks a leaf page (or an inline bucket's page, which has no id).
func (v *verifier) leaf(p []byte, lo, hi []byte, depth int) error {
	count := int(ne.Uint16(p[10:]))
	if bPageHeader+count*bElemSize > len(p) {
		return fmt.Errorf("leaf: bad count %d", count)
	}
	var prev []byte
	for i := range count {
		e := bPageHeader + i*bElemSize
		flags := ne.Uint32(p[e:])
		pos, ksize, vsize := uint64(ne.Uint32(p[e+4:])), uint64(ne.Uint32(p[e+8:])), uint64(ne.Uint32(p[e+12:]))
		start := uint64(e) + pos
		if flags&^leafBucket != 0 || start+ksize+vsize > uint64(len(p)) {
			return fmt.Errorf("leaf: element %d malformed", i)
		}
		key, val := p[start:start+ksize], p[start+ksize:start+ksize+vsize]
		if i > 0 && bytes.Compare(prev, key) >= 0 || lo != nil && bytes.Compare(key, lo) < 0 ||
			hi != nil && bytes.Compare(key, hi) >= 0 {
			return fmt.Errorf("leaf: keys out of order")
		}
		prev = key
		if flags&leafBucket == 0 {
			continue
		}
		if len(val) < bBucketHeader {
			return fmt.Errorf("leaf: bucket %q has a short header", key)
		}
		if root := ne.Uint64(val); root != 0 {
			if err := v.page(root, nil, nil, depth+1); err != nil {
				return err
			}
			continue
		}
		inline := val[bBucketHeader:]
		if len(inline) < bPageHeader || ne.Uint16(inline[8:]) != flagLeaf {
			return fmt.Errorf("leaf: inline bucket %q malformed", key)
		}
		if depth+1 > maxDepth {
			return fmt.Errorf("tree deeper than %d", maxDepth)
		}
		if err := v.leaf(inline, nil, nil, depth+1); err != nil {
			return err
		}
	}
	return nil
}
