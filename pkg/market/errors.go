package market

import "errors"

// Errors from State.Apply.
var (
	// ErrStaleEvent is an event at or before the state's position (a redelivery); it changes nothing.
	ErrStaleEvent = errors.New("market: stale event")
	// ErrBadEvent is an event with no body, a foreign instrument or impossible values.
	ErrBadEvent = errors.New("market: bad event")
)

// Errors from Replica.ApplyDelta and ApplySnapshot. Any of them except ErrStale means the
// client's copy of that stream can no longer be trusted: ask for a resync.
var (
	// ErrStale is a delta the replica already holds (seq at or before its position); ignore it.
	ErrStale = errors.New("market: stale delta")
	// ErrGap is a delta that does not follow on from the replica's position: one was missed.
	ErrGap = errors.New("market: gap in sequence")
	// ErrEpoch is a delta from another epoch than the replica's snapshot.
	ErrEpoch = errors.New("market: epoch changed")
	// ErrChecksum is a book whose checksum differs from the server's after applying the update.
	ErrChecksum = errors.New("market: checksum mismatch")
	// ErrNotSynced is a delta for a stream that has had no snapshot yet (or lost it).
	ErrNotSynced = errors.New("market: stream not synced")
	// ErrBadMessage is a snapshot or delta with no body, or a body for another channel.
	ErrBadMessage = errors.New("market: bad message")
)
