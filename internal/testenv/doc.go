// Package testenv holds the harnesses the tests of every tier share: free
// loopback ports, outside programs a test needs (mosquitto, kinesalite,
// qemu, systemd-analyze), child processes that a test kills with SIGKILL,
// re-executions of the test binary as a helper child (optionally with a
// file size limit, to make writes fail as on a full disk), the project's
// binaries built once per test binary (with -race when the test binary has
// the race detector on), and polling a condition with a deadline.
//
// Outside programs follow one rule: a missing one skips the test, unless
// the environment sets TRIBUTARY_INTEROP=1 (as `make check` does), in which
// case the test fails: CI must never pass by skipping its interop tests.
//
// Only tests import this package. The headless Chromium harness lives in
// the subpackage chromium, so that other test binaries do not link the
// browser driver.
package testenv
