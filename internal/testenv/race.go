//go:build race

package testenv

// Race reports whether this test binary runs with the race detector on:
// Binary then builds the project's binaries with -race too.
const Race = true
