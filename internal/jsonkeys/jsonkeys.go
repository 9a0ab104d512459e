// Package jsonkeys walks the members of the objects in a JSON document,
// for tests of what the binaries write (log lines, /healthz): it finds a
// key that appears twice in one object, which encoding/json accepts
// silently (the last one wins) and log pipelines reject or mangle, and it
// names what other checks (key style, value types) look at.
package jsonkeys

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strings"
	"time"
)

// ErrDuplicateKey is wrapped by Walk's error for a key that appears twice
// in one object.
var ErrDuplicateKey = errors.New("jsonkeys: duplicate key")

// Visitor is called for each member of every object. path is the member's
// dotted path from the top ("queue.depth"; an array element adds "[]" to
// its array's path), key the member's own key. value is the member's
// value when it is a scalar (string, json.Number, bool or nil), or
// json.Delim('{') or json.Delim('[') for an object or an array, whose
// members are visited next.
type Visitor func(path, key string, value any) error

// Walk reads one JSON value from data and calls visit (which may be nil)
// for every member of every object in it, depth first. It fails on
// invalid JSON, on data after the value, on a key that appears twice in
// one object (ErrDuplicateKey), and on visit's first error.
func Walk(data []byte, visit Visitor) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	w := walker{dec: dec, visit: visit}
	tok, err := dec.Token()
	if err != nil {
		return fmt.Errorf("jsonkeys: %w", err)
	}
	if err := w.value("", tok); err != nil {
		return err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return errors.New("jsonkeys: more than one JSON value")
	}
	return nil
}

type walker struct {
	dec   *json.Decoder
	visit Visitor
}

// value walks the value that starts with tok.
func (w *walker) value(path string, tok json.Token) error {
	switch tok {
	case json.Delim('{'):
		return w.object(path)
	case json.Delim('['):
		for w.dec.More() {
			tok, err := w.dec.Token()
			if err != nil {
				return fmt.Errorf("jsonkeys: %w", err)
			}
			if err := w.value(path+"[]", tok); err != nil {
				return err
			}
		}
		if _, err := w.dec.Token(); err != nil { // ]
			return fmt.Errorf("jsonkeys: %w", err)
		}
	}
	return nil
}

// object walks an object's members up to its closing brace (the opening
// one is read).
func (w *walker) object(path string) error {
	seen := map[string]bool{}
	for {
		tok, err := w.dec.Token()
		if err != nil {
			return fmt.Errorf("jsonkeys: %w", err)
		}
		if tok == json.Delim('}') {
			return nil
		}
		key := tok.(string) // the decoder only returns strings as keys
		full := key
		if path != "" {
			full = path + "." + key
		}
		if seen[key] {
			return fmt.Errorf("%w: %q", ErrDuplicateKey, full)
		}
		seen[key] = true
		if tok, err = w.dec.Token(); err != nil {
			return fmt.Errorf("jsonkeys: %w", err)
		}
		if w.visit != nil {
			if err := w.visit(full, key, tok); err != nil {
				return err
			}
		}
		if err := w.value(full, tok); err != nil {
			return err
		}
	}
}

// SnakeCase reports whether key is snake_case: words of lowercase ASCII
// letters and digits joined by single underscores, starting with a letter
// ("oldest_unsent_seconds", "other_4xx").
func SnakeCase(key string) bool {
	if key == "" || key[0] < 'a' || key[0] > 'z' || key[len(key)-1] == '_' {
		return false
	}
	for i := 0; i < len(key); i++ {
		switch c := key[i]; {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9':
		case c == '_' && key[i-1] != '_':
		default:
			return false
		}
	}
	return true
}

// CheckSnakeCase walks data and fails on the first key that is not
// snake_case (or on what Walk fails on). Keys under the paths in data
// (maps whose keys are values, not names) are not checked.
func CheckSnakeCase(data []byte, dataPaths ...string) error {
	skip := map[string]bool{}
	for _, p := range dataPaths {
		skip[p] = true
	}
	return Walk(data, func(path, key string, _ any) error {
		parent := path[:len(path)-len(key)]
		if len(parent) > 0 && skip[parent[:len(parent)-1]] {
			return nil
		}
		if !SnakeCase(key) {
			return fmt.Errorf("jsonkeys: key %q is not snake_case", path)
		}
		return nil
	})
}

// CheckSchema checks the JSON encoding of the type of v (a struct, or a
// pointer to one) with every field set: maps get one entry, slices one
// element, pointers a value, so that no omitempty key is left out. It fails
// on a key that is not snake_case (keys under dataPaths excepted) and on a
// field that has no key of its own (json:"-", or embedded without a tag).
func CheckSchema(v any, dataPaths ...string) error {
	t := reflect.TypeOf(v)
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	val := reflect.New(t).Elem()
	fields := fill(val)
	data, err := json.Marshal(val.Interface())
	if err != nil {
		return fmt.Errorf("jsonkeys: %w", err)
	}
	if err := CheckSnakeCase(data, dataPaths...); err != nil {
		return fmt.Errorf("%w in %s", err, data)
	}
	keys := 0
	_ = Walk(data, func(path, _ string, _ any) error {
		for _, p := range dataPaths {
			if strings.HasPrefix(path, p+".") {
				return nil
			}
		}
		keys++
		return nil
	})
	if keys != fields {
		return fmt.Errorf("jsonkeys: %s: %d keys for %d fields in %s", t, keys, fields, data)
	}
	return nil
}

// fill sets every field reachable from v to a non-zero value and returns
// how many struct fields it set.
func fill(v reflect.Value) int {
	switch v.Kind() {
	case reflect.Pointer:
		v.Set(reflect.New(v.Type().Elem()))
		return fill(v.Elem())
	case reflect.Struct:
		if v.Type() == reflect.TypeFor[time.Time]() {
			v.Set(reflect.ValueOf(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)))
			return 0
		}
		n := 0
		for i := range v.NumField() {
			if v.Type().Field(i).IsExported() {
				n += 1 + fill(v.Field(i))
			}
		}
		return n
	case reflect.Map:
		m := reflect.MakeMap(v.Type())
		k, e := reflect.New(v.Type().Key()).Elem(), reflect.New(v.Type().Elem()).Elem()
		fill(k)
		fill(e)
		m.SetMapIndex(k, e)
		v.Set(m)
	case reflect.Slice:
		s := reflect.MakeSlice(v.Type(), 1, 1)
		fill(s.Index(0))
		v.Set(s)
	case reflect.String:
		v.SetString("x")
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		v.SetInt(1)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		v.SetUint(1)
	case reflect.Float32, reflect.Float64:
		v.SetFloat(1)
	}
	return 0
}
