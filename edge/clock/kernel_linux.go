package clock

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// kernelState asks the kernel (adjtimex with no modes: read only) whether
// the clock is synchronised.
func kernelState() (KernelState, error) {
	var tx unix.Timex
	state, err := unix.Adjtimex(&tx)
	if err != nil {
		return KernelUnknown, fmt.Errorf("clock: adjtimex: %w", err)
	}
	if state == unix.TIME_ERROR || tx.Status&unix.STA_UNSYNC != 0 {
		return KernelUnsynced, nil
	}
	return KernelSynced, nil
}
