package kraken

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/tickwire/tickwire/internal/normalize"
	"github.com/tickwire/tickwire/internal/source"
	"github.com/tickwire/tickwire/pkg/book"
	tickwirev1 "github.com/tickwire/tickwire/pkg/proto/tickwire/v1"
)

// Venue is the venue of Kraken instrument ids ("kraken:XBT/USD" in v1, "kraken:BTC/USD" in v2:
// each API's own pair names).
const Venue = "kraken"

// DefaultDepth is the v2 book depth subscribed (and assumed for a v2 capture) unless
// configured: Kraken's checksum covers 10 levels, so 10 is the least that checks everything.
const DefaultDepth = 10

// Config configures a Handler.
type Config struct {
	// Version is the WebSocket API version, 1 or 2.
	Version int
	// Depth is the v2 book depth subscribed; v1 reads it from the channel name ("book-10").
	Depth int
	// Name names the source in logs and metrics (default "kraken-v1"/"kraken-v2").
	Name  string
	Specs source.Specs
	// Live mode: the pairs to subscribe ("XBT/USD" in v1, "BTC/USD" in v2), the channels
	// (default book, ticker, trade) and the WebSocket URL (default DefaultURLV1/V2).
	Symbols  []string
	Channels []string
	URL      string
	// RESTURL is the REST base whose public AssetPairs gives v1 pairs their tick and lot
	// (default DefaultREST when URL is not set either; none otherwise).
	RESTURL string
}

// Handler turns Kraken frames into normalized events and keeps every pair's book, verified
// against Kraken's checksum on every message that carries one.
type Handler struct {
	*source.Core
	cfg     Config
	version int
	depth   int
	books   map[string]*pairBook // by pair
	venuePx map[string]PairInfo  // v2 instrument channel, by pair
	assets  map[string]AssetPair // v1: REST AssetPairs, by wsname
	resync  []string
	pending map[string]bool // pairs in resync
	lastTID map[string]int64

	bids, asks []book.Level // scratch
}

type pairBook struct {
	source.Book
	in    *source.Instrument
	depth int
	prec  Precision
}

// New returns a Handler.
func New(cfg Config, logger *slog.Logger) (*Handler, error) {
	if cfg.Version != 1 && cfg.Version != 2 {
		return nil, fmt.Errorf("kraken: version %d: want 1 or 2", cfg.Version)
	}
	if cfg.Depth <= 0 {
		cfg.Depth = DefaultDepth
	}
	if cfg.Name == "" {
		cfg.Name = fmt.Sprintf("kraken-v%d", cfg.Version)
	}
	if len(cfg.Channels) == 0 {
		cfg.Channels = []string{"book", "ticker", "trade"}
	}
	for _, c := range cfg.Channels {
		if c != "book" && c != "ticker" && c != "trade" {
			return nil, fmt.Errorf("kraken: channel %q: want book, ticker or trade", c)
		}
	}
	if cfg.RESTURL == "" && cfg.URL == "" {
		// The public endpoints; a venue URL set alone (a proxy, a test venue) has no REST
		// reference data unless RESTURL is set too.
		cfg.RESTURL = DefaultREST
	}
	if cfg.URL == "" {
		cfg.URL = DefaultURLV1
		if cfg.Version == 2 {
			cfg.URL = DefaultURLV2
		}
	}
	return &Handler{
		Core: source.NewCore(Venue, cfg.Name, cfg.Specs, logger),
		cfg:  cfg, version: cfg.Version, depth: cfg.Depth,
		books: map[string]*pairBook{}, venuePx: map[string]PairInfo{}, assets: map[string]AssetPair{}, pending: map[string]bool{}, lastTID: map[string]int64{},
	}, nil
}

// Version returns the API version, 1 or 2.
func (h *Handler) Version() int { return h.version }

// Depth returns the v2 book depth.
func (h *Handler) Depth() int { return h.depth }

// Handle implements source.Handler.
func (h *Handler) Handle(f *source.Frame, emit source.Emit) error {
	h.Stats().Frame()
	if f.URL != "" {
		pairs, err := ParseAssetPairs(f.Data)
		if err != nil {
			h.Reject(f, "", source.ReasonParse, err)
			return nil
		}
		return h.assetPairs(f, pairs, emit)
	}
	var msgs []Msg
	if h.version == 1 {
		m, err := ParseV1(f.Data)
		if err != nil {
			h.Reject(f, "", source.ReasonParse, err)
			return nil
		}
		msgs = []Msg{m}
	} else {
		var err error
		if msgs, err = ParseV2(f.Data); err != nil {
			h.Reject(f, "", source.ReasonParse, err)
			return nil
		}
	}
	for i := range msgs {
		if err := h.handle(f, &msgs[i], emit); err != nil {
			return err
		}
	}
	return nil
}

func (h *Handler) handle(f *source.Frame, m *Msg, emit source.Emit) error {
	switch m.Kind {
	case KindBook:
		return h.book(f, m, emit)
	case KindTicker:
		return h.ticker(f, m, emit)
	case KindTrade:
		return h.trades(f, m, emit)
	case KindInstrument:
		for _, p := range m.Pairs {
			h.venuePx[p.Symbol] = p
		}
	case KindError:
		h.Logger().Warn("kraken error message", "event", m.Event, "err", m.Err, "conn", f.Conn, "frame", f.N)
	case KindUnknown:
		h.UnknownChannel(f, m.Event)
	}
	return nil
}

// venueSpec returns the reference data Kraken published for pair (v2 instrument channel).
func (h *Handler) venueSpec(pair string) *source.Spec {
	p, ok := h.venuePx[pair]
	if !ok {
		return nil
	}
	return &source.Spec{PriceScale: p.PricePrecision, SizeScale: p.QtyPrecision, Tick: p.PriceIncrement, Lot: p.QtyIncrement}
}

// assetSpec returns the reference data of a v1 pair from REST AssetPairs (nil if none): the
// scales are the decimals the stream writes (priceDec, sizeDec; v1 writes every value with
// the pair's full precision), at least pair_decimals and lot_decimals, so that the tick
// (tick_size, else one unit of pair_decimals) and the lot (one unit of lot_decimals) fit.
func (h *Handler) assetSpec(pair string, priceDec, sizeDec int32) *source.Spec {
	a, ok := h.assets[pair]
	if !ok {
		return nil
	}
	return &source.Spec{PriceScale: min(max(priceDec, a.PairDecimals), normalize.MaxScale),
		SizeScale: min(max(sizeDec, a.LotDecimals), normalize.MaxScale), Tick: a.Tick(), Lot: a.Lot(), Status: a.InstrumentStatus()}
}

// assetPairs keeps the AssetPairs answer and gives the pairs already defined their grid,
// announcing the changed InstrumentInfo.
func (h *Handler) assetPairs(f *source.Frame, pairs []AssetPair, emit source.Emit) error {
	for _, a := range pairs {
		h.assets[a.WSName] = a
		in := h.Instruments().Lookup(a.WSName)
		if in == nil {
			continue
		}
		changed, err := h.Instruments().SetGrid(in, a.Tick(), a.Lot(), a.InstrumentStatus())
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

func (h *Handler) instrument(f *source.Frame, pair string, priceDec, sizeDec int32) *source.Instrument {
	spec := h.venueSpec(pair)
	if spec == nil {
		spec = h.assetSpec(pair, priceDec, sizeDec)
	}
	in, err := h.Instruments().Define(pair, spec, priceDec, sizeDec)
	if err != nil {
		h.Reject(f, "", source.ReasonUnknown, err)
		return nil
	}
	return in
}

func raw(levels []Level) []source.RawLevel {
	out := make([]source.RawLevel, len(levels))
	for i, l := range levels {
		out[i] = source.RawLevel{Price: l.Price, Size: l.Size}
	}
	return out
}

// bookTime is the venue time of a book message: v2's timestamp, or v1's latest level time.
func bookTime(m *BookMsg) int64 {
	if m.Timestamp != "" {
		return rfc3339(m.Timestamp)
	}
	var t int64
	for _, side := range [][]Level{m.Bids, m.Asks} {
		for _, l := range side {
			t = max(t, unixSeconds(l.Time))
		}
	}
	return t
}

func rfc3339(s string) int64 {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return 0
	}
	return t.UnixNano()
}

// unixSeconds parses "1693415327.935623" exactly into nanoseconds (0 if invalid).
func unixSeconds(s string) int64 {
	ns, err := normalize.ParseMantissa(s, 9)
	if err != nil {
		return 0
	}
	return ns
}

func (h *Handler) requestResync(pb *pairBook, pair string) {
	pb.Desync()
	if !h.pending[pair] {
		h.pending[pair] = true
		h.resync = append(h.resync, pair)
	}
}

func (h *Handler) book(f *source.Frame, m *Msg, emit source.Emit) error {
	bm := m.Book
	pb := h.books[m.Pair]
	if pb == nil {
		depth := h.depth
		if h.version == 1 {
			if bm.Depth <= 0 {
				h.Reject(f, "", source.ReasonParse, fmt.Errorf("%w: book channel without depth", source.ErrFrame))
				return nil
			}
			depth = bm.Depth
		}
		pb = &pairBook{depth: depth}
		h.books[m.Pair] = pb
	}
	if pb.in == nil {
		if !bm.Snapshot {
			h.Drop(source.ReasonUnsynced)
			return nil
		}
		pd, sd := source.LevelDecimals(raw(bm.Bids), raw(bm.Asks))
		if h.version == 2 && h.venueSpec(m.Pair) == nil && bm.HasChecksum {
			if !h.Instruments().Configured(m.Pair) {
				pd, sd = calibrate(bm, pd, sd)
			}
		}
		if pb.in = h.instrument(f, m.Pair, pd, sd); pb.in == nil {
			return nil
		}
	}
	in := pb.in
	venueNs := bookTime(bm)
	if bm.Snapshot {
		bids, ok := h.Levels(f, in, h.bids[:0], raw(bm.Bids))
		if !ok {
			h.requestResync(pb, m.Pair)
			return nil
		}
		asks, ok := h.Levels(f, in, h.asks[:0], raw(bm.Asks))
		h.bids, h.asks = bids, asks
		if !ok {
			h.requestResync(pb, m.Pair)
			return nil
		}
		pb.Replace(bids, asks)
		pb.Truncate(pb.depth)
		pb.prec = h.precision(m.Pair, in, bm)
		delete(h.pending, m.Pair)
		if bm.HasChecksum && !h.verify(f, pb, bm.Checksum) {
			h.requestResync(pb, m.Pair)
			return nil
		}
		if !h.CheckTime(f, in, venueNs) {
			venueNs = 0
		}
		return h.Resynced(in, &pb.Book, f, venueNs, emit)
	}
	if !pb.Synced {
		h.Drop(source.ReasonUnsynced)
		return nil
	}
	// Apply rows in order; the emitted update holds each price once, with its final size.
	var upd source.Update
	for _, x := range []struct {
		side book.Side
		rows []Level
	}{{book.Ask, bm.Asks}, {book.Bid, bm.Bids}} {
		for _, r := range x.rows {
			p, s, ok := h.Level(f, in, r.Price, r.Size)
			if !ok {
				h.requestResync(pb, m.Pair)
				return nil
			}
			pb.Set(x.side, p, s)
			upd.Set(x.side, p, s)
		}
	}
	// Kraken sends no delete for a level pushed out of the subscribed depth: delete it
	// explicitly, so that books rebuilt downstream stay equal to the venue's.
	for _, side := range []book.Side{book.Bid, book.Ask} {
		levels := pb.Levels(side)
		for i := pb.depth; i < len(levels); i++ {
			upd.Set(side, levels[i].Price, 0)
		}
	}
	pb.Truncate(pb.depth)
	if bm.HasChecksum {
		if !h.verify(f, pb, bm.Checksum) {
			h.requestResync(pb, m.Pair)
			return nil
		}
	}
	if pb.Crossed() {
		h.Reject(f, in.ID, source.ReasonCrossed, fmt.Errorf("book crossed after update"))
	}
	if !h.CheckTime(f, in, venueNs) {
		venueNs = 0
	}
	return h.Emit(emit, source.BookEvent(in, f, venueNs, false, upd.Bids, upd.Asks))
}

// precision returns the decimals Kraken writes pair's values with: published (v2 instrument
// channel), configured (the instrument's scales), or as the v1 snapshot writes them.
func (h *Handler) precision(pair string, in *source.Instrument, bm *BookMsg) Precision {
	if p, ok := h.venuePx[pair]; ok {
		return Precision{Price: p.PricePrecision, Size: p.QtyPrecision}
	}
	if h.version == 1 {
		pd, sd := source.LevelDecimals(raw(bm.Bids), raw(bm.Asks))
		return Precision{Price: pd, Size: sd}
	}
	return Precision{Price: in.PriceScale, Size: in.SizeScale}
}

func (h *Handler) verify(f *source.Frame, pb *pairBook, want uint32) bool {
	got, ok := Checksum(pb.Bids(), pb.Asks(), pb.in.PriceScale, pb.in.SizeScale, pb.prec)
	if ok && got == want {
		h.Check("checksum", true)
		return true
	}
	h.Check("checksum", false)
	h.Reject(f, pb.in.ID, source.ReasonChecksum, fmt.Errorf("%w: got %d, venue %d (precision %d/%d)", source.ErrChecksum, got, want, pb.prec.Price, pb.prec.Size))
	return false
}

// calibrate finds the precision of a v2 pair that publishes none from its snapshot checksum:
// JSON numbers may drop trailing zeros, so the decimals seen are a lower bound.
func calibrate(bm *BookMsg, pd, sd int32) (int32, int32) {
	var bids, asks []book.Level
	scaleP, scaleS := min(pd+8, normalize.MaxScale), min(sd+8, normalize.MaxScale)
	for _, x := range []struct {
		dst  *[]book.Level
		rows []Level
	}{{&bids, bm.Bids}, {&asks, bm.Asks}} {
		for _, r := range x.rows {
			p, err1 := normalize.ParseMantissa(r.Price, scaleP)
			s, err2 := normalize.ParseMantissa(r.Size, scaleS)
			if err1 != nil || err2 != nil {
				return pd, sd
			}
			*x.dst = append(*x.dst, book.Level{Price: p, Size: s})
		}
	}
	var b book.Book
	b.Replace(bids, asks)
	for p := pd; p <= scaleP; p++ {
		for s := sd; s <= scaleS; s++ {
			if sum, ok := Checksum(b.Bids(), b.Asks(), scaleP, scaleS, Precision{p, s}); ok && sum == bm.Checksum {
				return p, s
			}
		}
	}
	return pd, sd
}

func (h *Handler) ticker(f *source.Frame, m *Msg, emit source.Emit) error {
	t := m.Ticker
	in := h.instrument(f, m.Pair, source.MaxDecimals(t.BidPrice, t.AskPrice), source.MaxDecimals(t.BidSize, t.AskSize))
	if in == nil {
		return nil
	}
	bp, bs, ok1 := h.Level(f, in, t.BidPrice, t.BidSize)
	if !ok1 {
		return nil
	}
	ap, as, ok2 := h.Level(f, in, t.AskPrice, t.AskSize)
	if !ok2 {
		return nil
	}
	if err := h.Announce(in, f, false, emit); err != nil {
		return err
	}
	venueNs := rfc3339(t.Timestamp)
	if t.Timestamp == "" || !h.CheckTime(f, in, venueNs) {
		venueNs = 0
	}
	return h.Emit(emit, source.QuoteEvent(in, f, venueNs, book.Level{Price: bp, Size: bs}, book.Level{Price: ap, Size: as}))
}

func (h *Handler) trades(f *source.Frame, m *Msg, emit source.Emit) error {
	var pd, sd int32
	for _, t := range m.Trades {
		pd, sd = max(pd, source.MaxDecimals(t.Price)), max(sd, source.MaxDecimals(t.Size))
	}
	in := h.instrument(f, m.Pair, pd, sd)
	if in == nil {
		return nil
	}
	if err := h.Announce(in, f, false, emit); err != nil {
		return err
	}
	for _, t := range m.Trades {
		p, s, ok := h.Trade(f, in, t.Price, t.Size)
		if !ok {
			continue
		}
		if t.ID != "" {
			id, err := normalize.ParseMantissa(t.ID, 0)
			if err != nil {
				h.Reject(f, in.ID, source.ReasonParse, fmt.Errorf("%w: trade_id %q", source.ErrFrame, t.ID))
				continue
			}
			last, seen := h.lastTID[m.Pair]
			if seen && id <= last {
				h.Reject(f, in.ID, source.ReasonStale, fmt.Errorf("%w: trade_id %d after %d", source.ErrSequence, id, last))
				continue
			}
			if seen {
				h.Check("trade_id", id == last+1)
			}
			h.lastTID[m.Pair] = id
		}
		var venueNs int64
		if h.version == 1 {
			venueNs = unixSeconds(t.Time)
		} else {
			venueNs = rfc3339(t.Time)
		}
		if !h.CheckTime(f, in, venueNs) {
			venueNs = 0
		}
		side := tickwirev1.Side_SIDE_UNSPECIFIED
		switch t.Side {
		case "b", "buy":
			side = tickwirev1.Side_SIDE_BUY
		case "s", "sell":
			side = tickwirev1.Side_SIDE_SELL
		}
		if err := h.Emit(emit, source.TradeEvent(in, f, venueNs, p, s, side, t.ID)); err != nil {
			return err
		}
	}
	return nil
}

// Reset implements source.Handler: after a disconnect every book waits for a new snapshot
// (and restarts with a new epoch); the reconnect subscribes everything again.
func (h *Handler) Reset(string) {
	for _, pb := range h.books {
		pb.Desync()
	}
	h.resync = nil
	clear(h.pending)
	clear(h.lastTID)
}

// TakeResyncs implements source.Handler.
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
	if pb := h.books[in.Symbol]; pb != nil {
		b = &pb.Book
	}
	return true, h.SnapshotOf(in, b, ingestNs, emit)
}

// BookOf returns pair's book and the precision its checksum uses (for tests and tools).
func (h *Handler) BookOf(pair string) (*source.Book, Precision, *source.Instrument) {
	pb := h.books[pair]
	if pb == nil {
		return nil, Precision{}, nil
	}
	return &pb.Book, pb.prec, pb.in
}

// DepthOf returns the book depth of pair (v1: from its channel name), 0 if unknown.
func (h *Handler) DepthOf(pair string) int {
	if pb := h.books[pair]; pb != nil {
		return pb.depth
	}
	return 0
}
