package bus

import "errors"

// Sentinel errors. Functions wrap them with %w and context; test with errors.Is.
var (
	// ErrInstrument: an instrument id that is not a valid "venue:SYMBOL".
	ErrInstrument = errors.New("bus: invalid instrument id")
	// ErrSubject: a subject that is not an event subject made by EventSubject.
	ErrSubject = errors.New("bus: invalid event subject")
	// ErrClosed: the Bus was closed.
	ErrClosed = errors.New("bus: closed")
	// ErrPublish: one or more asynchronous publishes failed (reported by Flush).
	ErrPublish = errors.New("bus: publish failed")
	// ErrEmbedded: the embedded NATS server could not start.
	ErrEmbedded = errors.New("bus: embedded server")
	// ErrNoStream: no stream yet; call EnsureStream first.
	ErrNoStream = errors.New("bus: stream not found")
	// ErrDataDir: the embedded server's data directory cannot be used (not a directory, not
	// writable, full); the error wraps the file system's.
	ErrDataDir = errors.New("bus: unusable data dir")
	// ErrTooLarge: an event whose encoding exceeds the server's max_payload; it was not sent.
	ErrTooLarge = errors.New("bus: event too large for the server")
	// ErrAuth: invalid NATS credentials or users (a bad password file, an unknown role...).
	ErrAuth = errors.New("bus: nats auth")
	// ErrRevocation: a revocation that cannot be stored or read (an unknown kind, an empty or
	// too long id or reason, a malformed entry in the bucket).
	ErrRevocation = errors.New("bus: invalid revocation")
)
