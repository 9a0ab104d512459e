// Package protocol is Tributary's wire contract, shared by every tier: the
// Reading model, SenML (RFC 8428) in JSON and CBOR, the MQTT topics between
// devices and gateways, the uplink Batch between gateways and the cloud,
// and the stream record consumers read. README.md in this folder is the
// byte-level specification; the limits are named constants in limits.go.
//
// Decoders take outside input: they never panic, never allocate more than
// the input justifies, and reject bad input with a typed error
// (*SenMLError, *BatchError) wrapping a sentinel (ErrBadName, ErrVersion,
// ...) that says what is wrong and where.
package protocol
