package source

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"

	"google.golang.org/protobuf/proto"

	"github.com/tickwire/tickwire/internal/normalize"
	tickwirev1 "github.com/tickwire/tickwire/pkg/proto/tickwire/v1"
)

// Spec is configured reference data of one instrument, for venues that do not publish it on
// their stream (or to pin it): scales, and tick and lot size as decimals ("0.01").
type Spec struct {
	PriceScale int32 `json:"price_scale"`
	SizeScale  int32 `json:"size_scale"`
	// Tick and Lot: the price and size grid. Empty: not known, published as tick_size /
	// lot_size 0 (docs/PROTOCOL.md §5.2), and no grid is checked; never invented.
	Tick string `json:"tick,omitempty"`
	Lot  string `json:"lot,omitempty"`
	// Status is the venue's trading status where it publishes one (not configurable);
	// UNSPECIFIED: TRADING.
	Status tickwirev1.InstrumentStatus `json:"-"`
}

// Specs maps instrument ids ("kraken:XBT/USD") to their Spec.
type Specs map[string]Spec

// ParseSpec parses "price_scale,size_scale[,tick[,lot]]", e.g. "1,8,0.1,0.00000001".
func ParseSpec(s string) (Spec, error) {
	parts := strings.Split(s, ",")
	if len(parts) < 2 || len(parts) > 4 {
		return Spec{}, fmt.Errorf("%w: %q: want price_scale,size_scale[,tick[,lot]]", ErrSpec, s)
	}
	var sp Spec
	for i, dst := range []*int32{&sp.PriceScale, &sp.SizeScale} {
		n, err := strconv.ParseInt(strings.TrimSpace(parts[i]), 10, 32)
		if err != nil {
			return Spec{}, fmt.Errorf("%w: %q: %v", ErrSpec, s, err)
		}
		*dst = int32(n)
	}
	if len(parts) > 2 {
		sp.Tick = strings.TrimSpace(parts[2])
	}
	if len(parts) > 3 {
		sp.Lot = strings.TrimSpace(parts[3])
	}
	if _, err := sp.info("x:y"); err != nil {
		return Spec{}, err
	}
	return sp, nil
}

// ParseSpecFlags parses "id=price_scale,size_scale[,tick[,lot]]" entries into specs.
func (s Specs) ParseSpecFlags(entries []string) error {
	for _, e := range entries {
		id, spec, ok := strings.Cut(e, "=")
		if !ok {
			return fmt.Errorf("%w: %q: want venue:SYMBOL=price_scale,size_scale[,tick[,lot]]", ErrSpec, e)
		}
		if _, _, err := normalize.ParseInstrumentID(id); err != nil {
			return fmt.Errorf("%w: %w", ErrSpec, err)
		}
		sp, err := ParseSpec(spec)
		if err != nil {
			return err
		}
		s[id] = sp
	}
	return nil
}

// LoadSpecs reads a JSON object {"kraken:XBT/USD": {"price_scale": 1, "size_scale": 8,
// "tick": "0.1", "lot": "0.00000001"}, ...}.
func LoadSpecs(path string) (Specs, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrSpec, err)
	}
	specs := Specs{}
	if err := json.Unmarshal(b, &specs); err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrSpec, path, err)
	}
	for id, sp := range specs {
		if _, err := sp.info(id); err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
	}
	return specs, nil
}

// info builds the InstrumentInfo of id from the spec.
func (sp Spec) info(id string) (*tickwirev1.InstrumentInfo, error) {
	venue, symbol, _ := strings.Cut(id, ":")
	info := &tickwirev1.InstrumentInfo{Id: id, Venue: venue, Symbol: symbol,
		PriceScale: sp.PriceScale, SizeScale: sp.SizeScale, // tick and lot 0: not known
		Status: tickwirev1.InstrumentStatus_INSTRUMENT_STATUS_TRADING}
	if sp.Status != tickwirev1.InstrumentStatus_INSTRUMENT_STATUS_UNSPECIFIED {
		info.Status = sp.Status
	}
	if sp.PriceScale < 0 || sp.PriceScale > normalize.MaxScale || sp.SizeScale < 0 || sp.SizeScale > normalize.MaxScale {
		return nil, fmt.Errorf("%w: %s: scales %d,%d not in 0..%d", ErrSpec, id, sp.PriceScale, sp.SizeScale, normalize.MaxScale)
	}
	var err error
	if sp.Tick != "" {
		if info.TickSize, err = normalize.ParseMantissa(sp.Tick, sp.PriceScale); err != nil || info.TickSize < 1 {
			return nil, fmt.Errorf("%w: %s: tick %q at price_scale %d: %v", ErrSpec, id, sp.Tick, sp.PriceScale, err)
		}
	}
	if sp.Lot != "" {
		if info.LotSize, err = normalize.ParseMantissa(sp.Lot, sp.SizeScale); err != nil || info.LotSize < 1 {
			return nil, fmt.Errorf("%w: %s: lot %q at size_scale %d: %v", ErrSpec, id, sp.Lot, sp.SizeScale, err)
		}
	}
	return info, nil
}

// Origin says where an instrument's reference data came from.
type Origin string

const (
	OriginConfig   Origin = "config"   // --instrument-spec / --instrument-specs
	OriginVenue    Origin = "venue"    // published by the venue (Kraken v2 instrument channel)
	OriginInferred Origin = "inferred" // from the decimals of the first message that named it
)

// Instrument is one instrument of a venue with its reference data.
type Instrument struct {
	ID, Symbol            string
	PriceScale, SizeScale int32
	Info                  *tickwirev1.InstrumentInfo
	Origin                Origin
	announced             bool
}

// Instruments maps a venue's symbols to instruments. Not safe for concurrent use.
type Instruments struct {
	venue    string
	specs    Specs
	bySymbol map[string]*Instrument
	logger   *slog.Logger
}

// NewInstruments returns an empty registry of venue's instruments.
func NewInstruments(venue string, specs Specs, logger *slog.Logger) *Instruments {
	return &Instruments{venue: venue, specs: specs, bySymbol: make(map[string]*Instrument), logger: logger}
}

// Lookup returns the instrument of a venue symbol, or nil if it was not defined yet.
func (r *Instruments) Lookup(symbol string) *Instrument { return r.bySymbol[symbol] }

// Configured reports whether symbol has a configured spec.
func (r *Instruments) Configured(symbol string) bool {
	_, ok := r.specs[r.venue+":"+symbol]
	return ok
}

// ByID returns the instrument with id, or nil.
func (r *Instruments) ByID(id string) *Instrument {
	_, symbol, ok := strings.Cut(id, ":")
	if !ok {
		return nil
	}
	in := r.bySymbol[symbol]
	if in == nil || in.ID != id {
		return nil
	}
	return in
}

// All returns every defined instrument.
func (r *Instruments) All() []*Instrument {
	out := make([]*Instrument, 0, len(r.bySymbol))
	for _, in := range r.bySymbol {
		out = append(out, in)
	}
	return out
}

// Define returns the instrument of symbol, defining it on first use: from the configured spec
// if there is one, else from venue-published precision (venue != nil), else inferred from
// the decimals the first message wrote (priceDec, sizeDec), which is logged so the operator
// can pin it with a spec.
func (r *Instruments) Define(symbol string, venue *Spec, priceDec, sizeDec int32) (*Instrument, error) {
	if in := r.bySymbol[symbol]; in != nil {
		return in, nil
	}
	id, err := normalize.InstrumentID(r.venue, symbol)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrUnknownSymbol, err)
	}
	sp, origin := r.specs[id], OriginConfig
	if _, ok := r.specs[id]; !ok {
		if venue != nil {
			sp, origin = *venue, OriginVenue
		} else {
			sp, origin = Spec{PriceScale: min(priceDec, normalize.MaxScale), SizeScale: min(sizeDec, normalize.MaxScale)}, OriginInferred
		}
	}
	info, err := sp.info(id)
	if err != nil {
		return nil, err
	}
	info.Base, info.Quote = splitPair(r.venue, symbol)
	in := &Instrument{ID: id, Symbol: symbol, PriceScale: sp.PriceScale, SizeScale: sp.SizeScale, Info: info, Origin: origin}
	r.bySymbol[symbol] = in
	lvl := slog.LevelInfo
	if origin == OriginInferred {
		lvl = slog.LevelWarn
	}
	r.logger.Log(context.Background(), lvl, "instrument defined", "instrument", id, "origin", string(origin),
		"price_scale", sp.PriceScale, "size_scale", sp.SizeScale, "tick_size", info.TickSize, "lot_size", info.LotSize,
		"note", originNote(origin))
	return in, nil
}

// SetGrid sets in's tick and lot (decimals, "" for not known) and status (UNSPECIFIED: not
// known, unchanged) from venue reference data that arrived after in was defined (a refresh, a
// reconnect). A configured instrument keeps its spec's tick and lot (its status follows the
// venue); scales never change (they give every mantissa its meaning). It reports whether the
// InstrumentInfo changed; in.Info is then a new message (the old one may still be in flight),
// to be announced again.
func (r *Instruments) SetGrid(in *Instrument, tick, lot string, status tickwirev1.InstrumentStatus) (bool, error) {
	tickSize, lotSize := in.Info.GetTickSize(), in.Info.GetLotSize()
	if in.Origin != OriginConfig {
		sp := Spec{PriceScale: in.PriceScale, SizeScale: in.SizeScale, Tick: tick, Lot: lot}
		next, err := sp.info(in.ID)
		if err != nil {
			return false, err
		}
		tickSize, lotSize = next.TickSize, next.LotSize
	}
	if status == tickwirev1.InstrumentStatus_INSTRUMENT_STATUS_UNSPECIFIED {
		status = in.Info.GetStatus()
	}
	if tickSize == in.Info.GetTickSize() && lotSize == in.Info.GetLotSize() && status == in.Info.GetStatus() {
		return false, nil
	}
	info := proto.CloneOf(in.Info)
	info.TickSize, info.LotSize, info.Status = tickSize, lotSize, status
	in.Info = info
	if in.Origin != OriginConfig {
		in.Origin = OriginVenue
	}
	r.logger.Info("instrument reference data changed", "instrument", in.ID, "tick_size", info.TickSize, "lot_size", info.LotSize,
		"status", info.Status.String())
	return true, nil
}

func originNote(o Origin) string {
	if o == OriginInferred {
		return "scales inferred from the decimals of the venue's first message; tick and lot not known (0); pin them with --instrument-spec"
	}
	return ""
}

// quoteAssets are the quote currencies recognised at the end of a symbol without separator
// (Binance "BTCUSDT"), longest first.
var quoteAssets = []string{"FDUSD", "USDT", "USDC", "BUSD", "TUSD", "BTC", "ETH", "BNB", "EUR", "GBP", "TRY", "USD", "JPY", "DAI"}

// splitPair splits a venue symbol into base and quote where the format says how.
func splitPair(venue, symbol string) (base, quote string) {
	for _, sep := range []string{"/", "-"} {
		if b, q, ok := strings.Cut(symbol, sep); ok {
			return b, q
		}
	}
	for _, q := range quoteAssets {
		if b, ok := strings.CutSuffix(symbol, q); ok && b != "" {
			return b, q
		}
	}
	return "", ""
}

// MaxDecimals returns the largest number of decimals among values (0 for none or invalid).
func MaxDecimals(values ...string) int32 {
	var m int32
	for _, v := range values {
		if d, err := normalize.Decimals(v); err == nil {
			m = max(m, d)
		}
	}
	return m
}

// LevelDecimals returns the largest decimals of prices and of sizes among levels.
func LevelDecimals(levels ...[]RawLevel) (price, size int32) {
	for _, side := range levels {
		for _, l := range side {
			price = max(price, MaxDecimals(l.Price))
			size = max(size, MaxDecimals(l.Size))
		}
	}
	return price, size
}
