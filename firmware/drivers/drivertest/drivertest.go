// Package drivertest holds what the drivers' tests share: an I²C bus that
// plays back recorded traffic with injected faults, and the check of a
// table case's expected error.
package drivertest

import (
	"errors"
	"strings"
	"testing"

	"periph.io/x/conn/v3/i2c"
	"periph.io/x/conn/v3/i2c/i2ctest"
)

// FaultyI2C plays back Ops like i2ctest.Playback (without panicking on a
// mismatch) but fails the transactions whose 0-based numbers are in Fail
// with Err, as a NACK or a broken wire would. A failed transaction uses up
// no op.
type FaultyI2C struct {
	i2ctest.Playback
	Fail map[int]bool
	Err  error
	n    int
}

var _ i2c.Bus = (*FaultyI2C)(nil)

// NewFaultyI2C returns a bus that plays back ops and fails the
// transactions numbered in fail (0-based, counting failed ones) with err.
func NewFaultyI2C(ops []i2ctest.IO, err error, fail ...int) *FaultyI2C {
	b := &FaultyI2C{Playback: i2ctest.Playback{Ops: ops, DontPanic: true}, Fail: map[int]bool{}, Err: err}
	for _, n := range fail {
		b.Fail[n] = true
	}
	return b
}

// Tx fails the transaction if its number is in Fail, and plays it back
// otherwise.
func (b *FaultyI2C) Tx(addr uint16, w, r []byte) error {
	b.n++
	if b.Fail[b.n-1] {
		return b.Err
	}
	return b.Playback.Tx(addr, w, r)
}

// ErrNACK is the error a FaultyI2C's failed transactions usually return.
var ErrNACK = errors.New("i2c: no ACK")

// CheckErr checks the error of the operation op (such as "New") against a
// table case. A case that wants neither an error to wrap (wantErr) nor any
// non-empty message part must get no error; otherwise err must wrap wantErr
// when it is set and contain every non-empty message part. An error where
// none was wanted, or none where one was, stops the test. CheckErr reports
// whether the case wanted an error, so that the caller returns.
func CheckErr(t testing.TB, op string, err, wantErr error, wantMsg ...string) (wantedErr bool) {
	t.Helper()
	var msgs []string
	for _, m := range wantMsg {
		if m != "" {
			msgs = append(msgs, m)
		}
	}
	if wantErr == nil && len(msgs) == 0 {
		if err != nil {
			t.Fatalf("%s: %v", op, err)
		}
		return false
	}
	if err == nil {
		t.Fatalf("%s succeeded, want an error (wrapping %v, saying %q)", op, wantErr, msgs)
	}
	if wantErr != nil && !errors.Is(err, wantErr) {
		t.Errorf("%s error %q does not wrap %q", op, err, wantErr)
	}
	for _, m := range msgs {
		if !strings.Contains(err.Error(), m) {
			t.Errorf("%s error %q does not say %q", op, err, m)
		}
	}
	return true
}
