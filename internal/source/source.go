// Package source holds what every market-data source shares: the Frame a venue sends, the
// Handler contract of a venue adapter (frames in, normalized events out), instrument reference
// data (configured, venue-published or inferred), reject and check counters, and pacing.
//
// A venue adapter is three layers: a pure parser (bytes -> venue messages), a Handler (venue
// messages -> normalized events, book continuity and resync decisions) and a transport (live
// WebSocket in package live, recorded captures in package capture). Live and capture modes
// share everything but the transport, so a capture replays exactly as it was received.
package source

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/tickwire/tickwire/internal/normalize"
	"github.com/tickwire/tickwire/pkg/book"
	tickwirev1 "github.com/tickwire/tickwire/pkg/proto/tickwire/v1"
)

// Frame is one message as a venue sent it, with where it came from.
type Frame struct {
	// Conn names the connection (a capture's "conn" field, or the live connection number).
	Conn string
	// N is the frame's position: the line number in a capture, the frame count in live mode.
	N int64
	// RecvNs is when the frame was received (live: now; capture: the recorded clock), Unix ns.
	RecvNs int64
	// IngestNs is stamped on the frame's events as ingest_time_ns; 0 lets the pipeline stamp
	// its own clock (capture replays do this by default).
	IngestNs int64
	// URL is set for a REST response (a Binance depth snapshot): the request URL.
	URL string
	// Data is the frame text, byte for byte.
	Data []byte
}

// Emit receives normalized events; it may block (backpressure).
type Emit func(*tickwirev1.Event) error

// Handler is the core of a venue adapter. It is used from one goroutine.
type Handler interface {
	// Venue is the venue part of the handler's instrument ids ("kraken", "binance-futures").
	Venue() string
	// Handle handles one frame and emits its events in order. It returns an error only when
	// emit does: a bad frame is counted in Stats and logged, and the next frame is handled
	// normally.
	Handle(f *Frame, emit Emit) error
	// Reset forgets the state of connection conn after it closed: its books wait for fresh
	// snapshots (and their instruments restart with a new epoch then).
	Reset(conn string)
	// Snapshot emits the instrument's InstrumentInfo and, if its book is in sync, a book
	// snapshot (the answer to the pipeline's SnapshotRequester). It reports whether it knew
	// the instrument.
	Snapshot(instrument string, ingestNs int64, emit Emit) (bool, error)
	// TakeResyncs returns, and forgets, the symbols whose books broke since the last call and
	// need a fresh venue snapshot. Live transports act on them; captures can only wait for
	// the snapshots the recording holds.
	TakeResyncs() []string
	// SetBreakHandler is ingest.BreakReporter: f is called before an instrument's
	// recovering snapshot, so that it starts a new epoch.
	SetBreakHandler(f func(instrument string))
	// Stats returns the handler's counters.
	Stats() *Stats
	// Reject counts and logs a rejected frame (Core implements it).
	Reject(f *Frame, instrument, reason string, err error)
}

// Core is what every Handler embeds: venue, instruments, counters, logger, break handler.
type Core struct {
	venue   string
	name    string // source name for logs and metrics
	insts   *Instruments
	stats   *Stats
	logger  *slog.Logger
	onBreak func(string)
	unknown map[string]bool // channels named at warn level by UnknownChannel (bounded)
}

// NewCore returns a Core for venue, named name in logs and metrics.
func NewCore(venue, name string, specs Specs, logger *slog.Logger) *Core {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	logger = logger.With("source", name)
	return &Core{venue: venue, name: name, insts: NewInstruments(venue, specs, logger), stats: NewStats(name), logger: logger}
}

// Venue returns the venue of the instrument ids.
func (c *Core) Venue() string { return c.venue }

// Name returns the source name.
func (c *Core) Name() string { return c.name }

// Stats returns the counters.
func (c *Core) Stats() *Stats { return c.stats }

// Instruments returns the instrument registry.
func (c *Core) Instruments() *Instruments { return c.insts }

// Logger returns the logger.
func (c *Core) Logger() *slog.Logger { return c.logger }

// SetBreakHandler sets the function Break calls (ingest.BreakReporter).
func (c *Core) SetBreakHandler(f func(string)) { c.onBreak = f }

// Break reports that instrument lost continuity and is about to restart with a snapshot.
func (c *Core) Break(in *Instrument) {
	c.stats.resync(in.ID)
	if c.onBreak != nil {
		c.onBreak(in.ID)
	}
}

// Reject counts a rejected value or message and logs it with the frame's position.
func (c *Core) Reject(f *Frame, instrument, reason string, err error) {
	c.stats.reject(instrument, reason)
	if instrument == "" {
		instrument = "-"
	}
	c.logger.Warn("frame rejected", "instrument", instrument, "reason", reason, "conn", f.Conn, "frame", f.N, "err", err)
}

// maxUnknownNamed bounds the unknown channel names UnknownChannel remembers (and logs at warn
// level, once each); the others are logged at debug level.
const maxUnknownNamed = 16

// UnknownChannel counts a frame on a channel (or of an event type) the handler does not
// handle, as dropped with ReasonUnknownChannel, and names the channel in the log: at warn
// level the first time each of the first maxUnknownNamed names is seen, at debug level after
// that, so neither the metric labels nor the warn log grow with the input.
func (c *Core) UnknownChannel(f *Frame, channel string) {
	c.stats.drop(ReasonUnknownChannel)
	if channel == "" {
		channel = "(none)"
	}
	if len(channel) > 64 {
		channel = channel[:64] + "..."
	}
	level := slog.LevelDebug
	if !c.unknown[channel] && len(c.unknown) < maxUnknownNamed {
		if c.unknown == nil {
			c.unknown = map[string]bool{}
		}
		c.unknown[channel] = true
		level = slog.LevelWarn
	}
	c.logger.Log(context.Background(), level, "frame on an unknown channel dropped", "reason", ReasonUnknownChannel,
		"channel", channel, "conn", f.Conn, "frame", f.N)
}

// Drop counts an event dropped by design (stale before a snapshot, waiting for a resync).
func (c *Core) Drop(reason string) { c.stats.drop(reason) }

// Check counts a continuity or checksum verification.
func (c *Core) Check(kind string, ok bool) { c.stats.check(kind, ok) }

// Announced reports whether in's InstrumentInfo was emitted.
func (in *Instrument) Announced() bool { return in.announced }

// Announce emits in's InstrumentInfo if it was not sent yet (or force).
func (c *Core) Announce(in *Instrument, f *Frame, force bool, emit Emit) error {
	if in.announced && !force {
		return nil
	}
	in.announced = true
	return c.Emit(emit, &tickwirev1.Event{Instrument: in.ID, IngestTimeNs: f.IngestNs,
		Body: &tickwirev1.Event_Info{Info: in.Info}})
}

// Emit counts and emits one event.
func (c *Core) Emit(emit Emit, ev *tickwirev1.Event) error {
	c.stats.event()
	if err := emit(ev); err != nil {
		return fmt.Errorf("%s: emit: %w", c.name, err)
	}
	return nil
}

// CheckTime rejects a venue time more than normalize.MaxFutureSkew ahead of the frame's
// receive time (the venue clock is compared with the receiving clock, so a replayed capture
// is judged by the clock that recorded it).
func (c *Core) CheckTime(f *Frame, in *Instrument, venueNs int64) bool {
	if f.RecvNs > 0 && venueNs > f.RecvNs+int64(normalize.MaxFutureSkew) {
		c.Reject(f, in.ID, ReasonFutureTime, fmt.Errorf("%w: venue %d ns, received %d ns", ErrFutureTime, venueNs, f.RecvNs))
		return false
	}
	return true
}

// RawLevel is a price level as the venue wrote it.
type RawLevel struct {
	Price, Size string
}

// Levels converts venue levels to mantissas at in's scales, appending to dst. A price that is
// not positive, a negative size, a value not exact at the scale, or a price or size off the
// instrument's tick or lot grid (where known) is rejected (counted and logged) and Levels
// reports false; nothing is rounded.
func (c *Core) Levels(f *Frame, in *Instrument, dst []book.Level, raw []RawLevel) ([]book.Level, bool) {
	for _, r := range raw {
		p, s, ok := c.Level(f, in, r.Price, r.Size)
		if !ok {
			return dst, false
		}
		dst = append(dst, book.Level{Price: p, Size: s})
	}
	return dst, true
}

// Level converts one level, like Levels.
func (c *Core) Level(f *Frame, in *Instrument, price, size string) (p, s int64, ok bool) {
	p, err := normalize.ParseMantissa(price, in.PriceScale)
	if err != nil {
		c.Reject(f, in.ID, normalize.Reason(err), fmt.Errorf("price: %w", err))
		return 0, 0, false
	}
	s, err = normalize.ParseMantissa(size, in.SizeScale)
	if err != nil {
		c.Reject(f, in.ID, normalize.Reason(err), fmt.Errorf("size: %w", err))
		return 0, 0, false
	}
	if p <= 0 {
		c.Reject(f, in.ID, ReasonPrice, fmt.Errorf("%w: price %s", ErrValue, price))
		return 0, 0, false
	}
	if s < 0 {
		c.Reject(f, in.ID, ReasonSize, fmt.Errorf("%w: size %s", ErrValue, size))
		return 0, 0, false
	}
	// The grid, where known (tick_size/lot_size 0: not known, not checked).
	if err := normalize.CheckTick(in.Info.GetTickSize(), p); err != nil {
		c.Reject(f, in.ID, normalize.Reason(err), fmt.Errorf("price %s: %w", price, err))
		return 0, 0, false
	}
	if err := normalize.CheckLot(in.Info.GetLotSize(), s); err != nil {
		c.Reject(f, in.ID, normalize.Reason(err), fmt.Errorf("size %s: %w", size, err))
		return 0, 0, false
	}
	return p, s, true
}

// Trade converts a trade's price and size (both must be positive).
func (c *Core) Trade(f *Frame, in *Instrument, price, size string) (p, s int64, ok bool) {
	p, s, ok = c.Level(f, in, price, size)
	if ok && s == 0 {
		c.Reject(f, in.ID, ReasonSize, fmt.Errorf("%w: trade size %s", ErrValue, size))
		return 0, 0, false
	}
	return p, s, ok
}

// BookEvent returns a book update (snapshot: replaces the book) event.
func BookEvent(in *Instrument, f *Frame, venueNs int64, snapshot bool, bids, asks []book.Level) *tickwirev1.Event {
	return &tickwirev1.Event{Instrument: in.ID, VenueTimeNs: venueNs, IngestTimeNs: f.IngestNs,
		Body: &tickwirev1.Event_Book{Book: &tickwirev1.BookUpdate{Snapshot: snapshot, Bids: Proto(bids), Asks: Proto(asks)}}}
}

// TradeEvent returns a trade event.
func TradeEvent(in *Instrument, f *Frame, venueNs, price, size int64, side tickwirev1.Side, id string) *tickwirev1.Event {
	return &tickwirev1.Event{Instrument: in.ID, VenueTimeNs: venueNs, IngestTimeNs: f.IngestNs,
		Body: &tickwirev1.Event_Trade{Trade: &tickwirev1.Trade{Price: price, Size: size, Side: side, TradeId: id}}}
}

// QuoteEvent returns a best bid/offer event.
func QuoteEvent(in *Instrument, f *Frame, venueNs int64, bid, ask book.Level) *tickwirev1.Event {
	return &tickwirev1.Event{Instrument: in.ID, VenueTimeNs: venueNs, IngestTimeNs: f.IngestNs,
		Body: &tickwirev1.Event_Quote{Quote: &tickwirev1.Quote{BidPrice: bid.Price, BidSize: bid.Size, AskPrice: ask.Price, AskSize: ask.Size}}}
}

// Proto converts levels to their proto form, sharing one backing array.
func Proto(levels []book.Level) []*tickwirev1.Level {
	if len(levels) == 0 {
		return nil
	}
	backing := make([]tickwirev1.Level, len(levels))
	out := make([]*tickwirev1.Level, len(levels))
	for i, l := range levels {
		backing[i].Price, backing[i].Size = l.Price, l.Size
		out[i] = &backing[i]
	}
	return out
}

// Book is a venue book kept by a Handler: the levels the venue says it has, at the
// instrument's scales, and whether it is in sync with the venue.
type Book struct {
	book.Book
	// Synced: a snapshot arrived and every check since passed.
	Synced bool
	// Broken: the book was in sync once and lost it; its next snapshot restarts the
	// instrument with a new epoch (Core.Break).
	Broken bool
}

// Desync marks the book out of sync (it waits for a snapshot) and reports whether it was in sync.
func (b *Book) Desync() bool {
	was := b.Synced
	if was {
		b.Broken = true
	}
	b.Synced = false
	return was
}

// Resynced emits the events that (re)start an instrument's book from the levels now in b:
// InstrumentInfo if not sent yet, then the snapshot. After a break it first calls Core.Break,
// so that the snapshot opens the instrument's new epoch (a new epoch starts with a book
// snapshot; the reference data carries over).
func (c *Core) Resynced(in *Instrument, b *Book, f *Frame, venueNs int64, emit Emit) error {
	broken := b.Broken
	b.Synced, b.Broken = true, false
	if broken && in.announced {
		c.Break(in)
	}
	if err := c.Announce(in, f, false, emit); err != nil {
		return err
	}
	bids := append([]book.Level(nil), b.Bids()...)
	asks := append([]book.Level(nil), b.Asks()...)
	if b.Crossed() {
		c.Reject(f, in.ID, ReasonCrossed, fmt.Errorf("snapshot crossed: bid %d >= ask %d", bids[0].Price, asks[0].Price))
	}
	return c.Emit(emit, BookEvent(in, f, venueNs, true, bids, asks))
}

// SnapshotOf answers Handler.Snapshot from a book: InstrumentInfo, then the book if in sync.
func (c *Core) SnapshotOf(in *Instrument, b *Book, ingestNs int64, emit Emit) error {
	f := &Frame{IngestNs: ingestNs}
	if err := c.Announce(in, f, true, emit); err != nil {
		return err
	}
	if b == nil || !b.Synced {
		return nil
	}
	bids := append([]book.Level(nil), b.Bids()...)
	asks := append([]book.Level(nil), b.Asks()...)
	return c.Emit(emit, BookEvent(in, f, 0, true, bids, asks))
}

// Update collects one book update's levels, one per price and side, last write wins (a venue
// may name a price twice in one message; the normalized update names it once).
type Update struct {
	Bids, Asks []book.Level
}

// Set records the size of price on side (0 deletes).
func (u *Update) Set(side book.Side, price, size int64) {
	dst := &u.Asks
	if side == book.Bid {
		dst = &u.Bids
	}
	for i := range *dst {
		if (*dst)[i].Price == price {
			(*dst)[i].Size = size
			return
		}
	}
	*dst = append(*dst, book.Level{Price: price, Size: size})
}
