package queue

import "errors"

// Sentinel errors. Errors returned by the queue wrap them, so test with
// errors.Is.
var (
	// ErrClosed: the queue was closed; pending appends fail with it.
	ErrClosed = errors.New("queue: closed")
	// ErrFull: the disk quota is used up (Block policy, TryAppend only).
	ErrFull = errors.New("queue: full")
	// ErrTooLarge: one Append is bigger than the quota allows, so it could
	// never be stored, however much is acknowledged.
	ErrTooLarge = errors.New("queue: append too large for the quota")
	// ErrCorrupt: the database file (or one stored record) is damaged.
	ErrCorrupt = errors.New("queue: corrupt database")
	// ErrLocked: another process has the database file open.
	ErrLocked = errors.New("queue: database file is in use by another process")
)
