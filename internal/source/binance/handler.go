package binance

import (
	"fmt"
	"log/slog"
	"strings"

	"github.com/tickwire/tickwire/internal/normalize"
	"github.com/tickwire/tickwire/internal/source"
	"github.com/tickwire/tickwire/pkg/book"
	tickwirev1 "github.com/tickwire/tickwire/pkg/proto/tickwire/v1"
)

// Market selects spot or USD-M futures.
type Market string

const (
	Spot    Market = "spot"
	Futures Market = "futures"
)

// Venue returns the venue of instrument ids: "binance" (spot) or "binance-futures".
func (m Market) Venue() string {
	if m == Futures {
		return "binance-futures"
	}
	return "binance"
}

// MaxBuffer bounds the depth events buffered per symbol while its snapshot is on the way. At
// 100 ms per event that is 100 s: a snapshot later than that is useless anyway, and the
// oldest events go first (counted as dropped "buffer_full"; the procedure then restarts).
const MaxBuffer = 1000

// Config configures a Handler.
type Config struct {
	Market Market
	// Name names the source in logs and metrics (default: the venue).
	Name  string
	Specs source.Specs
	// Live mode: symbols ("BTCUSDT"), channels (default depth, bookTicker, trade; also
	// aggTrade), the stream base URL and the REST base URL (defaults per market).
	Symbols  []string
	Channels []string
	URL      string
	RESTURL  string
}

// Handler turns Binance frames into normalized events and keeps every symbol's book in step
// with the update-id chain.
type Handler struct {
	*source.Core
	cfg     Config
	market  Market
	books   map[string]*symBook // by symbol
	resync  []string
	lastTID map[string]int64      // by "kind symbol"
	lastBT  map[string]int64      // bookTicker update id by symbol
	ref     map[string]SymbolInfo // exchangeInfo, by symbol
}

type symBook struct {
	source.Book
	in *source.Instrument
	// lastID: u of the last applied event (or the snapshot's lastUpdateId); first: no event
	// applied since the snapshot yet (the next one must straddle lastID).
	lastID    int64
	first     bool
	buffer    []buffered
	requested bool // a snapshot was asked for and not received yet
}

type buffered struct {
	f source.Frame
	d *Depth
}

// New returns a Handler.
func New(cfg Config, logger *slog.Logger) (*Handler, error) {
	if cfg.Market != Spot && cfg.Market != Futures {
		return nil, fmt.Errorf("binance: market %q: want spot or futures", cfg.Market)
	}
	if cfg.Name == "" {
		cfg.Name = cfg.Market.Venue()
	}
	if len(cfg.Channels) == 0 {
		cfg.Channels = []string{"depth", "bookTicker", "trade"}
	}
	for _, c := range cfg.Channels {
		if c != "depth" && c != "bookTicker" && c != "trade" && c != "aggTrade" {
			return nil, fmt.Errorf("binance: channel %q: want depth, bookTicker, trade or aggTrade", c)
		}
	}
	if cfg.URL == "" {
		cfg.URL = map[Market]string{Spot: DefaultSpotURL, Futures: DefaultFuturesURL}[cfg.Market]
	}
	if cfg.RESTURL == "" {
		cfg.RESTURL = map[Market]string{Spot: DefaultSpotREST, Futures: DefaultFuturesREST}[cfg.Market]
	}
	return &Handler{Core: source.NewCore(cfg.Market.Venue(), cfg.Name, cfg.Specs, logger), cfg: cfg, market: cfg.Market,
		books: map[string]*symBook{}, lastTID: map[string]int64{}, lastBT: map[string]int64{}, ref: map[string]SymbolInfo{}}, nil
}

// Market returns spot or futures.
func (h *Handler) Market() Market { return h.market }

// Handle implements source.Handler.
func (h *Handler) Handle(f *source.Frame, emit source.Emit) error {
	h.Stats().Frame()
	m, err := Parse(f.Data, f.URL)
	if err != nil {
		h.Reject(f, "", source.ReasonParse, err)
		return nil
	}
	switch m.Kind {
	case KindDepth:
		return h.depth(f, m.Depth, emit)
	case KindSnapshot:
		return h.snapshot(f, m.Snap, emit)
	case KindBookTicker:
		return h.bookTicker(f, m.Ticker, emit)
	case KindTrade, KindAggTrade:
		return h.trade(f, m.Kind, m.Trade, emit)
	case KindExchangeInfo:
		return h.exchangeInfo(f, m.Symbols, emit)
	case KindError:
		h.Logger().Warn("binance error message", "err", m.Err, "conn", f.Conn, "frame", f.N)
	case KindUnknown:
		h.UnknownChannel(f, m.Channel)
	}
	return nil
}

func (h *Handler) instrument(f *source.Frame, symbol string, levels ...[]source.RawLevel) *source.Instrument {
	pd, sd := source.LevelDecimals(levels...)
	in, err := h.Instruments().Define(symbol, h.venueSpec(symbol), pd, sd)
	if err != nil {
		h.Reject(f, "", source.ReasonUnknown, err)
		return nil
	}
	return in
}

// venueSpec returns the reference data of symbol from exchangeInfo (nil if none): scales from
// the decimals Binance writes the tick and step with (spot writes every price with 8; futures'
// pricePrecision/quantityPrecision where larger), tick from PRICE_FILTER, lot from LOT_SIZE.
func (h *Handler) venueSpec(symbol string) *source.Spec {
	si, ok := h.ref[symbol]
	if !ok || si.TickSize == "" || si.StepSize == "" {
		return nil
	}
	pd, err1 := normalize.Decimals(si.TickSize)
	sd, err2 := normalize.Decimals(si.StepSize)
	if err1 != nil || err2 != nil {
		return nil
	}
	return &source.Spec{PriceScale: min(max(pd, si.PricePrecision), normalize.MaxScale),
		SizeScale: min(max(sd, si.QuantityPrecision), normalize.MaxScale), Tick: si.TickSize, Lot: si.StepSize,
		Status: si.InstrumentStatus()}
}

// exchangeInfo keeps the reference data of the symbols it lists (all of them: a symbol first
// seen later finds it), and updates the grid of instruments already defined, announcing the
// changed InstrumentInfo.
func (h *Handler) exchangeInfo(f *source.Frame, syms []SymbolInfo, emit source.Emit) error {
	for _, si := range syms {
		h.ref[si.Symbol] = si
		in := h.Instruments().Lookup(si.Symbol)
		if in == nil || h.venueSpec(si.Symbol) == nil {
			continue
		}
		changed, err := h.Instruments().SetGrid(in, si.TickSize, si.StepSize, si.InstrumentStatus())
		if err != nil {
			h.Reject(f, in.ID, source.ReasonParse, err)
			continue
		}
		if changed && in.Announced() {
			if err := h.Announce(in, f, true, emit); err != nil {
				return err
			}
		}
	}
	return nil
}

func (h *Handler) bookOf(f *source.Frame, symbol string, levels ...[]source.RawLevel) *symBook {
	sb := h.books[symbol]
	if sb == nil {
		in := h.instrument(f, symbol, levels...)
		if in == nil {
			return nil
		}
		sb = &symBook{in: in}
		h.books[symbol] = sb
	}
	return sb
}

// requestSnapshot asks the transport for a REST snapshot of sb's symbol (once until it comes).
func (h *Handler) requestSnapshot(sb *symBook) {
	if !sb.requested {
		sb.requested = true
		h.resync = append(h.resync, sb.in.Symbol)
	}
}

func ms(t int64) int64 { return t * 1_000_000 }

func (h *Handler) depth(f *source.Frame, d *Depth, emit source.Emit) error {
	sb := h.bookOf(f, d.Symbol, d.Bids, d.Asks)
	if sb == nil {
		return nil
	}
	if !sb.Synced {
		if len(sb.buffer) >= MaxBuffer {
			sb.buffer = append(sb.buffer[:0], sb.buffer[1:]...)
			h.Drop("buffer_full")
		}
		fc := *f
		sb.buffer = append(sb.buffer, buffered{f: fc, d: d})
		h.requestSnapshot(sb)
		return nil
	}
	return h.apply(f, sb, d, emit)
}

// apply applies one depth event to a synced book, checking the update-id chain.
func (h *Handler) apply(f *source.Frame, sb *symBook, d *Depth, emit source.Emit) error {
	in := sb.in
	if sb.first && (d.Final < sb.lastID || (h.market == Spot && d.Final == sb.lastID)) {
		// Still covered by the snapshot (it arrived after the snapshot was taken): the
		// procedure drops it.
		h.Drop("older_than_snapshot")
		return nil
	}
	if d.Final <= sb.lastID && !(h.market == Futures && sb.first && d.Final == sb.lastID) {
		h.Reject(f, in.ID, source.ReasonStale, fmt.Errorf("%w: depth U=%d u=%d at or before %d", source.ErrSequence, d.First, d.Final, sb.lastID))
		return nil
	}
	var ok bool
	switch {
	case sb.first && h.market == Spot:
		ok = d.First <= sb.lastID+1 && sb.lastID+1 <= d.Final
	case sb.first: // futures: U <= lastUpdateId <= u
		ok = d.First <= sb.lastID && sb.lastID <= d.Final
	case h.market == Futures:
		ok = d.PrevFinal == sb.lastID
	default:
		ok = d.First == sb.lastID+1
	}
	h.Check("update_id", ok)
	if !ok {
		h.Reject(f, in.ID, source.ReasonGap, fmt.Errorf("%w: depth U=%d u=%d pu=%d after %d (first after snapshot: %t)",
			source.ErrSequence, d.First, d.Final, d.PrevFinal, sb.lastID, sb.first))
		sb.Desync()
		sb.buffer = append(sb.buffer[:0], buffered{f: *f, d: d})
		h.requestSnapshot(sb)
		return nil
	}
	var upd source.Update
	for _, x := range []struct {
		side book.Side
		rows []source.RawLevel
	}{{book.Bid, d.Bids}, {book.Ask, d.Asks}} {
		for _, r := range x.rows {
			p, s, ok := h.Level(f, in, r.Price, r.Size)
			if !ok {
				sb.Desync()
				sb.buffer = sb.buffer[:0]
				h.requestSnapshot(sb)
				return nil
			}
			upd.Set(x.side, p, s)
		}
	}
	for _, l := range upd.Bids {
		sb.Set(book.Bid, l.Price, l.Size)
	}
	for _, l := range upd.Asks {
		sb.Set(book.Ask, l.Price, l.Size)
	}
	sb.lastID, sb.first = d.Final, false
	if sb.Crossed() {
		h.Reject(f, in.ID, source.ReasonCrossed, fmt.Errorf("book crossed after U=%d u=%d", d.First, d.Final))
	}
	venueNs := ms(d.EventTime)
	if d.TransactTime > 0 {
		venueNs = ms(d.TransactTime)
	}
	if !h.CheckTime(f, in, venueNs) {
		venueNs = 0
	}
	return h.Emit(emit, source.BookEvent(in, f, venueNs, false, upd.Bids, upd.Asks))
}

func (h *Handler) snapshot(f *source.Frame, s *Snapshot, emit source.Emit) error {
	symbol := strings.ToUpper(s.Symbol)
	if symbol == "" {
		// An inline snapshot without its request (hftbacktest writes it bare): it belongs to
		// the one symbol waiting for a snapshot.
		var waiting []string
		for sym, sb := range h.books {
			if sb.requested {
				waiting = append(waiting, sym)
			}
		}
		if len(waiting) != 1 {
			h.Reject(f, "", source.ReasonUnknown, fmt.Errorf("%w: snapshot without symbol, %d symbols waiting", source.ErrUnknownSymbol, len(waiting)))
			return nil
		}
		symbol = waiting[0]
	}
	sb := h.bookOf(f, symbol, s.Bids, s.Asks)
	if sb == nil {
		return nil
	}
	in := sb.in
	bids, ok := h.Levels(f, in, nil, s.Bids)
	if !ok {
		return nil // still requested: the transport asks again
	}
	asks, ok := h.Levels(f, in, nil, s.Asks)
	if !ok {
		return nil
	}
	// Drop buffered events the snapshot already holds; the first one left must straddle it.
	buf := sb.buffer
	i := 0
	for i < len(buf) && (buf[i].d.Final < s.LastUpdateID || (h.market == Spot && buf[i].d.Final == s.LastUpdateID)) {
		h.Drop("older_than_snapshot")
		i++
	}
	buf = buf[i:]
	if len(buf) > 0 {
		first := buf[0].d
		straddles := first.First <= s.LastUpdateID+1
		if h.market == Futures {
			straddles = first.First <= s.LastUpdateID
		}
		if !straddles {
			// The snapshot is older than what we hold: ask for a newer one.
			h.Check("snapshot_straddle", false)
			h.Logger().Info("snapshot older than buffered events; asking again", "instrument", in.ID,
				"lastUpdateId", s.LastUpdateID, "first_U", first.First, "frame", f.N)
			sb.buffer = append(sb.buffer[:0], buf...)
			sb.requested = false
			h.requestSnapshot(sb)
			return nil
		}
		h.Check("snapshot_straddle", true)
	}
	sb.requested = false
	sb.Replace(bids, asks)
	sb.lastID, sb.first = s.LastUpdateID, true
	venueNs := ms(s.EventTime)
	if err := h.Resynced(in, &sb.Book, f, venueNs, emit); err != nil {
		return err
	}
	pending := append([]buffered(nil), buf...)
	sb.buffer = sb.buffer[:0]
	for _, b := range pending {
		if !sb.Synced { // broke again: the rest waits for the next snapshot
			sb.buffer = append(sb.buffer, b)
			continue
		}
		if err := h.apply(&b.f, sb, b.d, emit); err != nil {
			return err
		}
	}
	return nil
}

func (h *Handler) bookTicker(f *source.Frame, t *BookTicker, emit source.Emit) error {
	in := h.instrument(f, t.Symbol, []source.RawLevel{{Price: t.BidPrice, Size: t.BidSize}, {Price: t.AskPrice, Size: t.AskSize}})
	if in == nil {
		return nil
	}
	if last, ok := h.lastBT[t.Symbol]; ok && t.UpdateID <= last {
		h.Reject(f, in.ID, source.ReasonStale, fmt.Errorf("%w: bookTicker u=%d after %d", source.ErrSequence, t.UpdateID, last))
		return nil
	}
	bp, bs, ok := h.Level(f, in, t.BidPrice, t.BidSize)
	if !ok {
		return nil
	}
	ap, as, ok := h.Level(f, in, t.AskPrice, t.AskSize)
	if !ok {
		return nil
	}
	h.lastBT[t.Symbol] = t.UpdateID
	if err := h.Announce(in, f, false, emit); err != nil {
		return err
	}
	venueNs := ms(t.EventTime)
	if !h.CheckTime(f, in, venueNs) {
		venueNs = 0
	}
	return h.Emit(emit, source.QuoteEvent(in, f, venueNs, book.Level{Price: bp, Size: bs}, book.Level{Price: ap, Size: as}))
}

func (h *Handler) trade(f *source.Frame, kind Kind, t *Trade, emit source.Emit) error {
	in := h.instrument(f, t.Symbol, []source.RawLevel{{Price: t.Price, Size: t.Size}})
	if in == nil {
		return nil
	}
	key := "trade " + t.Symbol
	if kind == KindAggTrade {
		key = "aggTrade " + t.Symbol
	}
	last, seen := h.lastTID[key]
	if seen && t.ID <= last {
		h.Reject(f, in.ID, source.ReasonStale, fmt.Errorf("%w: %s id %d after %d", source.ErrSequence, key, t.ID, last))
		return nil
	}
	p, s, ok := h.Trade(f, in, t.Price, t.Size)
	if !ok {
		return nil
	}
	if seen {
		h.Check(strings.Fields(key)[0]+"_id", t.ID == last+1)
	}
	h.lastTID[key] = t.ID
	if err := h.Announce(in, f, false, emit); err != nil {
		return err
	}
	side := tickwirev1.Side_SIDE_BUY
	if t.BuyerIsMaker {
		side = tickwirev1.Side_SIDE_SELL
	}
	venueNs := ms(t.Time)
	if !h.CheckTime(f, in, venueNs) {
		venueNs = 0
	}
	return h.Emit(emit, source.TradeEvent(in, f, venueNs, p, s, side, fmt.Sprint(t.ID)))
}

// Reset implements source.Handler: after a disconnect every book starts the procedure again.
func (h *Handler) Reset(string) {
	for _, sb := range h.books {
		sb.Desync()
		sb.buffer = sb.buffer[:0]
		sb.requested = false
	}
	h.resync = nil
	clear(h.lastTID)
	clear(h.lastBT)
}

// TakeResyncs implements source.Handler: the symbols whose REST snapshot is wanted.
func (h *Handler) TakeResyncs() []string {
	out := h.resync
	h.resync = nil
	return out
}

// Snapshot implements source.Handler.
func (h *Handler) Snapshot(instrument string, ingestNs int64, emit source.Emit) (bool, error) {
	in := h.Instruments().ByID(instrument)
	if in == nil {
		return false, nil
	}
	var b *source.Book
	if sb := h.books[in.Symbol]; sb != nil {
		b = &sb.Book
	}
	return true, h.SnapshotOf(in, b, ingestNs, emit)
}

// BookOf returns symbol's book and last applied update id (for tests and tools).
func (h *Handler) BookOf(symbol string) (*source.Book, int64) {
	sb := h.books[symbol]
	if sb == nil {
		return nil, 0
	}
	return &sb.Book, sb.lastID
}
