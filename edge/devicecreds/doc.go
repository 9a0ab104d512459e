// Package devicecreds keeps the embedded broker's device passwords: a
// file of device ids with argon2id hashes (never the passwords), and a
// Verifier that checks a CONNECT's password against it without letting
// failed attempts burn the gateway's CPU.
//
// # The file
//
// FileName in the agent's data folder, JSON, mode 0600:
//
//	{"format": 1, "devices": [{"id": "dev-1", "hash": "$argon2id$v=19$m=19456,t=2,p=1$SALT$KEY",
//	  "created": "2026-12-07T23:59:00Z"}]}
//
// Add, Remove and List change and read it (`tributary-agent device
// add|remove|list`); every change is written to a temporary file, synced
// and renamed over the old one under an exclusive lock, so a running agent
// never reads half a file and two commands never lose each other's
// change. A hash is the PHC string of argon2id (RFC 9106) with a 16-byte
// random salt and a 32-byte key; DefaultParams are OWASP's recommended
// minimum for argon2id: 19 MiB of memory, 2 passes, 1 lane (about 80 ms
// on one core of the project's 2-core test machine, against about 2 µs
// for a cached check: go test -bench BenchmarkCheck ./edge/devicecreds).
// NewPassword makes 192 random bits, printed once by `device add`.
//
// # Verifying
//
// A Verifier reads the file at start and again within a second after it
// changes, so devices added or removed while the agent runs take effect
// at their next CONNECT. Check costs:
//
//   - a device whose password was verified before (same hash): one
//     HMAC-SHA256 with a key of the process's own, no key derivation. The
//     cache holds one entry per device of the file, so it is bounded by
//     it. A wrong password for such a device is known wrong at that
//     cost too.
//   - otherwise one argon2id derivation; at most MaxHashing run at once
//     (default half the CPUs, at least one), the others wait, so a flood
//     of CONNECTs leaves the rest of the gateway its CPUs and bounds the
//     memory (19 MiB each).
//
// Failed attempts (unknown device, wrong password) are counted per source
// address (an IPv6 address by its /64) in a token bucket of FailureBurst
// (default 10) refilled one per FailureEvery (default 10s): once it is
// empty, that source's attempts that would need a derivation are refused
// at once (ErrThrottled, counted as "throttled") until it refills, while
// a device with a cached verification still connects. At most MaxSources
// (4096) buckets are kept; past that, full buckets are forgotten first.
//
// Metrics (WithRegisterer): tributary_intake_password_checks_total{result}
// with result accepted, wrong_password, unknown_device or throttled;
// tributary_intake_password_hashes_total (derivations run);
// tributary_intake_password_devices (devices in the file).
package devicecreds
