// Package strictyaml decodes a config file the way every Tributary binary
// wants it: one YAML document, unknown keys are errors, and errors say
// which file and line to fix. Decoding fills a struct that may already hold
// defaults; fields the file does not mention keep them.
package strictyaml

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"

	"go.yaml.in/yaml/v3"
)

// Errors.
var (
	ErrEmpty    = errors.New("config is empty")
	ErrManyDocs = errors.New("config has more than one YAML document")
)

// Decode decodes one YAML document from b into v (a pointer), strictly:
// unknown keys, type mismatches, an empty input and a second document are
// errors.
func Decode(b []byte, v any) error {
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(v); err != nil {
		if errors.Is(err, io.EOF) {
			return ErrEmpty
		}
		return err
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return ErrManyDocs
	}
	return nil
}

// Load reads the file at path and decodes it with Decode; errors name the
// file.
func Load(path string, v any) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	if err := Decode(b, v); err != nil {
		return fmt.Errorf("config %s: %w", path, err)
	}
	return nil
}

// File decodes the file at path into a new T with Load; on error it
// returns T's zero value.
func File[T any](path string) (T, error) {
	var v T
	if err := Load(path, &v); err != nil {
		var zero T
		return zero, err
	}
	return v, nil
}

// Bytes decodes b into a new T with Decode; on error it returns T's zero
// value.
func Bytes[T any](b []byte) (T, error) {
	var v T
	if err := Decode(b, &v); err != nil {
		var zero T
		return zero, err
	}
	return v, nil
}
