package file

import (
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"regexp"
	"strings"
	"time"
	_ "time/tzdata" // LOBSTER times are New York wall-clock times

	"github.com/tickwire/tickwire/internal/normalize"
	"github.com/tickwire/tickwire/internal/source"
	"github.com/tickwire/tickwire/pkg/book"
	tickwirev1 "github.com/tickwire/tickwire/pkg/proto/tickwire/v1"
)

// ---- FX quotes: timestamp,bid,ask ----

// fxLayouts are the timestamp forms accepted: ISO with offset (the TrueFX export rewritten by
// nautilus), and TrueFX's raw "20130101 22:00:00.295" (UTC).
var fxLayouts = []string{"2006-01-02 15:04:05.999999999-07:00", time.RFC3339Nano, "20060102 15:04:05.999999999", "2006-01-02 15:04:05.999999999"}

func parseFXTime(s string) (int64, error) {
	for _, l := range fxLayouts {
		if t, err := time.Parse(l, s); err == nil {
			return t.UnixNano(), nil
		}
	}
	return 0, fmt.Errorf("%w: timestamp %q", ErrRecord, s)
}

type fxReader struct {
	c    *csvFile
	core *source.Core
	in   *source.Instrument
	size int64
}

func openFX(cfg Config, logger *slog.Logger) (Reader, func() error, error) {
	venue, symbol, err := normalize.ParseInstrumentID(cfg.Instrument)
	if err != nil {
		return nil, nil, fmt.Errorf("file: fx-quotes needs --file-instrument venue:SYMBOL: %w", err)
	}
	c, err := openCSV(cfg.Paths[0])
	if err != nil {
		return nil, nil, err
	}
	if err := c.require("timestamp", "bid", "ask"); err != nil {
		_ = c.f.Close()
		return nil, nil, err
	}
	pd, _, err := c.prescan([]string{"bid", "ask"}, nil)
	if err != nil {
		_ = c.f.Close()
		return nil, nil, err
	}
	core := source.NewCore(venue, "file:"+string(cfg.Format), cfg.Specs, logger)
	in, err := core.Instruments().Define(symbol, nil, pd, 0)
	if err != nil {
		_ = c.f.Close()
		return nil, nil, err
	}
	size := cfg.FXSize
	if size <= 0 {
		size = 1
	}
	return &fxReader{c: c, core: core, in: in, size: size}, c.f.Close, nil
}

func (r *fxReader) Stats() *source.Stats { return r.core.Stats() }

func (r *fxReader) Next() (Batch, error) {
	for {
		rec, err := r.c.next()
		if err != nil && !errors.Is(err, ErrRecord) {
			return Batch{}, err
		}
		r.core.Stats().Frame()
		f := &source.Frame{N: r.c.line}
		if err != nil {
			r.core.Reject(f, r.in.ID, source.ReasonParse, err)
			continue
		}
		ts, err := parseFXTime(r.c.get(rec, "timestamp"))
		if err != nil {
			r.core.Reject(f, r.in.ID, source.ReasonParse, err)
			continue
		}
		bid, _, ok1 := r.core.Level(f, r.in, r.c.get(rec, "bid"), "0")
		ask, _, ok2 := r.core.Level(f, r.in, r.c.get(rec, "ask"), "0")
		if !ok1 || !ok2 {
			continue
		}
		col := &collect{}
		_ = r.core.Announce(r.in, f, false, col.emit)
		_ = r.core.Emit(col.emit, source.QuoteEvent(r.in, f, ts, book.Level{Price: bid, Size: r.size}, book.Level{Price: ask, Size: r.size}))
		return Batch{Events: col.evs, TsNs: ts}, nil
	}
}

// ---- LOBSTER level 1 ----

// LOBSTER writes prices as integers in units of 1/10000 of a dollar, and 9999999999 /
// -9999999999 for an empty ask / bid.
const (
	lobsterScale      = 4
	lobsterEmptyPrice = 9999999999
)

var lobsterName = regexp.MustCompile(`^([A-Za-z0-9.]+)_(\d{4}-\d{2}-\d{2})_`)

type lobsterReader struct {
	msg, ob  *csvFile
	core     *source.Core
	in       *source.Instrument
	midnight int64 // the trading day's midnight in New York, Unix ns
	last     [4]string
}

func openLobster(cfg Config, logger *slog.Logger) (Reader, func() error, error) {
	if len(cfg.Paths) != 2 {
		return nil, nil, fmt.Errorf("file: lobster-l1 takes the message file and the orderbook file")
	}
	msgPath, obPath := cfg.Paths[0], cfg.Paths[1]
	if strings.Contains(filepath.Base(msgPath), "_orderbook_") {
		msgPath, obPath = obPath, msgPath
	}
	m := lobsterName.FindStringSubmatch(filepath.Base(msgPath))
	if m == nil {
		return nil, nil, fmt.Errorf("file: %s: want LOBSTER's TICKER_YYYY-MM-DD_... file name", msgPath)
	}
	ny, err := time.LoadLocation("America/New_York")
	if err != nil {
		return nil, nil, fmt.Errorf("file: %w", err)
	}
	day, err := time.ParseInLocation("2006-01-02", m[2], ny)
	if err != nil {
		return nil, nil, fmt.Errorf("file: %s: %w", msgPath, err)
	}
	id := cfg.Instrument
	if id == "" {
		id = "lobster:" + m[1]
	}
	venue, symbol, err := normalize.ParseInstrumentID(id)
	if err != nil {
		return nil, nil, fmt.Errorf("file: %w", err)
	}
	msg, err := openLobsterCSV(msgPath, "Time", "Type", "OrderId", "Size", "Price", "Direction")
	if err != nil {
		return nil, nil, err
	}
	ob, err := openLobsterCSV(obPath, "BestAsk", "BestAskVolume", "BestBid", "BestBidVolume")
	if err != nil {
		_ = msg.f.Close()
		return nil, nil, err
	}
	closeBoth := func() error { return errors.Join(msg.f.Close(), ob.f.Close()) }
	core := source.NewCore(venue, "file:"+string(cfg.Format), cfg.Specs, logger)
	in, err := core.Instruments().Define(symbol, nil, lobsterScale, 0)
	if err != nil {
		_ = closeBoth()
		return nil, nil, err
	}
	return &lobsterReader{msg: msg, ob: ob, core: core, in: in, midnight: day.UnixNano()}, closeBoth, nil
}

// openLobsterCSV opens a LOBSTER file: with the header the sample files carry, or without one
// (LOBSTER's own files), naming the columns.
func openLobsterCSV(path string, cols ...string) (*csvFile, error) {
	c, err := openCSV(path)
	if err != nil {
		return nil, err
	}
	if c.require(cols...) == nil {
		return c, nil
	}
	if err := c.resetNoHeader(cols); err != nil {
		_ = c.f.Close()
		return nil, err
	}
	return c, nil
}

func (r *lobsterReader) Stats() *source.Stats { return r.core.Stats() }

// price converts a LOBSTER integer price to the instrument's scale.
func (r *lobsterReader) price(f *source.Frame, s string) (int64, bool) {
	v, err := normalize.ParseMantissa(s, 0)
	if err != nil {
		r.core.Reject(f, r.in.ID, normalize.Reason(err), err)
		return 0, false
	}
	if v >= lobsterEmptyPrice || v <= -lobsterEmptyPrice {
		return 0, true // empty side
	}
	m, err := normalize.ParseMantissa(normalize.FormatMantissa(v, lobsterScale), r.in.PriceScale)
	if err != nil {
		r.core.Reject(f, r.in.ID, normalize.Reason(err), err)
		return 0, false
	}
	return m, true
}

func (r *lobsterReader) Next() (Batch, error) {
	for {
		mrec, err1 := r.msg.next()
		orec, err2 := r.ob.next()
		if err1 != nil && !errors.Is(err1, ErrRecord) {
			return Batch{}, err1
		}
		if err2 != nil && !errors.Is(err2, ErrRecord) {
			return Batch{}, err2
		}
		r.core.Stats().Frame()
		f := &source.Frame{N: r.msg.line}
		if err := errors.Join(err1, err2); err != nil {
			r.core.Reject(f, r.in.ID, source.ReasonParse, err)
			continue
		}
		secs, err := normalize.ParseMantissa(truncateDecimals(r.msg.get(mrec, "Time"), 9), 9)
		if err != nil {
			r.core.Reject(f, r.in.ID, source.ReasonParse, fmt.Errorf("%w: Time: %v", ErrRecord, err))
			continue
		}
		ts := r.midnight + secs
		col := &collect{}
		_ = r.core.Announce(r.in, f, false, col.emit)
		switch r.msg.get(mrec, "Type") {
		case "4", "5": // visible / hidden execution
			p, ok := r.price(f, r.msg.get(mrec, "Price"))
			size, err := normalize.ParseMantissa(r.msg.get(mrec, "Size"), r.in.SizeScale)
			if !ok || err != nil || p <= 0 || size <= 0 {
				r.core.Reject(f, r.in.ID, source.ReasonSize, fmt.Errorf("%w: execution price %q size %q", source.ErrValue, r.msg.get(mrec, "Price"), r.msg.get(mrec, "Size")))
				continue
			}
			// Direction is the resting order's side: a sell order executed means a buyer took it.
			side := tickwirev1.Side_SIDE_SELL
			if r.msg.get(mrec, "Direction") == "-1" {
				side = tickwirev1.Side_SIDE_BUY
			}
			_ = r.core.Emit(col.emit, source.TradeEvent(r.in, f, ts, p, size, side, r.msg.get(mrec, "OrderId")))
		}
		cur := [4]string{r.ob.get(orec, "BestAsk"), r.ob.get(orec, "BestAskVolume"), r.ob.get(orec, "BestBid"), r.ob.get(orec, "BestBidVolume")}
		if cur != r.last {
			r.last = cur
			ap, ok1 := r.price(f, cur[0])
			bp, ok2 := r.price(f, cur[2])
			as, err3 := normalize.ParseMantissa(cur[1], r.in.SizeScale)
			bs, err4 := normalize.ParseMantissa(cur[3], r.in.SizeScale)
			if ok1 && ok2 && err3 == nil && err4 == nil {
				if ap == 0 {
					as = 0
				}
				if bp == 0 {
					bs = 0
				}
				_ = r.core.Emit(col.emit, source.QuoteEvent(r.in, f, ts, book.Level{Price: bp, Size: bs}, book.Level{Price: ap, Size: as}))
			} else {
				r.core.Reject(f, r.in.ID, source.ReasonParse, fmt.Errorf("%w: orderbook row %v", ErrRecord, cur))
			}
		}
		if len(col.evs) > 0 {
			return Batch{Events: col.evs, TsNs: ts}, nil
		}
	}
}

func truncateDecimals(s string, n int) string {
	if i := strings.IndexByte(s, '.'); i >= 0 && len(s)-i-1 > n {
		return s[:i+1+n]
	}
	return s
}
