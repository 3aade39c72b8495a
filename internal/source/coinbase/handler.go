package coinbase

import (
	"fmt"
	"log/slog"
	"sort"
	"strconv"

	"github.com/tickwire/tickwire/internal/normalize"
	"github.com/tickwire/tickwire/internal/source"
	"github.com/tickwire/tickwire/pkg/book"
	tickwirev1 "github.com/tickwire/tickwire/pkg/proto/tickwire/v1"
)

// Venue is the venue of Coinbase instrument ids ("coinbase:BTC-USD").
const Venue = "coinbase"

// Feed selects the Advanced Trade or the Exchange feed.
type Feed string

const (
	Advanced Feed = "advanced"
	Exchange Feed = "exchange"
)

// inferFloor is the scale given to an instrument first seen in a trade or ticker, whose few
// decimals say little (a size "985"): Coinbase quotes no product finer than 8 decimals.
const inferFloor = 8

// Config configures a Handler.
type Config struct {
	Feed  Feed
	Name  string // default "coinbase-advanced" / "coinbase-exchange"
	Specs source.Specs
	// Live mode: products ("BTC-USD"), channels (default: advanced level2, ticker,
	// market_trades, heartbeats; exchange level2_batch, ticker, matches, heartbeat) and URL.
	Symbols  []string
	Channels []string
	URL      string
	// RESTURL is the REST base the products' reference data is fetched from (default
	// DefaultAdvancedREST / DefaultExchangeREST when URL is not set either; none otherwise).
	RESTURL string
}

// Handler turns Coinbase frames into normalized events and keeps every product's book.
// Exchange l2update carries no sequence: its books are checked for crossing only. Advanced
// Trade numbers every message of a connection: a gap may have lost any product's update, so
// every book of that connection resyncs.
type Handler struct {
	*source.Core
	cfg     Config
	feed    Feed
	books   map[string]*prodBook
	lastSeq map[string]int64 // Exchange: "kind product" -> sequence; Advanced: conn -> sequence_num
	lastTID map[string]int64 // product -> last trade id emitted
	live    map[string]bool  // product -> a trade was emitted as new (not history)
	resync  []string
	pending map[string]bool
	ref     map[string]Product // REST product reference data, by product
}

type prodBook struct {
	source.Book
	in *source.Instrument
}

// New returns a Handler.
func New(cfg Config, logger *slog.Logger) (*Handler, error) {
	if cfg.Feed != Advanced && cfg.Feed != Exchange {
		return nil, fmt.Errorf("coinbase: feed %q: want advanced or exchange", cfg.Feed)
	}
	if cfg.Name == "" {
		cfg.Name = "coinbase-" + string(cfg.Feed)
	}
	if len(cfg.Channels) == 0 {
		cfg.Channels = []string{"level2", "ticker", "market_trades", "heartbeats"}
		if cfg.Feed == Exchange {
			cfg.Channels = []string{"level2_batch", "ticker", "matches", "heartbeat"}
		}
	}
	if cfg.RESTURL == "" && cfg.URL == "" {
		// The public endpoints; a venue URL set alone (a proxy, a test venue) has no REST
		// reference data unless RESTURL is set too.
		cfg.RESTURL = DefaultAdvancedREST
		if cfg.Feed == Exchange {
			cfg.RESTURL = DefaultExchangeREST
		}
	}
	if cfg.URL == "" {
		cfg.URL = DefaultAdvancedURL
		if cfg.Feed == Exchange {
			cfg.URL = DefaultExchangeURL
		}
	}
	return &Handler{Core: source.NewCore(Venue, cfg.Name, cfg.Specs, logger), cfg: cfg, feed: cfg.Feed,
		books: map[string]*prodBook{}, lastSeq: map[string]int64{}, lastTID: map[string]int64{}, live: map[string]bool{},
		pending: map[string]bool{}, ref: map[string]Product{}}, nil
}

// Feed returns the feed handled.
func (h *Handler) Feed() Feed { return h.feed }

// Handle implements source.Handler.
func (h *Handler) Handle(f *source.Frame, emit source.Emit) error {
	h.Stats().Frame()
	if f.URL != "" {
		p, err := ParseProduct(f.Data)
		if err != nil {
			h.Reject(f, "", source.ReasonParse, err)
			return nil
		}
		return h.product(f, p, emit)
	}
	var (
		fr  Frame
		err error
	)
	if h.feed == Advanced {
		fr, err = ParseAdvanced(f.Data)
	} else {
		fr, err = ParseExchange(f.Data)
	}
	if err != nil {
		h.Reject(f, "", source.ReasonParse, err)
		return nil
	}
	if fr.Advanced && fr.Channel != "error" && !h.sequence(f, fr.SequenceNum) {
		return nil
	}
	msgs := fr.Msgs
	if fr.Channel == "market_trades" {
		msgs = orderTrades(msgs)
	}
	for i := range msgs {
		if err := h.handle(f, fr.Channel, &msgs[i], emit); err != nil {
			return err
		}
	}
	return nil
}

// sequence checks Advanced Trade's connection-wide sequence_num. A repeated or older number is
// a duplicate (dropped); a skipped one may have carried any product's update, so every book
// resyncs.
func (h *Handler) sequence(f *source.Frame, seq int64) bool {
	key := "conn " + f.Conn
	last, seen := h.lastSeq[key]
	if !seen {
		h.lastSeq[key] = seq
		return true
	}
	switch {
	case seq <= last:
		h.Reject(f, "", source.ReasonStale, fmt.Errorf("%w: sequence_num %d after %d", source.ErrSequence, seq, last))
		return false
	case seq != last+1:
		h.Check("sequence_num", false)
		h.Reject(f, "", source.ReasonGap, fmt.Errorf("%w: sequence_num %d after %d: resyncing every book", source.ErrSequence, seq, last))
		for product, pb := range h.books {
			h.requestResync(pb, product)
		}
	default:
		h.Check("sequence_num", true)
	}
	h.lastSeq[key] = seq
	return true
}

// orderTrades puts a market_trades message's trades oldest first, by trade id. Coinbase lists
// them newest first, in a snapshot (the last trades) and in an update alike: an update can carry
// several trades that happened together, and taken in the order sent every one after the first
// would look older than the one before it and be lost. Ids count per product, so the order is
// by product, then id; ids that do not parse go last, as sent (trade rejects them).
func orderTrades(msgs []Msg) []Msg {
	sort.SliceStable(msgs, func(i, j int) bool {
		a, errA := strconv.ParseInt(msgs[i].TradeID, 10, 64)
		b, errB := strconv.ParseInt(msgs[j].TradeID, 10, 64)
		switch {
		case errA != nil || errB != nil:
			return errA == nil && errB != nil
		case msgs[i].Product != msgs[j].Product:
			return msgs[i].Product < msgs[j].Product
		}
		return a < b
	})
	return msgs
}

func (h *Handler) requestResync(pb *prodBook, product string) {
	pb.Desync()
	if !h.pending[product] {
		h.pending[product] = true
		h.resync = append(h.resync, product)
	}
}

func (h *Handler) instrument(f *source.Frame, product string, snapshot bool, levels ...[]source.RawLevel) *source.Instrument {
	if in := h.Instruments().Lookup(product); in != nil {
		return in
	}
	pd, sd := source.LevelDecimals(levels...)
	if !snapshot {
		pd, sd = max(pd, inferFloor), max(sd, inferFloor)
	}
	in, err := h.Instruments().Define(product, h.venueSpec(product), pd, sd)
	if err != nil {
		h.Reject(f, "", source.ReasonUnknown, err)
		return nil
	}
	return in
}

// venueSpec returns product's reference data from REST (nil if none): tick the price (or
// quote) increment, lot the base increment, scales the decimals they are written with.
func (h *Handler) venueSpec(product string) *source.Spec {
	p, ok := h.ref[product]
	if !ok {
		return nil
	}
	pd, err1 := normalize.Decimals(p.PriceIncrement)
	sd, err2 := normalize.Decimals(p.BaseIncrement)
	if err1 != nil || err2 != nil {
		return nil
	}
	return &source.Spec{PriceScale: min(pd, normalize.MaxScale), SizeScale: min(sd, normalize.MaxScale), Tick: p.PriceIncrement, Lot: p.BaseIncrement,
		Status: p.InstrumentStatus()}
}

// product keeps a product's REST reference data and updates the grid of its instrument if
// already defined, announcing the changed InstrumentInfo.
func (h *Handler) product(f *source.Frame, p Product, emit source.Emit) error {
	h.ref[p.ID] = p
	in := h.Instruments().Lookup(p.ID)
	if in == nil || h.venueSpec(p.ID) == nil {
		return nil
	}
	changed, err := h.Instruments().SetGrid(in, p.PriceIncrement, p.BaseIncrement, p.InstrumentStatus())
	if err != nil {
		h.Reject(f, in.ID, source.ReasonParse, err)
		return nil
	}
	if changed && in.Announced() {
		return h.Announce(in, f, true, emit)
	}
	return nil
}

func (h *Handler) handle(f *source.Frame, channel string, m *Msg, emit source.Emit) error {
	switch m.Kind {
	case KindSnapshot:
		return h.snapshot(f, m, emit)
	case KindUpdate:
		return h.update(f, m, emit)
	case KindTicker:
		return h.ticker(f, m, emit)
	case KindTrade:
		return h.trade(f, m, emit)
	case KindError:
		h.Logger().Warn("coinbase error message", "err", m.Err, "conn", f.Conn, "frame", f.N)
	case KindUnknown:
		h.UnknownChannel(f, channel)
	}
	return nil
}

func (h *Handler) snapshot(f *source.Frame, m *Msg, emit source.Emit) error {
	in := h.instrument(f, m.Product, true, m.Bids, m.Asks)
	if in == nil {
		return nil
	}
	pb := h.books[m.Product]
	if pb == nil {
		pb = &prodBook{in: in}
		h.books[m.Product] = pb
	}
	bids, ok := h.Levels(f, in, nil, m.Bids)
	if !ok {
		h.requestResync(pb, m.Product)
		return nil
	}
	asks, ok := h.Levels(f, in, nil, m.Asks)
	if !ok {
		h.requestResync(pb, m.Product)
		return nil
	}
	pb.Replace(bids, asks)
	delete(h.pending, m.Product)
	venueNs := m.TimeNs
	if !h.CheckTime(f, in, venueNs) {
		venueNs = 0
	}
	return h.Resynced(in, &pb.Book, f, venueNs, emit)
}

func (h *Handler) update(f *source.Frame, m *Msg, emit source.Emit) error {
	pb := h.books[m.Product]
	if pb == nil || !pb.Synced {
		h.Drop(source.ReasonUnsynced)
		return nil
	}
	in := pb.in
	var upd source.Update
	for _, c := range m.Changes {
		p, s, ok := h.Level(f, in, c.Price, c.Size)
		if !ok {
			h.requestResync(pb, m.Product)
			return nil
		}
		side := book.Ask
		if c.Bid {
			side = book.Bid
		}
		upd.Set(side, p, s)
	}
	pb.Apply(upd.Bids, upd.Asks)
	if pb.Crossed() {
		bid, _ := pb.Best(book.Bid)
		ask, _ := pb.Best(book.Ask)
		h.Reject(f, in.ID, source.ReasonCrossed, fmt.Errorf("book crossed: bid %d >= ask %d", bid.Price, ask.Price))
	}
	venueNs := m.TimeNs
	if !h.CheckTime(f, in, venueNs) {
		venueNs = 0
	}
	return h.Emit(emit, source.BookEvent(in, f, venueNs, false, upd.Bids, upd.Asks))
}

// exchangeSeq checks the Exchange feed's per-product sequence of one message kind: an older
// or repeated sequence is a duplicate.
func (h *Handler) exchangeSeq(f *source.Frame, in *source.Instrument, kind string, seq int64) bool {
	if h.feed != Exchange || seq == 0 {
		return true
	}
	key := kind + " " + in.Symbol
	if last, ok := h.lastSeq[key]; ok && seq <= last {
		h.Reject(f, in.ID, source.ReasonStale, fmt.Errorf("%w: %s sequence %d after %d", source.ErrSequence, kind, seq, last))
		return false
	}
	h.lastSeq[key] = seq
	return true
}

func (h *Handler) ticker(f *source.Frame, m *Msg, emit source.Emit) error {
	in := h.instrument(f, m.Product, false, []source.RawLevel{{Price: m.BidPrice, Size: m.BidSize}, {Price: m.AskPrice, Size: m.AskSize}})
	if in == nil || !h.exchangeSeq(f, in, "ticker", m.Seq) {
		return nil
	}
	if m.BidSize == "" || m.AskSize == "" {
		// The 2021 Exchange ticker names best prices without sizes: no quote to make.
		h.Drop("ticker_without_sizes")
		return nil
	}
	bp, bs, ok := h.Level(f, in, m.BidPrice, m.BidSize)
	if !ok {
		return nil
	}
	ap, as, ok := h.Level(f, in, m.AskPrice, m.AskSize)
	if !ok {
		return nil
	}
	if err := h.Announce(in, f, false, emit); err != nil {
		return err
	}
	venueNs := m.TimeNs
	if !h.CheckTime(f, in, venueNs) {
		venueNs = 0
	}
	return h.Emit(emit, source.QuoteEvent(in, f, venueNs, book.Level{Price: bp, Size: bs}, book.Level{Price: ap, Size: as}))
}

func (h *Handler) trade(f *source.Frame, m *Msg, emit source.Emit) error {
	in := h.instrument(f, m.Product, false, []source.RawLevel{{Price: m.Price, Size: m.Size}})
	if in == nil || !h.exchangeSeq(f, in, "match", m.Seq) {
		return nil
	}
	id, idErr := strconv.ParseInt(m.TradeID, 10, 64)
	last, seen := h.lastTID[m.Product]
	history := false
	if m.Last {
		// History (last_match, a market_trades snapshot). After trades of this product were
		// taken, one with a later id was missed while disconnected: a new trade like any other;
		// one already taken is dropped. Before any, it is the tape before this feed saw the
		// market: kept as a history trade (listed, not counted in candles or volume).
		switch {
		case idErr != nil || (seen && id <= last):
			h.Drop("trade_history")
			return nil
		case !h.live[m.Product]:
			history = true
		}
	} else if idErr == nil && seen && id <= last {
		h.Reject(f, in.ID, source.ReasonStale, fmt.Errorf("%w: trade_id %d after %d", source.ErrSequence, id, last))
		return nil
	} else if idErr == nil && seen {
		// A product's trade ids count up by one: a skipped id is a trade this feed never got
		// (the venue offers no way to fetch it over the socket), counted where it shows.
		h.Check("trade_id", id == last+1)
	}
	p, s, ok := h.Trade(f, in, m.Price, m.Size)
	if !ok {
		return nil
	}
	if idErr == nil {
		h.lastTID[m.Product] = id
	}
	if !history {
		h.live[m.Product] = true
	}
	if err := h.Announce(in, f, false, emit); err != nil {
		return err
	}
	side := tickwirev1.Side_SIDE_UNSPECIFIED
	switch m.Side {
	case "buy":
		side = tickwirev1.Side_SIDE_BUY
	case "sell":
		side = tickwirev1.Side_SIDE_SELL
	}
	venueNs := m.TimeNs
	if !h.CheckTime(f, in, venueNs) {
		venueNs = 0
	}
	ev := source.TradeEvent(in, f, venueNs, p, s, side, m.TradeID)
	ev.GetTrade().History = history
	return h.Emit(emit, ev)
}

// Reset implements source.Handler: books wait for the snapshots of the new subscription;
// sequence numbers start over (Advanced Trade numbers per connection). Trade ids are kept,
// so the history a resubscription replays is emitted only where it is new.
func (h *Handler) Reset(conn string) {
	for _, pb := range h.books {
		pb.Desync()
	}
	delete(h.lastSeq, "conn "+conn)
	for k := range h.lastSeq {
		if h.feed == Exchange {
			delete(h.lastSeq, k)
		}
	}
	h.resync = nil
	clear(h.pending)
}

// TakeResyncs implements source.Handler: products whose level2 must be subscribed again.
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

// BookOf returns a product's book (for tests and tools).
func (h *Handler) BookOf(product string) *source.Book {
	if pb := h.books[product]; pb != nil {
		return &pb.Book
	}
	return nil
}
