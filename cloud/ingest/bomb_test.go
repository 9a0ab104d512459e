package ingest_test

import (
	"runtime"
	"runtime/debug"
	"strings"
	"testing"

	"github.com/fxamacker/cbor/v2"

	"github.com/tributary-iot/tributary/internal/testenv"
)

// bombBody is a batch map for gw-1 holding one valid reading, modified by
// mod: what a compromised gateway can send to make the decoder allocate.
func bombBody(t testing.TB, mod func(map[int]any)) []byte {
	t.Helper()
	m := map[int]any{0: []any{1, 0}, 1: "gw-1", 2: 1, 3: 1, 4: []string{"", "dev", "temp"},
		5: []any{[]any{1, 2, 0, 21.5, int64(1_764_000_000_000_000), 0}}}
	mod(m)
	b, err := cbor.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestBombStream: a stream of tiny compressed bodies that each expand to
// megabytes the batch decoder could build (string tables of millions of
// entries, megabyte ids and values, a million one-byte "readings") is
// refused request by request, stores nothing, and costs each request a
// bounded amount of memory: far less than one bomb's expansion, so the
// cloud's memory stays flat however long the stream.
func TestBombStream(t *testing.T) {
	e := newEnv(t, nil) // MaxBytes: protocol.MaxBatchBytes (8 MiB)
	const big = 4 << 20
	huge := strings.Repeat("x", big)
	bombs := []struct {
		name   string
		body   []byte
		status int
		msg    string
	}{
		{"4M empty table entries", bombBody(t, func(m map[int]any) { m[4] = make([]string, big) }), 400, "string table entries for 1 readings"},
		{"4 MiB table entry", bombBody(t, func(m map[int]any) { m[4] = []string{"", "dev", huge} }), 400, "over 255 bytes"},
		{"4 MiB gateway", bombBody(t, func(m map[int]any) { m[1] = huge }), 400, "gateway"},
		{"4 MiB string value", bombBody(t, func(m map[int]any) {
			m[5] = []any{[]any{1, 2, 0, huge, int64(1_764_000_000_000_000), 0}}
		}), 413, "string value over"},
		{"4M one-byte readings", bombBody(t, func(m map[int]any) { m[5] = make([]int, big) }), 400, "6 to 8 items"},
	}
	type req struct {
		name, enc string
		wire      []byte
		status    int
		msg       string
	}
	var stream []req
	for _, enc := range []string{"zstd", "gzip"} {
		for _, b := range bombs {
			wire := compress(t, enc, b.body)
			if len(wire) > 8<<10 {
				t.Fatalf("%s/%s: %d bytes compressed: not a tiny body", b.name, enc, len(wire))
			}
			stream = append(stream, req{b.name, enc, wire, b.status, b.msg})
		}
	}
	send := func() {
		for _, r := range stream {
			got := e.post(e.tok["gw-1"], r.enc, r.wire)
			if got.Status != r.status || !strings.Contains(got.Err, r.msg) {
				t.Errorf("%s/%s: %d %q, want %d %q", r.name, r.enc, got.Status, got.Err, r.status, r.msg)
			}
		}
	}
	for range 3 { // warm up: pools (one per P), connections, decoders
		send()
	}

	// No collection while measuring: a GC empties the ingest's buffer
	// pools, and a pool miss (a fresh decompression buffer) would then
	// depend on when the collector ran rather than on what a request
	// costs. Pools are per P, so a request that lands on another P may
	// still miss now and then: enough rounds spread that out.
	const rounds = 10
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	gc := debug.SetGCPercent(-1)
	for range rounds {
		send()
	}
	runtime.ReadMemStats(&after)
	debug.SetGCPercent(gc)
	perRequest := (after.TotalAlloc - before.TotalAlloc) / uint64(rounds*len(stream))
	t.Logf("%d bytes allocated per bomb request (client and server)", perRequest)
	// A bomb expands to 4 MiB and used to cost 4 to 128 MiB to refuse.
	// What is left is HTTP, JSON and decompressor state, and now and then
	// a decompression buffer. The race detector drops a random quarter of
	// what goes back into a sync.Pool, so there the buffers are
	// reallocated at random and the figure says nothing about the ingest.
	if !testenv.Race && perRequest > 1<<20 {
		t.Errorf("%d bytes allocated per bomb request, want under 1 MiB", perRequest)
	}
	// Flat: once collected (twice: pools keep a victim generation), the
	// stream leaves nothing behind.
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&after)
	if grown := int64(after.HeapAlloc) - int64(before.HeapAlloc); grown > 1<<20 {
		t.Errorf("live heap grew by %d bytes over %d bomb requests, want under 1 MiB", grown, rounds*len(stream))
	}
	if n := e.be.count(); n != 0 {
		t.Errorf("%d records stored from bombs, want none", n)
	}
}
