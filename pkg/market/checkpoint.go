package market

import (
	"fmt"
	"slices"

	"github.com/tickwire/tickwire/pkg/book"
	pb "github.com/tickwire/tickwire/pkg/proto/tickwire/v1"
)

// Shape returns c (defaults applied) as the checkpoint's MarketShape.
func (c Config) Shape() *pb.MarketShape {
	c = c.WithDefaults()
	return &pb.MarketShape{Depths: slices.Clone(c.Depths), TradeHistory: uint32(c.TradeHistory),
		CandleIntervals: slices.Clone(c.CandleIntervals), CandleHistory: uint32(c.CandleHistory)}
}

// SameShape reports whether a checkpoint of shape sh can be restored under c.
func (c Config) SameShape(sh *pb.MarketShape) bool {
	c = c.WithDefaults()
	return sh != nil && slices.Equal(c.Depths, sh.Depths) && slices.Equal(c.CandleIntervals, sh.CandleIntervals) &&
		uint32(c.TradeHistory) == sh.TradeHistory && uint32(c.CandleHistory) == sh.CandleHistory
}

// Checkpoint returns everything s holds, for RestoreState. The result shares the immutable
// records (reference data, trades, candles, statistics) with s, which never modifies them once
// kept; its levels and sequences are copies. Call it on s's goroutine.
func (s *State) Checkpoint() *pb.InstrumentState {
	cs := &pb.InstrumentState{
		Id: s.id, Info: s.info, Epoch: s.epoch, Seq: s.seq, BookSynced: s.bookSynced,
		Bids: fromLevels(s.book.Bids()), Asks: fromLevels(s.book.Asks()),
		Quote: s.quote.proto(), Stats: s.stats, NotionalHi: s.notional.hi, NotionalLo: s.notional.lo,
		Last: slices.Clone(s.last), LastIngest: slices.Clone(s.lastIngest), BookHash: slices.Clone(s.bookHash),
		LastTimeNs: s.lastTimeNs, Gaps: s.gaps,
	}
	cs.Trades = make([]*pb.TradeRecord, 0, s.trades.len())
	for i := range s.trades.len() {
		cs.Trades = append(cs.Trades, s.trades.at(i))
	}
	cs.Candles = make([]*pb.CandleList, len(s.candles))
	for i := range s.candles {
		l := &pb.CandleList{Candles: make([]*pb.Candle, 0, s.candles[i].len())}
		for j := range s.candles[i].len() {
			l.Candles = append(l.Candles, s.candles[i].at(j))
		}
		cs.Candles[i] = l
	}
	return cs
}

// RestoreState returns the state a Checkpoint holds, under cfg (which must be the config of
// the state checkpointed: see Config.SameShape). It refuses a checkpoint whose parts do not fit
// cfg. The state takes cs's records: do not modify cs afterwards.
func RestoreState(cfg Config, cs *pb.InstrumentState) (*State, error) {
	s := NewState(cs.GetId(), cfg)
	cfg = s.cfg
	n := cfg.NumStreams()
	switch {
	case cs.GetId() == "":
		return nil, fmt.Errorf("market: restore: no instrument id")
	case len(cs.Last) != n || len(cs.LastIngest) != n:
		return nil, fmt.Errorf("market: restore %s: %d/%d stream positions, want %d", cs.Id, len(cs.Last), len(cs.LastIngest), n)
	case len(cs.BookHash) != len(cfg.Depths):
		return nil, fmt.Errorf("market: restore %s: %d book hashes, want %d", cs.Id, len(cs.BookHash), len(cfg.Depths))
	case len(cs.Candles) != len(cfg.CandleIntervals):
		return nil, fmt.Errorf("market: restore %s: %d candle series, want %d", cs.Id, len(cs.Candles), len(cfg.CandleIntervals))
	case len(cs.Trades) > cfg.TradeHistory:
		return nil, fmt.Errorf("market: restore %s: %d trades, more than the %d kept", cs.Id, len(cs.Trades), cfg.TradeHistory)
	case cs.Epoch == 0 && cs.Seq != 0:
		return nil, fmt.Errorf("market: restore %s: seq %d in epoch 0", cs.Id, cs.Seq)
	}
	for _, side := range [][]*pb.Level{cs.Bids, cs.Asks} {
		for _, l := range side {
			if l.GetPrice() <= 0 || l.GetSize() <= 0 {
				return nil, fmt.Errorf("market: restore %s: book level %d@%d", cs.Id, l.GetSize(), l.GetPrice())
			}
		}
	}
	for _, c := range cs.Candles {
		if len(c.GetCandles()) > cfg.CandleHistory {
			return nil, fmt.Errorf("market: restore %s: %d candles, more than the %d kept", cs.Id, len(c.GetCandles()), cfg.CandleHistory)
		}
	}
	s.info, s.epoch, s.seq, s.bookSynced = cs.Info, cs.Epoch, cs.Seq, cs.BookSynced
	for _, l := range cs.Bids {
		s.book.SetLevel(book.Bid, book.Level{Price: l.Price, Size: l.Size, Venues: l.Venues})
	}
	for _, l := range cs.Asks {
		s.book.SetLevel(book.Ask, book.Level{Price: l.Price, Size: l.Size, Venues: l.Venues})
	}
	s.quote = quoteOf(cs.Quote)
	for _, t := range cs.Trades {
		s.trades.push(t)
	}
	for i, c := range cs.Candles {
		for _, bar := range c.Candles {
			s.candles[i].push(bar)
		}
	}
	s.stats = cs.Stats
	s.notional = uint128{hi: cs.NotionalHi, lo: cs.NotionalLo}
	copy(s.last, cs.Last)
	copy(s.lastIngest, cs.LastIngest)
	copy(s.bookHash, cs.BookHash)
	s.lastTimeNs, s.gaps = cs.LastTimeNs, cs.Gaps
	return s, nil
}
