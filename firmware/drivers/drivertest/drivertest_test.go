package drivertest_test

import (
	"errors"
	"fmt"
	"runtime"
	"slices"
	"testing"

	"periph.io/x/conn/v3/i2c/i2ctest"

	"github.com/tributary-iot/tributary/firmware/drivers/drivertest"
)

func TestFaultyI2C(t *testing.T) {
	ops := []i2ctest.IO{
		{Addr: 0x44, W: []byte{0x01}},
		{Addr: 0x44, W: []byte{0x02}, R: []byte{0xAA}},
	}
	bus := drivertest.NewFaultyI2C(ops, drivertest.ErrNACK, 0, 2)
	if err := bus.Tx(0x44, []byte{0x01}, nil); !errors.Is(err, drivertest.ErrNACK) {
		t.Fatalf("transaction 0 = %v, want ErrNACK", err)
	}
	// A failed transaction uses up no op: transaction 1 plays back op 0.
	if err := bus.Tx(0x44, []byte{0x01}, nil); err != nil {
		t.Fatalf("transaction 1: %v", err)
	}
	if err := bus.Tx(0x44, []byte{0x02}, make([]byte, 1)); !errors.Is(err, drivertest.ErrNACK) {
		t.Fatalf("transaction 2 = %v, want ErrNACK", err)
	}
	r := make([]byte, 1)
	if err := bus.Tx(0x44, []byte{0x02}, r); err != nil || r[0] != 0xAA {
		t.Fatalf("transaction 3 = % x, %v; want aa, nil", r, err)
	}
	if err := bus.Close(); err != nil {
		t.Errorf("Close with every op played: %v", err)
	}
	// A mismatch is an error, not a panic.
	bus = drivertest.NewFaultyI2C(ops, drivertest.ErrNACK)
	if err := bus.Tx(0x45, []byte{0x01}, nil); err == nil {
		t.Error("Tx to the wrong address succeeded")
	}
}

// recorder is a testing.TB that records failures; Fatalf ends the calling
// goroutine as testing.T's does.
type recorder struct {
	testing.TB
	errors []string
	fatal  string
}

func (r *recorder) Helper() {}

func (r *recorder) Errorf(format string, a ...any) {
	r.errors = append(r.errors, fmt.Sprintf(format, a...))
}

func (r *recorder) Fatalf(format string, a ...any) {
	r.fatal = fmt.Sprintf(format, a...)
	runtime.Goexit()
}

func TestCheckErr(t *testing.T) {
	errBase := errors.New("base")
	wrapped := fmt.Errorf("op: at 0x44: %w", errBase)
	for _, tc := range []struct {
		name       string
		err        error
		wantErr    error
		wantMsg    []string
		wanted     bool
		wantErrors int
		wantFatal  bool
	}{
		{name: "no error wanted, none", wanted: false},
		{name: "empty message parts want no error", wantMsg: []string{"", ""}, wanted: false},
		{name: "no error wanted, one", err: wrapped, wantFatal: true},
		{name: "error wanted, none", wantErr: errBase, wantFatal: true},
		{name: "wraps and says", err: wrapped, wantErr: errBase, wantMsg: []string{"at 0x44", ""}, wanted: true},
		{name: "message only", err: wrapped, wantMsg: []string{"op:"}, wanted: true},
		{name: "does not wrap", err: errors.New("op: at 0x44"), wantErr: errBase, wanted: true, wantErrors: 1},
		{name: "does not say", err: wrapped, wantMsg: []string{"0x45", "CRC"}, wanted: true, wantErrors: 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := &recorder{TB: t}
			var wanted, returned bool
			done := make(chan struct{})
			go func() {
				defer close(done)
				wanted = drivertest.CheckErr(r, "Op", tc.err, tc.wantErr, tc.wantMsg...)
				returned = true
			}()
			<-done
			if got := r.fatal != ""; got != tc.wantFatal || returned == tc.wantFatal {
				t.Fatalf("fatal %q (returned %v), want fatal %v", r.fatal, returned, tc.wantFatal)
			}
			if returned && wanted != tc.wanted {
				t.Errorf("CheckErr = %v, want %v", wanted, tc.wanted)
			}
			if len(r.errors) != tc.wantErrors {
				t.Errorf("errors %q, want %d", r.errors, tc.wantErrors)
			}
			if slices.ContainsFunc(r.errors, func(s string) bool { return len(s) < 3 || s[:3] != "Op " }) {
				t.Errorf("errors %q do not name the operation", r.errors)
			}
		})
	}
}
