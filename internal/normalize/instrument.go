package normalize

import (
	"fmt"
	"strings"

	tickwirev1 "github.com/tickwire/tickwire/pkg/proto/tickwire/v1"
)

// MaxSymbolLen is the longest symbol in bytes. It bounds NATS subject length.
const MaxSymbolLen = 64

// ParseInstrumentID splits a canonical id "venue:SYMBOL" and validates both parts: venue is
// lowercase [a-z0-9_-]+ (at most 32 bytes), symbol is non-empty, printable, at most
// MaxSymbolLen bytes. The split is at the first ':' (a symbol may contain ':').
func ParseInstrumentID(id string) (venue, symbol string, err error) {
	venue, symbol, ok := strings.Cut(id, ":")
	if !ok {
		return "", "", fmt.Errorf("%w: %q: missing ':'", ErrInstrumentID, id)
	}
	if err := ValidateVenue(venue); err != nil {
		return "", "", fmt.Errorf("%q: %w", id, err)
	}
	if err := ValidateSymbol(symbol); err != nil {
		return "", "", fmt.Errorf("%q: %w", id, err)
	}
	return venue, symbol, nil
}

// InstrumentID joins venue and symbol into the canonical id, validating both.
func InstrumentID(venue, symbol string) (string, error) {
	id := venue + ":" + symbol
	if _, _, err := ParseInstrumentID(id); err != nil {
		return "", err
	}
	return id, nil
}

// ValidateVenue checks a venue name: lowercase [a-z0-9_-]+, at most 32 bytes.
func ValidateVenue(venue string) error {
	if venue == "" || len(venue) > 32 {
		return fmt.Errorf("%w: venue %q: length must be 1..32", ErrInstrumentID, venue)
	}
	for i := 0; i < len(venue); i++ {
		c := venue[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return fmt.Errorf("%w: venue %q: byte %q not in [a-z0-9_-]", ErrInstrumentID, venue, c)
		}
	}
	return nil
}

// ValidateSymbol checks a symbol: non-empty, printable ASCII without spaces (the rule of
// pkg/wire.CheckInstrumentID, so that feed and clients accept every id ingest publishes), at most
// MaxSymbolLen bytes.
func ValidateSymbol(symbol string) error {
	if symbol == "" || len(symbol) > MaxSymbolLen {
		return fmt.Errorf("%w: symbol %q: length must be 1..%d bytes", ErrInstrumentID, symbol, MaxSymbolLen)
	}
	for i := 0; i < len(symbol); i++ {
		if c := symbol[i]; c <= ' ' || c >= 0x7f {
			return fmt.Errorf("%w: symbol %q: byte %q is not printable ASCII", ErrInstrumentID, symbol, c)
		}
	}
	return nil
}

// ValidateInfo checks reference data: a valid id matching venue and symbol, scales 0..18,
// tick and lot sizes >= 1.
func ValidateInfo(info *tickwirev1.InstrumentInfo) error {
	if info == nil {
		return fmt.Errorf("%w: nil", ErrBadInfo)
	}
	venue, symbol, err := ParseInstrumentID(info.GetId())
	if err != nil {
		return fmt.Errorf("%w: %w", ErrBadInfo, err)
	}
	switch {
	case venue != info.GetVenue() || symbol != info.GetSymbol():
		return fmt.Errorf("%w: %s: venue/symbol %q/%q do not match id", ErrBadInfo, info.GetId(), info.GetVenue(), info.GetSymbol())
	case info.GetPriceScale() < 0 || info.GetPriceScale() > MaxScale:
		return fmt.Errorf("%w: %s: price_scale %d", ErrBadInfo, info.GetId(), info.GetPriceScale())
	case info.GetSizeScale() < 0 || info.GetSizeScale() > MaxScale:
		return fmt.Errorf("%w: %s: size_scale %d", ErrBadInfo, info.GetId(), info.GetSizeScale())
	case info.GetTickSize() < 1:
		return fmt.Errorf("%w: %s: tick_size %d", ErrBadInfo, info.GetId(), info.GetTickSize())
	case info.GetLotSize() < 1:
		return fmt.Errorf("%w: %s: lot_size %d", ErrBadInfo, info.GetId(), info.GetLotSize())
	}
	return nil
}
