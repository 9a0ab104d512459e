package strictyaml_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tributary-iot/tributary/internal/strictyaml"
	"github.com/tributary-iot/tributary/internal/strictyaml/yamltest"
)

type config struct {
	Name  string `yaml:"name"`
	Count int    `yaml:"count"`
	Inner struct {
		On bool `yaml:"on"`
	} `yaml:"inner"`
}

func TestDecode(t *testing.T) {
	c := config{Name: "default", Count: 7}
	if err := strictyaml.Decode([]byte("count: 3\ninner: {on: true}\n"), &c); err != nil {
		t.Fatal(err)
	}
	if c.Name != "default" || c.Count != 3 || !c.Inner.On {
		t.Errorf("decoded %+v: defaults not kept or values lost", c)
	}
	for in, want := range map[string]string{
		"":                        strictyaml.ErrEmpty.Error(),
		"# only a comment\n":      strictyaml.ErrEmpty.Error(),
		"nme: x\n":                "field nme not found",
		"count: many\n":           "line 1",
		"name: a\n---\nname: b\n": strictyaml.ErrManyDocs.Error(),
		"inner: {off: true}\n":    "field off not found",
	} {
		var c config
		err := strictyaml.Decode([]byte(in), &c)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Decode(%q) = %v, want an error saying %q", in, err, want)
		}
	}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "c.yml")
	if err := os.WriteFile(p, []byte("name: x\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var c config
	if err := strictyaml.Load(p, &c); err != nil || c.Name != "x" {
		t.Fatalf("Load: %+v %v", c, err)
	}
	err := strictyaml.Load(filepath.Join(dir, "missing.yml"), &c)
	if !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
	if err := os.WriteFile(p, []byte("bogus: 1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := strictyaml.Load(p, &c); err == nil || !strings.Contains(err.Error(), p) {
		t.Errorf("error %v does not name the file", err)
	}
}

func TestFixtures(t *testing.T) {
	yamltest.Run(t, "testdata", 3, func(b []byte) error {
		var c config
		if err := strictyaml.Decode(b, &c); err != nil {
			return err
		}
		if c.Count < 0 {
			return errors.New("count: must not be negative")
		}
		return nil
	})
}

func FuzzDecode(f *testing.F) {
	f.Add([]byte("name: x\ncount: 2\n"))
	f.Add([]byte("a: &a [*a]\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		var c config
		_ = strictyaml.Decode(b, &c) // must not panic
	})
}

func TestGenericsAndDefault(t *testing.T) {
	c, err := strictyaml.Bytes[config]([]byte("name: n\n"))
	if err != nil || c.Name != "n" {
		t.Fatalf("Bytes: %+v %v", c, err)
	}
	if c, err := strictyaml.Bytes[config]([]byte("name: n\nbogus: 1\n")); err == nil || c.Name != "" {
		t.Fatalf("Bytes on bad input: %+v %v, want the zero value and an error", c, err)
	}
	p := filepath.Join(t.TempDir(), "c.yml")
	if err := os.WriteFile(p, []byte("count: 4\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if c, err := strictyaml.File[config](p); err != nil || c.Count != 4 {
		t.Fatalf("File: %+v %v", c, err)
	}
}
