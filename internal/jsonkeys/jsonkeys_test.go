package jsonkeys_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/tributary-iot/tributary/internal/jsonkeys"
)

func TestWalk(t *testing.T) {
	var got []string
	err := jsonkeys.Walk([]byte(`{"a":1,"b":{"c":"x","d":[{"e":true},{"e":null}]},"f":[1,[2]]}`), func(path, key string, v any) error {
		switch v := v.(type) {
		case json.Delim:
			got = append(got, path+"="+v.String())
		default:
			b, _ := json.Marshal(v)
			got = append(got, path+"="+string(b))
		}
		return nil
	})
	want := `a=1 b={ b.c="x" b.d=[ b.d[].e=true b.d[].e=null f=[`
	if err != nil || strings.Join(got, " ") != want {
		t.Errorf("%v\n got %s\nwant %s", err, strings.Join(got, " "), want)
	}
}

func TestWalkFails(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{`{"a":1,"a":1}`, `duplicate key: "a"`},
		{`{"x":[{"a":1},{"b":{"c":1,"c":1}}]}`, `duplicate key: "x[].b.c"`},
		{`{"a":1}{"a":1}`, "more than one JSON value"},
		{`{"a":`, "EOF"},
		{``, "EOF"},
	} {
		err := jsonkeys.Walk([]byte(tc.in), nil)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.in, err, tc.want)
		}
	}
	if err := jsonkeys.Walk([]byte(`{"a":1,"a":2}`), nil); !errors.Is(err, jsonkeys.ErrDuplicateKey) {
		t.Errorf("not ErrDuplicateKey: %v", err)
	}
	// The same key in two objects is fine.
	if err := jsonkeys.Walk([]byte(`[{"a":1},{"a":2}]`), nil); err != nil {
		t.Error(err)
	}
}

func TestSnakeCase(t *testing.T) {
	for key, want := range map[string]bool{
		"status": true, "oldest_unsent_seconds": true, "other_4xx": true, "a1": true,
		"BatchesSent": false, "lastSuccess": false, "_x": false, "x_": false, "a__b": false, "": false,
		"4xx": false, "dead-letters": false, "é": false,
	} {
		if got := jsonkeys.SnakeCase(key); got != want {
			t.Errorf("%q: %v", key, got)
		}
	}
}

func TestCheckSnakeCase(t *testing.T) {
	doc := []byte(`{"queue":{"depth":1},"intake":{"rejected_by":{"Bad Topic":2}},"list":[{"ok_key":1}]}`)
	if err := jsonkeys.CheckSnakeCase(doc, "intake.rejected_by"); err != nil {
		t.Error(err)
	}
	if err := jsonkeys.CheckSnakeCase(doc); err == nil || !strings.Contains(err.Error(), `"intake.rejected_by.Bad Topic"`) {
		t.Errorf("map keys checked: %v", err)
	}
	if err := jsonkeys.CheckSnakeCase([]byte(`{"uplink":{"BatchesSent":1}}`)); err == nil || !strings.Contains(err.Error(), `"uplink.BatchesSent" is not snake_case`) {
		t.Errorf("%v", err)
	}
}

func TestCheckSchema(t *testing.T) {
	type inner struct {
		B []int          `json:"b_list"`
		M map[string]int `json:"m,omitempty"`
	}
	type good struct {
		A  *string `json:"a,omitempty"`
		In inner   `json:"inner"`
		T  time.Time
	}
	if err := jsonkeys.CheckSchema(&good{}, "inner.m"); err == nil || !strings.Contains(err.Error(), `"T" is not snake_case`) {
		t.Errorf("untagged field: %v", err)
	}
	type ok struct {
		A  *string   `json:"a,omitempty"`
		In inner     `json:"inner"`
		T  time.Time `json:"t"`
		x  int
	}
	if err := jsonkeys.CheckSchema(ok{}, "inner.m"); err != nil {
		t.Error(err)
	}
	type hidden struct {
		A int `json:"a"`
		B int `json:"-"`
	}
	if err := jsonkeys.CheckSchema(hidden{}); err == nil || !strings.Contains(err.Error(), "1 keys for 2 fields") {
		t.Errorf("hidden field: %v", err)
	}
}
