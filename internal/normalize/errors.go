package normalize

import "errors"

// Sentinel errors. Functions wrap them with %w and context; test with errors.Is.
var (
	// ErrInexact: a decimal value has more decimal places than the scale allows.
	// Values are never rounded (DESIGN decision 2).
	ErrInexact = errors.New("normalize: value not exact at scale")
	// ErrOverflow: a value does not fit an int64 mantissa.
	ErrOverflow = errors.New("normalize: value overflows int64 mantissa")
	// ErrSyntax: a decimal string could not be parsed.
	ErrSyntax = errors.New("normalize: invalid decimal")
	// ErrScale: a scale outside 0..18.
	ErrScale = errors.New("normalize: scale out of range")

	// ErrInstrumentID: an instrument id is not a valid "venue:SYMBOL".
	ErrInstrumentID = errors.New("normalize: invalid instrument id")
	// ErrUnknownInstrument: an event for an instrument with no InstrumentInfo yet.
	ErrUnknownInstrument = errors.New("normalize: unknown instrument")
	// ErrBadInfo: InstrumentInfo with invalid reference data.
	ErrBadInfo = errors.New("normalize: invalid instrument info")
	// ErrNoBody: an event with no body.
	ErrNoBody = errors.New("normalize: event has no body")
	// ErrPrice: price <= 0.
	ErrPrice = errors.New("normalize: price not positive")
	// ErrSize: size < 0, or <= 0 for a trade or a snapshot level.
	ErrSize = errors.New("normalize: invalid size")
	// ErrTick: price not a multiple of tick_size.
	ErrTick = errors.New("normalize: price off tick grid")
	// ErrLot: size not a multiple of lot_size.
	ErrLot = errors.New("normalize: size off lot grid")
	// ErrDuplicateLevel: the same price twice on one side of a book update.
	ErrDuplicateLevel = errors.New("normalize: duplicate price level")
	// ErrFutureTime: venue time more than MaxFutureSkew ahead of the ingest clock.
	ErrFutureTime = errors.New("normalize: venue time in the future")
	// ErrVenues: a book level's venues do not fit its instrument (bits on a book that is not
	// consolidated, a bit beyond the members, none on a consolidated level, or some on a removal).
	ErrVenues = errors.New("normalize: invalid level venues")
	// ErrEpoch: a new epoch could not be chosen above the previous one.
	ErrEpoch = errors.New("normalize: epoch not increasing")
)
