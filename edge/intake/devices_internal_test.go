package intake

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

// FuzzParseState: a device's status payload (its birth message or last
// will, any bytes a device or the broker sends) gives one of the three
// states without panicking; a JSON object's "state" member decides it.
func FuzzParseState(f *testing.F) {
	for _, s := range []string{
		`{"state":"online"}`, `{"state":"OFFLINE","reason":"will"}`, `{"state":"sleeping"}`,
		`{"state":1}`, `["online"]`, `online`, `{"state":"online"`, `{"State":"Online"}`,
		`{"state":"online","state":"offline"}`, `null`, ``, "\xff\xfe",
	} {
		f.Add([]byte(s))
	}
	f.Add(bytes.Repeat([]byte{' '}, maxStatusBytes+1))
	f.Fuzz(func(t *testing.T, payload []byte) {
		got := parseState(payload)
		switch got {
		case "online", "offline", "unknown":
		default:
			t.Fatalf("parseState(%q) = %q", payload, got)
		}
		if got != "unknown" && !bytes.Contains(bytes.ToLower(payload), []byte(got)) {
			// (JSON escapes could spell it otherwise; the fuzzer rarely finds them.)
			var v struct{ State string }
			if json.Unmarshal(payload, &v) != nil || strings.ToLower(v.State) != got {
				t.Fatalf("parseState(%q) = %q, not what the payload says", payload, got)
			}
		}
		if len(payload) > maxStatusBytes && got != "unknown" {
			t.Fatalf("parsed a %d-byte payload (limit %d)", len(payload), maxStatusBytes)
		}
	})
}
