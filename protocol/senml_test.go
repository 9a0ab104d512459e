package protocol_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fxamacker/cbor/v2"
	"github.com/google/go-cmp/cmp"

	"github.com/tributary-iot/tributary/protocol"
)

var update = flag.Bool("update", false, "rewrite golden files in testdata")

// now is the receive time used throughout: 2025-11-24T16:00:00Z in µs.
const now = int64(1_764_000_000_000_000)

const dev = "node-1"

func opts() protocol.DecodeOptions { return protocol.DecodeOptions{Device: dev, Now: now} }

// cb encodes a SenML pack given as Go maps with fxamacker/cbor, an
// independent encoder.
func cb(t testing.TB, recs ...map[any]any) []byte {
	t.Helper()
	b, err := cbor.Marshal(recs)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func fl(name, unit string, v float64, tm int64) protocol.Reading {
	return protocol.Reading{Device: dev, Name: name, Unit: unit, Kind: protocol.KindFloat, Value: v, Time: tm, Received: now}
}

// senmlCase is one row of the table that drives decode and encode tests in
// both encodings. json and cborv are alternative encodings of the same pack
// (either may be empty). For valid cases want holds the resolved readings;
// for malformed ones err and index name the expected rejection.
type senmlCase struct {
	name  string
	json  string
	cborv map[any]any // single-record pack, built with fxamacker
	cbraw []byte      // raw CBOR bytes
	want  []protocol.Reading
	err   error
	index int // record index in the error; -1 for the pack
	label string
}

func senmlCases(t testing.TB) []senmlCase {
	abs := int64(1_700_000_000_000_000)
	rel := func(r protocol.Reading) protocol.Reading { r.Flags |= protocol.FlagReceiverTime; return r }
	return []senmlCase{
		{
			name:  "float with absolute time",
			json:  `[{"n":"temperature","u":"Cel","v":21.5,"t":1700000000}]`,
			cborv: map[any]any{0: "temperature", 1: "Cel", 2: 21.5, 6: 1700000000},
			want:  []protocol.Reading{fl("temperature", "Cel", 21.5, abs)},
		},
		{
			name:  "no time means now",
			json:  `[{"n":"temperature","v":21.5}]`,
			cborv: map[any]any{0: "temperature", 2: 21.5},
			want:  []protocol.Reading{rel(fl("temperature", "", 21.5, now))},
		},
		{
			name:  "relative time below 2^28",
			json:  `[{"n":"t","v":1,"t":-10.5}]`,
			cborv: map[any]any{0: "t", 2: 1, 6: -10.5},
			want:  []protocol.Reading{rel(fl("t", "", 1, now-10_500_000))},
		},
		{
			name:  "base name, time, unit, value and sum",
			json:  `[{"bn":"room1/","bt":1700000000,"bu":"Cel","bv":20,"bs":100,"n":"temp","v":1.5,"s":2,"t":0.25}]`,
			cborv: map[any]any{-2: "room1/", -3: 1700000000, -4: "Cel", -5: 20, -6: 100, 0: "temp", 2: 1.5, 5: 2, 6: 0.25},
			want: []protocol.Reading{{Device: dev, Name: "room1/temp", Unit: "Cel", Kind: protocol.KindFloat, Value: 21.5,
				HasSum: true, Sum: 102, Time: abs + 250_000, Received: now}},
		},
		{
			name: "string bool data and sum-only",
			json: `[{"n":"a","vs":"on \"x\""},{"n":"b","vb":true},{"n":"c","vd":"aGkgCg"},{"n":"d","s":42,"u":"m3"}]`,
			want: []protocol.Reading{
				rel(protocol.Reading{Device: dev, Name: "a", Kind: protocol.KindString, Str: `on "x"`, Time: now, Received: now}),
				rel(protocol.Reading{Device: dev, Name: "b", Kind: protocol.KindBool, Bool: true, Time: now, Received: now}),
				rel(protocol.Reading{Device: dev, Name: "c", Kind: protocol.KindData, Data: []byte("hi \n"), Time: now, Received: now}),
				rel(protocol.Reading{Device: dev, Name: "d", Unit: "m3", Kind: protocol.KindNone, HasSum: true, Sum: 42, Time: now, Received: now}),
			},
		},
		{
			name:  "bver 10 accepted, unknown optional label ignored",
			json:  `[{"bver":10,"n":"x","v":1,"t":1700000000,"foo":{"a":[1,2]}}]`,
			cborv: map[any]any{-1: 10, 0: "x", 2: 1, 6: 1700000000, "foo": []any{1, 2}, 99: "later label"},
			want:  []protocol.Reading{fl("x", "", 1, abs)},
		},
		{
			name: "record with only base fields yields no reading",
			json: `[{"bn":"a/"},{"n":"b","v":2,"t":1700000000}]`,
			want: []protocol.Reading{fl("a/b", "", 2, abs)},
		},
		{
			name: "JSON escapes, whitespace and nested unknown labels",
			json: " [ {\"n\" : \"a\" , \"vs\":\"\\u00e9\\ud83d\\ude00\\n\\\"\\/\", \"x\":{\"y\":[true,null,{}],\"z\":-1.5e-3}} ] \n",
			want: []protocol.Reading{rel(protocol.Reading{Device: dev, Name: "a", Kind: protocol.KindString, Str: "é😀\n\"/", Time: now, Received: now})},
		},
		{
			name: "JSON number forms",
			json: `[{"n":"a","v":-0.5e+1,"t":1.7E9}]`,
			want: []protocol.Reading{fl("a", "", -5, abs)},
		},
		// Malformed input.
		{name: "number out of range", json: `[{"n":"x","v":1e400}]`, err: protocol.ErrBadNumber, index: 0, label: "v"},
		{name: "leading zero", json: `[{"n":"x","v":01}]`, err: protocol.ErrSyntax, index: 0},
		{name: "bare minus", json: `[{"n":"x","v":-}]`, err: protocol.ErrSyntax, index: 0, label: "v"},
		{name: "control char in string", json: "[{\"n\":\"a\tb\",\"v\":1}]", err: protocol.ErrSyntax, index: 0},
		{name: "bad escape", json: `[{"n":"x","vs":"\q"}]`, err: protocol.ErrSyntax, index: 0, label: "vs"},
		{name: "missing comma", json: `[{"n":"x","v":1}{"n":"y","v":1}]`, err: protocol.ErrSyntax, index: -1},
		{name: "null value", json: `[{"n":"x","v":null}]`, err: protocol.ErrType, index: 0, label: "v"},
		{name: "object as name", json: `[{"n":{"a":1},"v":1}]`, err: protocol.ErrType, index: 0, label: "n"},
		{name: "not an array", json: `{"n":"x","v":1}`, cbraw: []byte{0xa1, 0x00, 0x61, 'x'}, err: protocol.ErrSyntax, index: -1},
		{name: "empty pack", json: `[]`, cbraw: []byte{0x80}, err: protocol.ErrEmpty, index: -1},
		{name: "empty payload", json: ``, err: protocol.ErrEmpty, index: -1},
		{name: "trailing data", json: `[{"n":"x","v":1}] x`, cbraw: append(cb(t, map[any]any{0: "x", 2: 1}), 0x00), err: protocol.ErrSyntax, index: -1},
		{name: "no value", json: `[{"n":"x","u":"V"}]`, cborv: map[any]any{0: "x", 1: "V"}, err: protocol.ErrNoValue, index: 0},
		{name: "two values", json: `[{"n":"x","v":1,"vs":"a"}]`, cborv: map[any]any{0: "x", 2: 1, 3: "a"}, err: protocol.ErrMultipleValues, index: 0},
		{name: "empty name", json: `[{"v":1}]`, cborv: map[any]any{2: 1}, err: protocol.ErrBadName, index: 0, label: "bn"},
		{name: "bad name char", json: `[{"n":"ok"},{"n":"has space","v":1}]`, err: protocol.ErrNoValue, index: 0},
		{name: "bad name char 2", json: `[{"n":"a","v":1},{"n":"has space","v":1}]`, err: protocol.ErrBadName, index: 1, label: "n"},
		{name: "name starts with dash", json: `[{"n":"-a","v":1}]`, cborv: map[any]any{0: "-a", 2: 1}, err: protocol.ErrBadName, index: 0, label: "n"},
		{name: "bver too new", json: `[{"bver":11,"n":"x","v":1}]`, cborv: map[any]any{-1: 11, 0: "x", 2: 1}, err: protocol.ErrVersion, index: 0, label: "bver"},
		{name: "bver not integer", json: `[{"bver":1.5,"n":"x","v":1}]`, cborv: map[any]any{-1: 1.5, 0: "x", 2: 1}, err: protocol.ErrType, index: 0, label: "bver"},
		{name: "must understand", json: `[{"n":"x","v":1,"new_":1}]`, cborv: map[any]any{0: "x", 2: 1, "new_": 1}, err: protocol.ErrMustUnderstand, index: 0, label: "new_"},
		{name: "value wrong type", json: `[{"n":"x","v":"1"}]`, cborv: map[any]any{0: "x", 2: "1"}, err: protocol.ErrType, index: 0, label: "v"},
		{name: "name wrong type", json: `[{"n":1,"v":1}]`, cborv: map[any]any{0: 1, 2: 1}, err: protocol.ErrType, index: 0, label: "n"},
		{name: "vb wrong type", json: `[{"n":"x","vb":1}]`, cborv: map[any]any{0: "x", 4: 1}, err: protocol.ErrType, index: 0, label: "vb"},
		{name: "vd not base64url", json: `[{"n":"x","vd":"!!"}]`, cborv: map[any]any{0: "x", 8: "text not bytes"}, err: protocol.ErrType, index: 0, label: "vd"},
		{name: "duplicate label", json: `[{"n":"x","v":1,"v":2}]`, cbraw: []byte{0x81, 0xa3, 0x00, 0x61, 'x', 0x02, 0x01, 0x02, 0x02}, err: protocol.ErrDuplicateLabel, index: 0, label: "v"},
		{name: "NaN value", cborv: map[any]any{0: "x", 2: math.NaN()}, err: protocol.ErrBadNumber, index: 0, label: "v"},
		{name: "infinite time", cborv: map[any]any{0: "x", 2: 1, 6: math.Inf(1)}, err: protocol.ErrBadNumber, index: 0, label: "t"},
		{name: "record not a map", json: `[[1]]`, cbraw: []byte{0x81, 0x81, 0x01}, err: protocol.ErrSyntax, index: 0},
		{name: "truncated", json: `[{"n":"x","v":1}`, cbraw: cb(t, map[any]any{0: "x", 2: 1})[:5], err: protocol.ErrSyntax},
		{name: "unit too long", json: `[{"n":"x","v":1,"u":"` + strings.Repeat("u", 33) + `"}]`, err: protocol.ErrTooLarge, index: 0, label: "u"},
		{name: "huge array length", cbraw: []byte{0x9b, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, err: protocol.ErrSyntax, index: -1},
		{name: "invalid utf-8 name", cbraw: []byte{0x81, 0xa2, 0x00, 0x61, 0xff, 0x02, 0x01}, err: protocol.ErrSyntax, index: 0, label: "n"},
	}
}

func checkErr(t *testing.T, err error, c senmlCase) {
	t.Helper()
	if !errors.Is(err, c.err) {
		t.Fatalf("err = %v, want %v", err, c.err)
	}
	var se *protocol.SenMLError
	if !errors.As(err, &se) {
		t.Fatalf("err %T is not a *SenMLError", err)
	}
	if c.index != 0 || c.label != "" {
		if se.Index != c.index {
			t.Errorf("error index = %d, want %d (%v)", se.Index, c.index, err)
		}
		if c.label != "" && se.Label != c.label {
			t.Errorf("error label = %q, want %q (%v)", se.Label, c.label, err)
		}
	}
	if !strings.HasPrefix(err.Error(), "senml") {
		t.Errorf("error %q does not start with the package prefix", err)
	}
}

func TestDecodeSenMLCases(t *testing.T) {
	for _, c := range senmlCases(t) {
		encs := map[string][]byte{}
		if c.json != "" || errors.Is(c.err, protocol.ErrEmpty) && c.cbraw == nil {
			encs["json"] = []byte(c.json)
		}
		if c.cborv != nil {
			encs["cbor"] = cb(t, c.cborv)
		}
		if c.cbraw != nil {
			encs["cbor"] = c.cbraw
		}
		for enc, in := range encs {
			t.Run(c.name+"/"+enc, func(t *testing.T) {
				got, err := protocol.DecodeSenML(in, opts())
				if c.err != nil {
					checkErr(t, err, c)
					return
				}
				if err != nil {
					t.Fatal(err)
				}
				if diff := cmp.Diff(c.want, got); diff != "" {
					t.Errorf("readings (-want +got):\n%s", diff)
				}
			})
		}
	}
}

// TestEncodeSenMLCases encodes every valid case's readings in both
// encodings and checks they decode to the same readings, and that
// fxamacker/cbor (an independent decoder) reads our CBOR as a SenML pack.
func TestEncodeSenMLCases(t *testing.T) {
	for _, c := range senmlCases(t) {
		if c.err != nil {
			continue
		}
		t.Run(c.name, func(t *testing.T) {
			for _, enc := range []struct {
				name string
				fn   func([]protocol.Reading, *protocol.EncodeOptions) []byte
			}{{"json", protocol.EncodeSenMLJSON}, {"cbor", protocol.EncodeSenMLCBOR}} {
				b := enc.fn(c.want, nil)
				got, err := protocol.DecodeSenML(b, opts())
				if err != nil {
					t.Fatalf("%s: decode own encoding %q: %v", enc.name, b, err)
				}
				// Relative times were resolved on decode; the encoder writes
				// them as absolute times, which is the same instant.
				want := append([]protocol.Reading(nil), c.want...)
				for i := range want {
					want[i].Flags &^= protocol.FlagReceiverTime
				}
				if diff := cmp.Diff(want, got); diff != "" {
					t.Errorf("%s round trip (-want +got):\n%s", enc.name, diff)
				}
				if enc.name == "cbor" {
					var generic []map[any]any
					if err := cbor.Unmarshal(b, &generic); err != nil {
						t.Fatalf("fxamacker cannot decode our CBOR: %v", err)
					}
					if len(generic) != len(c.want) {
						t.Fatalf("fxamacker sees %d records, want %d", len(generic), len(c.want))
					}
				} else if !json.Valid(b) {
					t.Fatalf("invalid JSON: %s", b)
				}
			}
		})
	}
}

// TestRFC8428Examples decodes the RFC's own examples (testdata/rfc8428) and
// compares the resolved readings with golden files; the CBOR twins of the
// JSON examples are made by fxamacker/cbor from the JSON, except
// multiple-measurements.cbor, which is the RFC's section 6 hex dump.
func TestRFC8428Examples(t *testing.T) {
	files, _ := filepath.Glob("testdata/rfc8428/*.json")
	files = slicesFilter(files, func(s string) bool { return !strings.HasSuffix(s, ".resolved.json") })
	if len(files) < 5 {
		t.Fatalf("only %d RFC examples in testdata", len(files))
	}
	for _, jf := range files {
		base := strings.TrimSuffix(jf, ".json")
		t.Run(filepath.Base(base), func(t *testing.T) {
			js, err := os.ReadFile(jf)
			if err != nil {
				t.Fatal(err)
			}
			fromJSON, err := protocol.DecodeSenML(js, opts())
			if err != nil {
				t.Fatalf("decode JSON: %v", err)
			}
			cf := base + ".cbor"
			if *update {
				if _, err := os.Stat(cf); os.IsNotExist(err) {
					if err := os.WriteFile(cf, jsonToSenMLCBOR(t, js), 0o644); err != nil {
						t.Fatal(err)
					}
				}
			}
			cbs, err := os.ReadFile(cf)
			if err != nil {
				t.Fatalf("%v (run go test -update)", err)
			}
			fromCBOR, err := protocol.DecodeSenML(cbs, opts())
			if err != nil {
				t.Fatalf("decode CBOR: %v", err)
			}
			if diff := cmp.Diff(fromJSON, fromCBOR); diff != "" {
				t.Errorf("JSON and CBOR disagree (-json +cbor):\n%s", diff)
			}
			got, _ := json.MarshalIndent(fromJSON, "", "  ")
			gf := base + ".resolved.json"
			if *update {
				if err := os.WriteFile(gf, append(got, '\n'), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(gf)
			if err != nil {
				t.Fatalf("%v (run go test -update)", err)
			}
			if !bytes.Equal(bytes.TrimSpace(want), bytes.TrimSpace(got)) {
				t.Errorf("resolved readings differ from %s:\n%s", gf, got)
			}
		})
	}
}

func slicesFilter(s []string, keep func(string) bool) []string {
	var out []string
	for _, v := range s {
		if keep(v) {
			out = append(out, v)
		}
	}
	return out
}

// jsonToSenMLCBOR converts a SenML JSON pack to SenML CBOR with fxamacker:
// labels become the RFC's integer labels, vd becomes a byte string.
func jsonToSenMLCBOR(t *testing.T, js []byte) []byte {
	labels := map[string]int{"bver": -1, "bn": -2, "bt": -3, "bu": -4, "bv": -5, "bs": -6,
		"n": 0, "u": 1, "v": 2, "vs": 3, "vb": 4, "s": 5, "t": 6, "ut": 7, "vd": 8}
	var recs []map[string]any
	if err := json.Unmarshal(js, &recs); err != nil {
		t.Fatal(err)
	}
	var out []map[any]any
	for _, r := range recs {
		m := map[any]any{}
		for k, v := range r {
			if k == "vd" {
				d, err := base64RawURL(v.(string))
				if err != nil {
					t.Fatal(err)
				}
				v = d
			}
			if l, ok := labels[k]; ok {
				m[l] = v
			} else {
				m[k] = v
			}
		}
		out = append(out, m)
	}
	em, _ := cbor.CanonicalEncOptions().EncMode()
	b, err := em.Marshal(out)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestDecodeSenMLRFCValues(t *testing.T) {
	b, err := os.ReadFile("testdata/rfc8428/multiple-measurements.cbor")
	if err != nil {
		t.Fatal(err)
	}
	rs, err := protocol.DecodeSenML(b, opts())
	if err != nil {
		t.Fatal(err)
	}
	if len(rs) != 7 {
		t.Fatalf("got %d readings, want 7", len(rs))
	}
	// bt 1.276020076001e9 s; current at t=-5 s, value 1.2 A (base unit).
	if r := rs[1]; r.Name != "urn:dev:ow:10e2073a0108006:current" || r.Unit != "A" || r.Value != 1.2 ||
		r.Time != 1276020076001000-5_000_000 || r.Flags != 0 {
		t.Errorf("reading 1 = %+v", r)
	}
	if r := rs[4]; r.Value != 1.5 { // encoded as a half-precision float
		t.Errorf("half float: got %v, want 1.5", r.Value)
	}
	if r := rs[0]; r.Unit != "V" || r.Value != 120.1 {
		t.Errorf("reading 0 = %+v", r)
	}
}

func TestDetectFormat(t *testing.T) {
	for in, want := range map[string]protocol.Format{" \n[": protocol.FormatJSON, "\x81": protocol.FormatCBOR, "\x9f": protocol.FormatCBOR} {
		got, err := protocol.DetectFormat([]byte(in))
		if err != nil || got != want {
			t.Errorf("DetectFormat(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"{", "\xa1", "x"} {
		if _, err := protocol.DetectFormat([]byte(in)); !errors.Is(err, protocol.ErrSyntax) {
			t.Errorf("DetectFormat(%q) err = %v, want ErrSyntax", in, err)
		}
	}
}

func TestDecodeSenMLLimits(t *testing.T) {
	big := bytes.Repeat([]byte(" "), protocol.MaxPackBytes+1)
	big[0] = '['
	if _, err := protocol.DecodeSenML(big, opts()); !errors.Is(err, protocol.ErrTooLarge) {
		t.Errorf("oversized pack: err = %v, want ErrTooLarge", err)
	}
	var sb strings.Builder
	sb.WriteString("[")
	for i := 0; i < 11; i++ {
		if i > 0 {
			sb.WriteString(",")
		}
		sb.WriteString(`{"n":"x","v":1}`)
	}
	sb.WriteString("]")
	o := opts()
	o.MaxRecords = 10
	_, err := protocol.DecodeSenML([]byte(sb.String()), o)
	if !errors.Is(err, protocol.ErrTooMany) {
		t.Errorf("11 records with limit 10: err = %v, want ErrTooMany", err)
	}
}

func TestDecodeSenMLIndefiniteLengths(t *testing.T) {
	// [_ {_ 0: (_ "te", "mp"), 2: 1.5 }] with indefinite array, map and text.
	in := []byte{0x9f, 0xbf, 0x00, 0x7f, 0x62, 't', 'e', 0x62, 'm', 'p', 0xff, 0x02, 0xf9, 0x3e, 0x00, 0xff, 0xff}
	rs, err := protocol.DecodeSenML(in, opts())
	if err != nil {
		t.Fatal(err)
	}
	if len(rs) != 1 || rs[0].Name != "temp" || rs[0].Value != 1.5 {
		t.Errorf("got %+v", rs)
	}
}
