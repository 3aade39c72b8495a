package source

import "errors"

// Sentinel errors. Functions wrap them with %w and context; test with errors.Is.
var (
	// ErrSpec: an instrument spec (flag or JSON) is malformed.
	ErrSpec = errors.New("source: invalid instrument spec")
	// ErrFrame: a frame could not be parsed (malformed JSON, missing fields).
	ErrFrame = errors.New("source: malformed frame")
	// ErrSequence: a venue sequence number or update id broke its chain.
	ErrSequence = errors.New("source: venue sequence broken")
	// ErrChecksum: the venue's book checksum did not match the rebuilt book.
	ErrChecksum = errors.New("source: venue checksum mismatch")
	// ErrUnknownSymbol: a frame names a symbol with no instrument (not subscribed, no channel).
	ErrUnknownSymbol = errors.New("source: unknown symbol")
	// ErrValue: a price or size is out of range (non-positive price, negative size).
	ErrValue = errors.New("source: value out of range")
	// ErrFutureTime: the venue time is far ahead of the receive time.
	ErrFutureTime = errors.New("source: venue time in the future")
)

// Reject reasons counted by Stats, on top of normalize's (inexact, overflow, syntax, ...).
const (
	ReasonParse      = "parse"        // malformed frame
	ReasonPrice      = "price"        // non-positive price
	ReasonSize       = "size"         // negative (or, for a trade, non-positive) size
	ReasonGap        = "sequence_gap" // a venue sequence skipped ahead: updates were lost
	ReasonStale      = "sequence_old" // a venue sequence went backwards or repeated (duplicate)
	ReasonChecksum   = "checksum"     // a venue checksum did not match
	ReasonUnknown    = "unknown_symbol"
	ReasonFutureTime = "future_time"
	ReasonCrossed    = "crossed"  // flagged, not dropped
	ReasonUnsynced   = "unsynced" // a book update for a book waiting for its snapshot (dropped)
)

// ReasonUnknownChannel counts (as dropped, Stats.Dropped) a frame on a channel or of an event
// type the handler does not handle: a channel it never subscribes (Kraken "spread", Binance
// "kline", Coinbase "full" channel messages), or one a newer venue API added. The frame is
// well formed, so it is not a reject; the channel is named in the log (Core.UnknownChannel),
// never in a metric label. Control frames a handler knows (subscription acks, heartbeats,
// status, pongs) are not counted.
const ReasonUnknownChannel = "unknown_channel"
