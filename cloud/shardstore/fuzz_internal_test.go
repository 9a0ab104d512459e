package shardstore

import (
	"bytes"
	"encoding/binary"
	"testing"
)

// The decoders of what the file and the network hold: each returns an
// error (or not ok) on garbage, never panics, and what it accepts encodes
// back to the same value.

func FuzzDecodeStream(f *testing.F) {
	m := &streamMeta{Name: "telemetry", ID: 7, Created: 1_700_000_000_000, RetentionHours: 24, NextShard: 4}
	starts := uniformStarts(2)
	m.Shards = []shardMeta{
		{Index: 0, Start: HashKey{}, End: MaxHashKey, Parent: -1, Adjacent: -1, First: 8, Last: 20, Closed: true, Created: 1, ClosedAt: 2},
		{Index: 2, Start: starts[0], End: starts[1].sub1(), Parent: 0, Adjacent: -1, First: 21},
		{Index: 3, Start: starts[1], End: MaxHashKey, Parent: 0, Adjacent: -1, First: 21},
	}
	m.derive()
	good, err := m.encode()
	if err != nil {
		f.Fatal(err)
	}
	if _, err := decodeStream(good); err != nil {
		f.Fatalf("the seed does not decode: %v", err)
	}
	f.Add(good)
	f.Add([]byte(`{"name":"t","retention_hours":24,"next_shard":1,"shards":[{"i":0,"s":"1","e":"2","p":-1,"a":-1}]}`))
	f.Add([]byte(`{"name":"t","retention_hours":24,"next_shard":2,"shards":[{"i":1,"s":"0","e":"340282366920938463463374607431768211455","p":-1,"a":-1},{"i":0,"s":"0","e":"5","p":-1,"a":-1}]}`))
	f.Add([]byte(`{"name":"t","shards":null}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := decodeStream(b)
		if err != nil {
			return
		}
		// Routing works for any key: an open shard covers it.
		for _, h := range []HashKey{{}, MaxHashKey, HashPartitionKey(string(b)), {Hi: 1 << 63}} {
			sh := m.route(h)
			if sh.Closed || sh.Start.Cmp(h) > 0 || sh.End.Cmp(h) < 0 {
				t.Fatalf("%s routed to shard %+v", h, sh)
			}
		}
		for _, sh := range m.Shards {
			if m.shard(sh.Index) == nil {
				t.Fatalf("shard %d not found", sh.Index)
			}
		}
		enc, err := m.encode()
		if err != nil {
			t.Fatal(err)
		}
		m2, err := decodeStream(enc)
		if err != nil {
			t.Fatalf("re-encoded metadata does not decode: %v", err)
		}
		if enc2, _ := m2.encode(); !bytes.Equal(enc, enc2) {
			t.Fatalf("round trip: %s != %s", enc, enc2)
		}
	})
}

func FuzzDecodeState(f *testing.F) {
	f.Add(encodeState(1, 0))
	f.Add(encodeState(1<<40, 1_700_000_000_000))
	f.Add([]byte{1, 2, 3})
	f.Fuzz(func(t *testing.T, b []byte) {
		next, lastTs, ok := decodeState(b)
		if !ok {
			return
		}
		if !bytes.Equal(encodeState(next, lastTs), b) {
			t.Fatalf("%x decodes to %d, %d, which encode differently", b, next, lastTs)
		}
	})
}

func FuzzPosition(f *testing.F) {
	for _, p := range []Position{{Stream: "telemetry", StreamID: 1, Shard: 3, Next: 99}, {Stream: "a", Next: ^uint64(0)}} {
		b, _ := p.MarshalBinary()
		f.Add(b)
	}
	f.Add(make([]byte, 20))
	f.Add(append(make([]byte, 20), "bad name"...))
	f.Fuzz(func(t *testing.T, b []byte) {
		var p Position
		if err := p.UnmarshalBinary(b); err != nil {
			return
		}
		if !ValidStreamName(p.Stream) {
			t.Fatalf("accepted stream name %q", p.Stream)
		}
		if enc, _ := p.MarshalBinary(); !bytes.Equal(enc, b) {
			t.Fatalf("%x decodes to %+v, which encodes as %x", b, p, enc)
		}
	})
}

func FuzzDecodeRecord(f *testing.F) {
	v := appendRecord(nil, "dev-1", []byte("payload"))
	sealRecord(v, 1_700_000_000_000)
	f.Add(v)
	empty := appendRecord(nil, "k", nil)
	sealRecord(empty, 0)
	f.Add(empty)
	bad := append([]byte(nil), v...)
	bad[recordHeader] = 0xff // partition key length past the end, CRC fixed up
	binary.BigEndian.PutUint32(bad, 0)
	sealRecord(bad, recordTime(bad))
	f.Add(bad)
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, v []byte) {
		ts, pk, data, ok := decodeRecord(v)
		if !ok {
			return
		}
		again := appendRecord(nil, string(pk), data)
		sealRecord(again, ts)
		ts2, pk2, data2, ok := decodeRecord(again)
		if !ok || ts2 != ts || !bytes.Equal(pk2, pk) || !bytes.Equal(data2, data) {
			t.Fatalf("round trip of %x: %d %q %q", v, ts2, pk2, data2)
		}
	})
}
