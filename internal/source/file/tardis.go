package file

import (
	"errors"
	"fmt"
	"io"
	"log/slog"

	"github.com/tickwire/tickwire/internal/source"
	"github.com/tickwire/tickwire/pkg/book"
	tickwirev1 "github.com/tickwire/tickwire/pkg/proto/tickwire/v1"
)

// tardisReader reads the tardis.dev CSV datasets. Instrument ids are "<exchange>:<symbol>"
// (deribit:BTC-PERPETUAL, binance-futures:BTCUSDT); timestamp is the venue time, and
// local_timestamp (tardis' receive time, both in microseconds) paces the replay.
type tardisReader struct {
	format Format
	c      *csvFile
	specs  source.Specs
	logger *slog.Logger
	pd, sd int32
	core   *source.Core // per exchange, created on the first row
	depth  int          // book_snapshot_N
	books  map[string]*source.Book
	// incremental_book_L2 grouping: a row read ahead that starts the next group.
	pending []string
}

func openTardis(cfg Config, logger *slog.Logger) (Reader, func() error, error) {
	c, err := openCSV(cfg.Paths[0])
	if err != nil {
		return nil, nil, err
	}
	t := &tardisReader{format: cfg.Format, c: c, specs: cfg.Specs, logger: logger, books: map[string]*source.Book{}}
	cols := []string{"exchange", "symbol", "timestamp", "local_timestamp"}
	var prices, sizes []string
	switch cfg.Format {
	case FormatTardisBookL2:
		cols = append(cols, "is_snapshot", "side", "price", "amount")
		prices, sizes = []string{"price"}, []string{"amount"}
	case FormatTardisTrades:
		cols = append(cols, "id", "side", "price", "amount")
		prices, sizes = []string{"price"}, []string{"amount"}
	case FormatTardisQuotes:
		cols = append(cols, "ask_amount", "ask_price", "bid_price", "bid_amount")
		prices, sizes = []string{"ask_price", "bid_price"}, []string{"ask_amount", "bid_amount"}
	case FormatTardisSnap:
		for t.depth = 0; ; t.depth++ {
			if _, ok := c.header[fmt.Sprintf("asks[%d].price", t.depth)]; !ok {
				break
			}
			for _, s := range []string{"asks", "bids"} {
				prices = append(prices, fmt.Sprintf("%s[%d].price", s, t.depth))
				sizes = append(sizes, fmt.Sprintf("%s[%d].amount", s, t.depth))
			}
		}
		if t.depth == 0 {
			_ = c.f.Close()
			return nil, nil, fmt.Errorf("file: %s: no asks[0].price column", c.f.Name())
		}
	}
	if err := c.require(cols...); err != nil {
		_ = c.f.Close()
		return nil, nil, err
	}
	// The venue of the ids is the file's exchange (one per tardis file).
	exchange := "tardis"
	if rec, err := c.next(); err == nil {
		exchange = c.get(rec, "exchange")
	}
	if err := c.reset(); err != nil {
		_ = c.f.Close()
		return nil, nil, err
	}
	if t.pd, t.sd, err = c.prescan(prices, sizes); err != nil {
		_ = c.f.Close()
		return nil, nil, err
	}
	t.core = source.NewCore(exchange, "file:"+string(cfg.Format), cfg.Specs, logger)
	return t, c.f.Close, nil
}

func (t *tardisReader) Stats() *source.Stats { return t.core.Stats() }

// SetBreakHandler implements ingest.BreakReporter (a new snapshot block resets a book).
func (t *tardisReader) SetBreakHandler(f func(string)) { t.core.SetBreakHandler(f) }

func (t *tardisReader) frame() *source.Frame { return &source.Frame{N: t.c.line} }

// row returns the next row (pending first), skipping and counting malformed ones.
func (t *tardisReader) row() ([]string, error) {
	if t.pending != nil {
		r := t.pending
		t.pending = nil
		return r, nil
	}
	for {
		rec, err := t.c.next()
		if errors.Is(err, ErrRecord) {
			t.Stats().Frame()
			t.core.Reject(t.frame(), "", source.ReasonParse, err)
			continue
		}
		if err != nil {
			return nil, err
		}
		t.Stats().Frame()
		return append([]string(nil), rec...), nil
	}
}

// instrument returns the row's instrument, defining it (and the exchange's core) on first use.
func (t *tardisReader) instrument(rec []string) *source.Instrument {
	exchange, symbol := t.c.get(rec, "exchange"), t.c.get(rec, "symbol")
	if exchange != t.core.Venue() {
		t.core.Reject(t.frame(), "", source.ReasonUnknown, fmt.Errorf("%w: exchange %q in a file of %q", source.ErrUnknownSymbol, exchange, t.core.Venue()))
		return nil
	}
	in, err := t.core.Instruments().Define(symbol, nil, t.pd, t.sd)
	if err != nil {
		t.core.Reject(t.frame(), "", source.ReasonUnknown, err)
		return nil
	}
	return in
}

func (t *tardisReader) Next() (Batch, error) {
	for {
		rec, err := t.row()
		if err != nil {
			return Batch{}, err
		}
		in := t.instrument(rec)
		if in == nil {
			continue
		}
		var b Batch
		switch t.format {
		case FormatTardisBookL2:
			b, err = t.bookL2(rec, in)
		case FormatTardisSnap:
			b, err = t.snapshot(rec, in)
		case FormatTardisTrades:
			b, err = t.trade(rec, in)
		case FormatTardisQuotes:
			b, err = t.quote(rec, in)
		}
		if err != nil {
			return Batch{}, err
		}
		if len(b.Events) > 0 {
			return b, nil
		}
	}
}

// collect is an emit that gathers events into a batch.
type collect struct{ evs []*tickwirev1.Event }

func (c *collect) emit(ev *tickwirev1.Event) error {
	c.evs = append(c.evs, ev)
	return nil
}

func (t *tardisReader) announce(in *source.Instrument, f *source.Frame, col *collect) {
	_ = t.core.Announce(in, f, false, col.emit)
}

// bookL2 groups consecutive rows of one instrument with the same local_timestamp and
// is_snapshot into one update; a snapshot block replaces the book (after updates: a reset,
// which restarts the instrument with a new epoch).
func (t *tardisReader) bookL2(first []string, in *source.Instrument) (Batch, error) {
	f := t.frame()
	key := func(r []string) string {
		return t.c.get(r, "symbol") + "|" + t.c.get(r, "local_timestamp") + "|" + t.c.get(r, "is_snapshot")
	}
	k := key(first)
	rows := [][]string{first}
	for {
		rec, err := t.row()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return Batch{}, err
		}
		if key(rec) != k {
			t.pending = rec
			break
		}
		rows = append(rows, rec)
	}
	snapshot := t.c.get(first, "is_snapshot") == "true"
	venueNs, localNs := micros(t.c.get(first, "timestamp")), micros(t.c.get(first, "local_timestamp"))
	var upd source.Update
	for _, r := range rows {
		side := book.Bid
		switch t.c.get(r, "side") {
		case "bid", "buy":
		case "ask", "sell":
			side = book.Ask
		default:
			t.core.Reject(f, in.ID, source.ReasonParse, fmt.Errorf("%w: side %q", ErrRecord, t.c.get(r, "side")))
			return Batch{}, nil
		}
		p, s, ok := t.core.Level(f, in, t.c.get(r, "price"), t.c.get(r, "amount"))
		if !ok {
			return Batch{}, nil
		}
		upd.Set(side, p, s)
	}
	b := t.books[in.ID]
	if b == nil {
		b = &source.Book{}
		t.books[in.ID] = b
	}
	col := &collect{}
	if snapshot {
		if b.Synced {
			b.Desync() // a new snapshot block after updates: the venue feed restarted
		}
		b.Replace(upd.Bids, upd.Asks)
		_ = t.core.Resynced(in, b, f, venueNs, col.emit)
		return Batch{Events: col.evs, TsNs: localNs}, nil
	}
	if !b.Synced {
		t.core.Drop(source.ReasonUnsynced)
		return Batch{}, nil
	}
	b.Apply(upd.Bids, upd.Asks)
	if b.Crossed() {
		t.core.Reject(f, in.ID, source.ReasonCrossed, fmt.Errorf("book crossed"))
	}
	_ = t.core.Emit(col.emit, source.BookEvent(in, f, venueNs, false, upd.Bids, upd.Asks))
	return Batch{Events: col.evs, TsNs: localNs}, nil
}

// snapshot turns one book_snapshot_N row into a book snapshot of the top N levels.
func (t *tardisReader) snapshot(rec []string, in *source.Instrument) (Batch, error) {
	f := t.frame()
	var bids, asks []book.Level
	for i := 0; i < t.depth; i++ {
		for _, x := range []struct {
			side string
			dst  *[]book.Level
		}{{"asks", &asks}, {"bids", &bids}} {
			ps, ss := t.c.get(rec, fmt.Sprintf("%s[%d].price", x.side, i)), t.c.get(rec, fmt.Sprintf("%s[%d].amount", x.side, i))
			if ps == "" && ss == "" {
				continue // fewer levels than N
			}
			p, s, ok := t.core.Level(f, in, ps, ss)
			if !ok {
				return Batch{}, nil
			}
			if s > 0 {
				*x.dst = append(*x.dst, book.Level{Price: p, Size: s})
			}
		}
	}
	col := &collect{}
	t.announce(in, f, col)
	var bk book.Book
	bk.Replace(bids, asks)
	if bk.Crossed() {
		t.core.Reject(f, in.ID, source.ReasonCrossed, fmt.Errorf("snapshot crossed"))
	}
	_ = t.core.Emit(col.emit, source.BookEvent(in, f, micros(t.c.get(rec, "timestamp")), true, bids, asks))
	return Batch{Events: col.evs, TsNs: micros(t.c.get(rec, "local_timestamp"))}, nil
}

func (t *tardisReader) trade(rec []string, in *source.Instrument) (Batch, error) {
	f := t.frame()
	p, s, ok := t.core.Trade(f, in, t.c.get(rec, "price"), t.c.get(rec, "amount"))
	if !ok {
		return Batch{}, nil
	}
	side := tickwirev1.Side_SIDE_UNSPECIFIED
	switch t.c.get(rec, "side") {
	case "buy":
		side = tickwirev1.Side_SIDE_BUY
	case "sell":
		side = tickwirev1.Side_SIDE_SELL
	}
	col := &collect{}
	t.announce(in, f, col)
	_ = t.core.Emit(col.emit, source.TradeEvent(in, f, micros(t.c.get(rec, "timestamp")), p, s, side, t.c.get(rec, "id")))
	return Batch{Events: col.evs, TsNs: micros(t.c.get(rec, "local_timestamp"))}, nil
}

// quoteSide converts one side of a quote; both values empty mean an empty side.
func (t *tardisReader) quoteSide(f *source.Frame, in *source.Instrument, price, size string) (book.Level, bool) {
	if price == "" && size == "" {
		return book.Level{}, true
	}
	p, s, ok := t.core.Level(f, in, price, size)
	return book.Level{Price: p, Size: s}, ok
}

func (t *tardisReader) quote(rec []string, in *source.Instrument) (Batch, error) {
	f := t.frame()
	bid, ok1 := t.quoteSide(f, in, t.c.get(rec, "bid_price"), t.c.get(rec, "bid_amount"))
	ask, ok2 := t.quoteSide(f, in, t.c.get(rec, "ask_price"), t.c.get(rec, "ask_amount"))
	if !ok1 || !ok2 {
		return Batch{}, nil
	}
	col := &collect{}
	t.announce(in, f, col)
	_ = t.core.Emit(col.emit, source.QuoteEvent(in, f, micros(t.c.get(rec, "timestamp")), bid, ask))
	return Batch{Events: col.evs, TsNs: micros(t.c.get(rec, "local_timestamp"))}, nil
}
