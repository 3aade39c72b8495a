package normalize

import (
	"fmt"
	"strings"

	tickwirev1 "github.com/tickwire/tickwire/pkg/proto/tickwire/v1"
	"github.com/tickwire/tickwire/pkg/wire"
)

// MaxSymbolLen is the longest symbol in bytes (pkg/wire's rule, which every part applies).
const MaxSymbolLen = wire.MaxSymbolLen

// ParseInstrumentID splits a canonical id "venue:SYMBOL" at the first ':' (a symbol may contain
// more) and validates it by pkg/wire's rule (wire.CheckInstrumentID), so that feed and clients
// accept every id ingest publishes.
func ParseInstrumentID(id string) (venue, symbol string, err error) {
	venue, symbol, ok := strings.Cut(id, ":")
	if !ok {
		return "", "", fmt.Errorf("%w: %q: missing ':'", ErrInstrumentID, id)
	}
	if err := wire.CheckInstrumentID(id); err != nil {
		return "", "", fmt.Errorf("%w: %w", ErrInstrumentID, err)
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

// ValidateVenue checks a venue name (wire.CheckVenue).
func ValidateVenue(venue string) error {
	if err := wire.CheckVenue(venue); err != nil {
		return fmt.Errorf("%w: venue %q: %w", ErrInstrumentID, venue, err)
	}
	return nil
}

// ValidateSymbol checks a symbol (wire.CheckSymbol).
func ValidateSymbol(symbol string) error {
	if err := wire.CheckSymbol(symbol); err != nil {
		return fmt.Errorf("%w: symbol %q: %w", ErrInstrumentID, symbol, err)
	}
	return nil
}

// ValidateInfo checks reference data: a valid id matching venue and symbol, scales 0..18,
// tick and lot sizes >= 0 (0: not known, no grid is checked; docs/PROTOCOL.md §5.2), and
// members only on a consolidated instrument, which has 2..MaxMembers distinct ones.
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
	case info.GetTickSize() < 0:
		return fmt.Errorf("%w: %s: tick_size %d", ErrBadInfo, info.GetId(), info.GetTickSize())
	case info.GetLotSize() < 0:
		return fmt.Errorf("%w: %s: lot_size %d", ErrBadInfo, info.GetId(), info.GetLotSize())
	}
	return validateMembers(info, venue)
}

// ConsolidatedVenue is the venue of consolidated instruments ("consolidated:BTC-USD"): one
// asset's books from several venues merged (docs/PROTOCOL.md section 5.4).
const ConsolidatedVenue = "consolidated"

// MaxMembers is the most venues a consolidated instrument merges (a level's venues is a
// uint32 bit set).
const MaxMembers = 32

// validateMembers: a consolidated instrument has 2..MaxMembers distinct members, valid
// instrument ids that are not consolidated themselves; no other instrument has members.
func validateMembers(info *tickwirev1.InstrumentInfo, venue string) error {
	members := info.GetMembers()
	if venue != ConsolidatedVenue {
		if len(members) != 0 {
			return fmt.Errorf("%w: %s: members on an instrument of venue %q (only %q has them)", ErrBadInfo, info.GetId(), venue, ConsolidatedVenue)
		}
		return nil
	}
	if len(members) < 2 || len(members) > MaxMembers {
		return fmt.Errorf("%w: %s: %d members, want 2..%d", ErrBadInfo, info.GetId(), len(members), MaxMembers)
	}
	for i, m := range members {
		v, _, err := ParseInstrumentID(m)
		if err != nil {
			return fmt.Errorf("%w: %s: member %d: %w", ErrBadInfo, info.GetId(), i, err)
		}
		if v == ConsolidatedVenue {
			return fmt.Errorf("%w: %s: member %q is consolidated itself", ErrBadInfo, info.GetId(), m)
		}
		for _, o := range members[:i] {
			if o == m {
				return fmt.Errorf("%w: %s: member %q twice", ErrBadInfo, info.GetId(), m)
			}
		}
	}
	return nil
}
