package devicecreds_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tributary-iot/tributary/edge/devicecreds"
	"github.com/tributary-iot/tributary/internal/metrics/metricstest"
	"github.com/tributary-iot/tributary/internal/testenv"
)

// fast keeps the tests quick; the format and code paths are the same.
var fast = devicecreds.Params{Memory: 64, Time: 1, Threads: 1}

func TestHash(t *testing.T) {
	h, err := devicecreds.Hash([]byte("s3cret"), devicecreds.DefaultParams)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(h, "$argon2id$v=19$m=19456,t=2,p=1$") || strings.Contains(h, "s3cret") {
		t.Errorf("hash %q", h)
	}
	h2, _ := devicecreds.Hash([]byte("s3cret"), devicecreds.DefaultParams)
	if h2 == h {
		t.Error("two hashes of one password are equal: no salt")
	}
	for pw, want := range map[string]bool{"s3cret": true, "s3cre": false, "": false, "s3cret ": false} {
		if ok, err := devicecreds.Verify(h, []byte(pw)); ok != want || err != nil {
			t.Errorf("Verify(%q) = %v, %v; want %v", pw, ok, err, want)
		}
	}
	for _, bad := range []string{"", "plain", "$argon2i$v=19$m=64,t=1,p=1$c2FsdHNhbHQ$a2V5a2V5a2V5a2V5a2V5",
		"$argon2id$v=19$m=99999999,t=1,p=1$c2FsdHNhbHQ$a2V5a2V5a2V5a2V5a2V5", // a gigabyte per check
		"$argon2id$v=19$m=64,t=1,p=1$!!$a2V5a2V5a2V5a2V5a2V5"} {
		if _, err := devicecreds.Verify(bad, []byte("x")); !errors.Is(err, devicecreds.ErrBadHash) {
			t.Errorf("Verify on %q: %v, want ErrBadHash", bad, err)
		}
	}
	if a, b := devicecreds.NewPassword(), devicecreds.NewPassword(); len(a) != 32 || a == b {
		t.Errorf("NewPassword: %q, %q", a, b)
	}
}

func TestFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), devicecreds.FileName)
	if ds, err := devicecreds.List(path); err != nil || len(ds) != 0 {
		t.Fatalf("missing file: %v, %v", ds, err)
	}
	if err := devicecreds.Add(path, "dev-b", []byte("pw-b"), false, fast); err != nil {
		t.Fatal(err)
	}
	if err := devicecreds.Add(path, "dev-a", []byte("pw-a"), true, fast); err != nil {
		t.Fatal(err)
	}
	if err := devicecreds.Add(path, "dev-a", []byte("other"), false, fast); !errors.Is(err, devicecreds.ErrExists) {
		t.Errorf("second add: %v", err)
	}
	if err := devicecreds.Add(path, "bad id!", []byte("x"), false, fast); err == nil {
		t.Error("bad id accepted")
	}
	ds, err := devicecreds.List(path)
	if err != nil || len(ds) != 2 || ds[0].ID != "dev-a" || !ds[0].Admin || ds[1].ID != "dev-b" || ds[1].Created.IsZero() {
		t.Fatalf("list: %+v, %v", ds, err)
	}
	b, _ := os.ReadFile(path)
	if strings.Contains(string(b), "pw-a") || strings.Contains(string(b), "pw-b") {
		t.Errorf("a password is stored in the file:\n%s", b)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("file mode: %v, %v", fi.Mode(), err)
	}
	if err := devicecreds.Remove(path, "dev-a"); err != nil {
		t.Fatal(err)
	}
	if err := devicecreds.Remove(path, "dev-a"); !errors.Is(err, devicecreds.ErrNotFound) {
		t.Errorf("second remove: %v", err)
	}
	if ds, _ := devicecreds.List(path); len(ds) != 1 || ds[0].ID != "dev-b" {
		t.Errorf("after remove: %+v", ds)
	}
	// Concurrent adds under the lock lose nothing.
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			if err := devicecreds.Add(path, "dev-c"+string(rune('0'+i)), []byte("x"), false, fast); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if ds, _ := devicecreds.List(path); len(ds) != 9 {
		t.Errorf("after 8 concurrent adds: %d devices, want 9", len(ds))
	}
	// A damaged file is an error naming it.
	for _, bad := range []string{"{", `{"format":2,"devices":[]}`, `{"format":1,"devices":[{"id":"d","hash":"plain"}]}`,
		`{"format":1,"devices":[{"id":"bad id","hash":"x"}]}`} {
		if err := os.WriteFile(path, []byte(bad), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := devicecreds.Load(path); err == nil || !strings.Contains(err.Error(), path) {
			t.Errorf("Load(%s): %v", bad, err)
		}
	}
}

// verifier is a Verifier on a fresh file holding dev-1 (password pw-1),
// with a fake clock and its own metrics.
func verifier(t *testing.T, o devicecreds.Options) (*devicecreds.Verifier, string, *testenv.Clock, *prometheus.Registry) {
	t.Helper()
	path := filepath.Join(t.TempDir(), devicecreds.FileName)
	if err := devicecreds.Add(path, "dev-1", []byte("pw-1"), false, fast); err != nil {
		t.Fatal(err)
	}
	clk := testenv.NewClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	reg := prometheus.NewRegistry()
	o.Now, o.Registerer = clk.Now, reg
	v, err := devicecreds.NewVerifier(path, o)
	if err != nil {
		t.Fatal(err)
	}
	return v, path, clk, reg
}

// A verified password is cached: the next check, right or wrong, runs no
// derivation.
func TestVerifierCache(t *testing.T) {
	v, _, _, reg := verifier(t, devicecreds.Options{})
	for range 3 {
		if err := v.Check("192.0.2.1:1000", "dev-1", []byte("pw-1")); err != nil {
			t.Fatal(err)
		}
	}
	if err := v.Check("192.0.2.1:1000", "dev-1", []byte("wrong")); !errors.Is(err, devicecreds.ErrWrongPassword) {
		t.Errorf("wrong password: %v", err)
	}
	if err := v.Check("192.0.2.1:1000", "dev-9", []byte("pw-1")); !errors.Is(err, devicecreds.ErrUnknownDevice) {
		t.Errorf("unknown device: %v", err)
	}
	if n := metricstest.Value(t, reg, "tributary_intake_password_hashes_total"); n != 1 {
		t.Errorf("%v derivations for 3 right and 1 wrong password of one device, want 1", n)
	}
	if a, w, u := metricstest.Value(t, reg, "tributary_intake_password_checks_total", "result", "accepted"),
		metricstest.Value(t, reg, "tributary_intake_password_checks_total", "result", "wrong_password"),
		metricstest.Value(t, reg, "tributary_intake_password_checks_total", "result", "unknown_device"); a != 3 || w != 1 || u != 1 {
		t.Errorf("checks: accepted %v, wrong %v, unknown %v", a, w, u)
	}
	if known, admin := v.Lookup("dev-1"); !known || admin {
		t.Errorf("Lookup(dev-1) = %v, %v", known, admin)
	}
}

// Failed attempts from one address use up its allowance: then its
// attempts that need a derivation are refused without one, other
// addresses are not affected, a device verified before still connects,
// and the allowance refills with time.
func TestVerifierThrottlesFailures(t *testing.T) {
	v, path, clk, reg := verifier(t, devicecreds.Options{FailureBurst: 3, FailureEvery: 10 * time.Second})
	if err := devicecreds.Add(path, "dev-2", []byte("pw-2"), false, fast); err != nil {
		t.Fatal(err)
	}
	clk.Advance(2 * time.Second) // the verifier reads the file again
	if err := v.Check("198.51.100.9:1", "dev-1", []byte("pw-1")); err != nil {
		t.Fatal(err) // now cached
	}
	attacker := "203.0.113.5:4000"
	for i := range 3 {
		if err := v.Check(attacker, "dev-2", []byte("guess")); !errors.Is(err, devicecreds.ErrWrongPassword) {
			t.Fatalf("guess %d: %v", i, err)
		}
	}
	hashes := metricstest.Value(t, reg, "tributary_intake_password_hashes_total")
	for range 100 {
		if err := v.Check("203.0.113.5:4001", "dev-2", []byte("guess")); !errors.Is(err, devicecreds.ErrThrottled) {
			t.Fatalf("after the allowance: %v, want ErrThrottled", err)
		}
	}
	if err := v.Check(attacker, "dev-2", []byte("pw-2")); !errors.Is(err, devicecreds.ErrThrottled) {
		t.Errorf("the right password needing a derivation from a throttled address: %v", err)
	}
	if n := metricstest.Value(t, reg, "tributary_intake_password_hashes_total"); n != hashes {
		t.Errorf("throttled attempts ran %v derivations", n-hashes)
	}
	if n := metricstest.Value(t, reg, "tributary_intake_password_checks_total", "result", "throttled"); n != 101 {
		t.Errorf("throttled counted %v, want 101", n)
	}
	if err := v.Check(attacker, "dev-1", []byte("pw-1")); err != nil {
		t.Errorf("a cached device behind the same address: %v", err)
	}
	if err := v.Check("[2001:db8::1]:5", "dev-2", []byte("pw-2")); err != nil {
		t.Errorf("another address: %v", err)
	}
	clk.Advance(10 * time.Second)
	if err := v.Check(attacker, "dev-2", []byte("pw-2")); err != nil {
		t.Errorf("after the allowance refilled: %v", err)
	}
}

// Devices added or removed while the verifier runs take effect within
// ReloadEvery; a removed device's cached verification is forgotten.
func TestVerifierReloads(t *testing.T) {
	v, path, clk, _ := verifier(t, devicecreds.Options{ReloadEvery: time.Second})
	if err := v.Check("192.0.2.1:1", "dev-1", []byte("pw-1")); err != nil {
		t.Fatal(err)
	}
	if err := devicecreds.Add(path, "dev-2", []byte("pw-2"), true, fast); err != nil {
		t.Fatal(err)
	}
	if err := devicecreds.Remove(path, "dev-1"); err != nil {
		t.Fatal(err)
	}
	clk.Advance(1500 * time.Millisecond)
	if err := v.Check("192.0.2.1:1", "dev-2", []byte("pw-2")); err != nil {
		t.Errorf("added device: %v", err)
	}
	if err := v.Check("192.0.2.1:1", "dev-1", []byte("pw-1")); !errors.Is(err, devicecreds.ErrUnknownDevice) {
		t.Errorf("removed device: %v", err)
	}
	if known, admin := v.Lookup("dev-2"); !known || !admin || v.Len() != 1 {
		t.Errorf("Lookup(dev-2) = %v, %v; %d devices", known, admin, v.Len())
	}
	// An unreadable file keeps the devices read before.
	if err := os.WriteFile(path, []byte("{"), 0o600); err != nil {
		t.Fatal(err)
	}
	clk.Advance(2 * time.Second)
	if v.Len() != 1 {
		t.Errorf("after a damaged file: %d devices", v.Len())
	}
}

// BenchmarkCheck compares a CONNECT whose password was verified before
// (an HMAC) with one that needs a derivation at DefaultParams (what a
// wrong guess costs, before the failure allowance runs out).
func BenchmarkCheck(b *testing.B) {
	path := filepath.Join(b.TempDir(), devicecreds.FileName)
	if err := devicecreds.Add(path, "dev-1", []byte("pw-1"), false, devicecreds.DefaultParams); err != nil {
		b.Fatal(err)
	}
	b.Run("cached", func(b *testing.B) {
		v, err := devicecreds.NewVerifier(path, devicecreds.Options{})
		if err != nil {
			b.Fatal(err)
		}
		if err := v.Check("192.0.2.1:1", "dev-1", []byte("pw-1")); err != nil {
			b.Fatal(err)
		}
		for b.Loop() {
			if err := v.Check("192.0.2.1:1", "dev-1", []byte("pw-1")); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("derive", func(b *testing.B) {
		h, _ := devicecreds.Hash([]byte("pw-1"), devicecreds.DefaultParams)
		for b.Loop() {
			if ok, err := devicecreds.Verify(h, []byte("pw-1")); !ok || err != nil {
				b.Fatal(ok, err)
			}
		}
	})
}

// A devices.json written before the hashing moved to internal/passhash
// (this entry was made by the old code) still loads, and its password
// still verifies at CONNECT.
func TestOldFileVerifies(t *testing.T) {
	path := filepath.Join(t.TempDir(), devicecreds.FileName)
	old := `{"format": 1, "devices": [{"id": "dev-1", "hash": ` +
		`"$argon2id$v=19$m=19456,t=2,p=1$DOuFJkmJxsRWEH3/QWE3+w$jhMySrRsB4gQ12ULnSrMS4AJSm/e+DcasbNv1w4jIF0", ` +
		`"created": "2026-12-07T23:59:00Z"}]}`
	if err := os.WriteFile(path, []byte(old), 0o600); err != nil {
		t.Fatal(err)
	}
	ds, err := devicecreds.List(path)
	if err != nil || len(ds) != 1 || ds[0].ID != "dev-1" {
		t.Fatalf("List: %v, %v", ds, err)
	}
	v, err := devicecreds.NewVerifier(path, devicecreds.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := v.Check("192.0.2.1:1234", "dev-1", []byte("pw-dev-1")); err != nil {
		t.Errorf("the old hash's password: %v", err)
	}
	if err := v.Check("192.0.2.1:1234", "dev-1", []byte("pw-dev-2")); !errors.Is(err, devicecreds.ErrWrongPassword) {
		t.Errorf("another password: %v, want ErrWrongPassword", err)
	}
}
