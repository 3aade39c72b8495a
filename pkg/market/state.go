// Package market is the instrument state machine shared by the feed server and its clients.
//
// The server keeps a State per instrument and applies normalized events to it; each event yields
// at most one Delta per stream (an (instrument, channel) pair, and for the book one per offered
// depth). A client keeps a Replica built from a Snapshot and the Deltas after it, using the same
// book code, so that a replica that accepted every delta holds exactly what the server holds.
//
// Streams are chained: a Delta names the seq of the previous delta on the same stream
// (prev_seq), and follows on from a client's position p when prev_seq <= p < seq. That lets a
// stream skip the events that do not change it while a client can still prove it missed nothing.
package market

import (
	"fmt"
	"hash/crc32"
	"math/bits"

	"github.com/tickwire/tickwire/pkg/book"
	pb "github.com/tickwire/tickwire/pkg/proto/tickwire/v1"
)

const bookChecksumDepth = book.ChecksumDepth

// Stream indexes: the fixed channels, then one book stream per offered depth (StreamBook0 + the
// depth's index in Config.Depths). Each stream has its own delta chain.
const (
	StreamQuote = iota
	StreamTrades
	StreamCandles
	StreamStats
	StreamBook0
)

// StreamOf returns the stream index of channel ch (for the book, at the depth with index
// depthIndex in Config.Depths).
func StreamOf(ch pb.Channel, depthIndex int) int {
	switch ch {
	case pb.Channel_CHANNEL_QUOTE:
		return StreamQuote
	case pb.Channel_CHANNEL_TRADES:
		return StreamTrades
	case pb.Channel_CHANNEL_CANDLES:
		return StreamCandles
	case pb.Channel_CHANNEL_STATS:
		return StreamStats
	}
	return StreamBook0 + depthIndex
}

// NumStreams returns how many streams an instrument has under this config.
func (c Config) NumStreams() int { return StreamBook0 + len(c.WithDefaults().Depths) }

// State is the feed's state of one instrument. It is owned by one goroutine; it is not safe for
// concurrent use.
type State struct {
	cfg  Config
	id   string
	info *pb.InstrumentInfo

	epoch, seq uint64
	// bookSynced is false until a book snapshot event arrives in the current epoch (or after a
	// gap): until then the book is not served.
	bookSynced bool
	book       book.Book
	quote      quote
	trades     ring[*pb.TradeRecord]
	candles    []ring[*pb.Candle] // per cfg.CandleIntervals
	stats      *pb.Stats
	notional   uint128 // sum of price*size this session, for VWAP

	// last holds the seq of the latest delta per stream: fixed streams, then one per depth.
	last []uint64
	// lastIngest holds the ingest time of the delta at last[i]; 0 while last[i] only chains
	// to seq-1 (no delta of this state).
	lastIngest []int64

	scratchBids, scratchAsks []book.Level
	scratchDiff              []book.Level // one side's changes, before they become pb.Levels
	scratchSum               []byte       // checksum input, reused
	bookHash                 []uint64     // per offered depth: the full-depth hash of its view (book.Hash)
	lastTimeNs               int64        // latest event time applied
	gaps                     uint64
}

// NewState returns the empty state of instrument id. cfg must be valid.
func NewState(id string, cfg Config) *State {
	cfg = cfg.WithDefaults()
	s := &State{
		cfg:     cfg,
		id:      id,
		trades:  newRing[*pb.TradeRecord](cfg.TradeHistory),
		candles: make([]ring[*pb.Candle], len(cfg.CandleIntervals)),
		last:    make([]uint64, cfg.NumStreams()),

		lastIngest: make([]int64, cfg.NumStreams()),
		bookHash:   make([]uint64, len(cfg.Depths)),
	}
	for i := range s.candles {
		s.candles[i] = newRing[*pb.Candle](cfg.CandleHistory)
	}
	return s
}

// Config returns the state's config, defaults applied.
func (s *State) Config() Config { return s.cfg }

// ID returns the instrument id.
func (s *State) ID() string { return s.id }

// Info returns the latest reference data, or nil before any arrived.
func (s *State) Info() *pb.InstrumentInfo { return s.info }

// Position returns the epoch and seq of the last applied event.
func (s *State) Position() (epoch, seq uint64) { return s.epoch, s.seq }

// BookSynced reports whether the book is whole (a book snapshot arrived since the epoch began
// and no event was missed since).
func (s *State) BookSynced() bool { return s.bookSynced }

// resetHistory forgets trades, candles and session statistics.
func (s *State) resetHistory() {
	s.trades = newRing[*pb.TradeRecord](s.cfg.TradeHistory)
	for i := range s.candles {
		s.candles[i] = newRing[*pb.Candle](s.cfg.CandleHistory)
	}
	s.stats = nil
	s.notional = uint128{}
	s.lastTimeNs = 0
}

// LastDeltaSeq returns the seq of the latest delta on stream i in the current epoch (0 if none).
func (s *State) LastDeltaSeq(i int) uint64 { return s.last[i] }

// Gaps returns how many times an event did not follow its predecessor within an epoch.
func (s *State) Gaps() uint64 { return s.gaps }

// Book returns the full book. Do not modify it.
func (s *State) Book() *book.Book { return &s.book }

// Result is what one event changed. Nil deltas are streams the event did not change.
type Result struct {
	// NewEpoch: the event began a new epoch. Everything clients hold is void: send every
	// subscriber fresh snapshots (their deltas below are not to be sent).
	NewEpoch bool
	// BookReset: the book became whole again after being unsynced (first book snapshot of an
	// epoch, or after a gap). Book subscribers need a fresh snapshot instead of a delta.
	BookReset bool
	// Gap: the event did not follow its predecessor; it was applied anyway, and the book is
	// unsynced until the next book snapshot event.
	Gap bool

	Quote, Trades, Candles, Stats *pb.Delta
	// Book has one entry per cfg.Depths.
	Book []*pb.Delta

	// What the quote stream held before Quote: the base of its compact form.
	quoteBefore       quote
	quoteIngestBefore int64
}

// CompactQuote fills c with the compact form of r.Quote (all but the handle), relative to the
// quote and ingest time the stream held before it; it returns false when the event changed no
// quote.
func (r *Result) CompactQuote(c *pb.CompactQuote) bool {
	d := r.Quote
	if d == nil {
		return false
	}
	q := d.GetQuote()
	*c = pb.CompactQuote{
		Handle:           d.Handle,
		Seq:              d.Seq,
		SeqStep:          d.Seq - d.PrevSeq,
		IngestTimeStepUs: micros(d.IngestTimeNs) - micros(r.quoteIngestBefore),
		VenueLagUs:       micros(d.IngestTimeNs) - micros(d.VenueTimeNs),
		BidPriceChange:   q.GetBidPrice() - r.quoteBefore.bidPrice,
		BidSizeChange:    q.GetBidSize() - r.quoteBefore.bidSize,
		AskPriceChange:   q.GetAskPrice() - r.quoteBefore.askPrice,
		AskSizeChange:    q.GetAskSize() - r.quoteBefore.askSize,
	}
	return true
}

// Apply applies one event. It returns ErrStaleEvent for an event at or before the current
// position in the same epoch, or from an older epoch, and ErrBadEvent for an invalid one;
// neither changes the state.
func (s *State) Apply(ev *pb.Event) (*Result, error) {
	if ev.GetInstrument() != s.id {
		return nil, fmt.Errorf("%w: instrument %q sent to state of %q", ErrBadEvent, ev.GetInstrument(), s.id)
	}
	if ev.GetEpoch() == 0 || ev.GetSeq() == 0 {
		return nil, fmt.Errorf("%w: %s zero epoch or seq", ErrBadEvent, s.id)
	}
	if err := checkBody(ev); err != nil {
		return nil, err
	}
	res := &Result{}
	switch {
	case ev.Epoch < s.epoch || (ev.Epoch == s.epoch && ev.Seq <= s.seq):
		return nil, fmt.Errorf("%w: %s at %d/%d, have %d/%d", ErrStaleEvent, s.id, ev.Epoch, ev.Seq, s.epoch, s.seq)
	case ev.Epoch > s.epoch:
		res.NewEpoch = s.epoch != 0
		s.epoch = ev.Epoch
		s.book.Reset()
		s.bookSynced = false
		s.quote = quote{}
		if eventTimeNs(ev) < s.lastTimeNs {
			// Time went backwards (a replay sought back): trades, candles and statistics from
			// the later run are not history of this one.
			s.resetHistory()
		}
		// Joining an epoch after its start (history cut by retention), nothing is known of the
		// streams before this event: chain them to seq-1 so that a client positioned earlier
		// sees a gap instead of a false continuation.
		for i := range s.last {
			s.last[i] = ev.Seq - 1
		}
		clear(s.lastIngest)
	case ev.Seq != s.seq+1:
		res.Gap = true
		s.gaps++
		s.bookSynced = false
		// Any stream may have changed in the missed events: chain to just before this one, so
		// that every client of every stream resyncs instead of silently missing them.
		for i := range s.last {
			s.last[i] = ev.Seq - 1
		}
		clear(s.lastIngest)
	}
	s.seq = ev.Seq
	s.lastTimeNs = max(s.lastTimeNs, eventTimeNs(ev))

	switch b := ev.Body.(type) {
	case *pb.Event_Info:
		s.info = b.Info
	case *pb.Event_Book:
		s.applyBook(ev, b.Book, res)
	case *pb.Event_Quote:
		if !s.bookSynced || s.book.Len(book.Bid)+s.book.Len(book.Ask) == 0 {
			s.setQuote(ev, quoteOf(b.Quote), res)
		}
	case *pb.Event_Trade:
		s.applyTrade(ev, b.Trade, res)
	case *pb.Event_Stats:
		s.applySessionStats(ev, b.Stats, res)
	}
	return res, nil
}

// applySessionStats adopts a replay chain's session statistics when the state has none for that
// session (a page joining the replay); a state that has them keeps its own.
func (s *State) applySessionStats(ev *pb.Event, ss *pb.SessionStats, res *Result) {
	in := ss.GetStats()
	if s.stats != nil && s.stats.SessionStartS >= in.GetSessionStartS() {
		return
	}
	s.stats = cloneStats(in)
	s.notional = uint128{hi: ss.GetNotionalHi(), lo: ss.GetNotionalLo()}
	sd := s.newDelta(ev, StreamStats)
	sd.Body = &pb.Delta_Stats{Stats: s.stats}
	res.Stats = sd
}

// SessionStats returns the state's session statistics as a SessionStats event body (nil when
// it has none): what a replay chain's start carries (internal/replay).
func (s *State) SessionStats() *pb.SessionStats {
	if s.stats == nil {
		return nil
	}
	return &pb.SessionStats{Stats: cloneStats(s.stats), NotionalHi: s.notional.hi, NotionalLo: s.notional.lo}
}

// ForgetStats drops the state's session statistics, keeping everything else: a replay's cursor
// calls it at the window's start, so that the statistics it holds at a later time are those of
// a session played from the start.
func (s *State) ForgetStats() {
	s.stats = nil
	s.notional = uint128{}
}

func checkBody(ev *pb.Event) error {
	switch b := ev.Body.(type) {
	case *pb.Event_Info:
		if b.Info == nil {
			return fmt.Errorf("%w: %s empty info", ErrBadEvent, ev.Instrument)
		}
	case *pb.Event_Book:
		if b.Book == nil {
			return fmt.Errorf("%w: %s empty book update", ErrBadEvent, ev.Instrument)
		}
		for _, side := range [][]*pb.Level{b.Book.Bids, b.Book.Asks} {
			for _, l := range side {
				if l.GetPrice() <= 0 || l.GetSize() < 0 || (b.Book.Snapshot && l.GetSize() == 0) {
					return fmt.Errorf("%w: %s book level %d@%d", ErrBadEvent, ev.Instrument, l.GetSize(), l.GetPrice())
				}
			}
		}
	case *pb.Event_Quote:
		q := b.Quote
		if q == nil || q.BidSize < 0 || q.AskSize < 0 || q.BidPrice < 0 || q.AskPrice < 0 {
			return fmt.Errorf("%w: %s bad quote", ErrBadEvent, ev.Instrument)
		}
	case *pb.Event_Trade:
		if b.Trade == nil || b.Trade.Price <= 0 || b.Trade.Size <= 0 {
			return fmt.Errorf("%w: %s bad trade", ErrBadEvent, ev.Instrument)
		}
	case *pb.Event_Stats:
		st := b.Stats.GetStats()
		if st == nil || st.Volume <= 0 || st.Low <= 0 || st.Low > st.High || st.TradeCount == 0 {
			return fmt.Errorf("%w: %s bad session stats", ErrBadEvent, ev.Instrument)
		}
	default:
		return fmt.Errorf("%w: %s event without body", ErrBadEvent, ev.Instrument)
	}
	return nil
}

func toLevels(dst []book.Level, src []*pb.Level) []book.Level {
	for _, l := range src {
		dst = append(dst, book.Level{Price: l.Price, Size: l.Size, Venues: l.Venues})
	}
	return dst
}

func (s *State) applyBook(ev *pb.Event, u *pb.BookUpdate, res *Result) {
	maxDepth := int(s.cfg.Depths[len(s.cfg.Depths)-1])
	wasSynced := s.bookSynced
	// Keep the views before the change, to send each depth only what changed in its view.
	s.scratchBids = append(s.scratchBids[:0], s.book.Top(book.Bid, maxDepth)...)
	s.scratchAsks = append(s.scratchAsks[:0], s.book.Top(book.Ask, maxDepth)...)
	if u.Snapshot {
		s.book.Reset()
		s.bookSynced = true
	}
	for _, l := range u.Bids {
		s.book.SetLevel(book.Bid, book.Level{Price: l.Price, Size: l.Size, Venues: l.Venues})
	}
	for _, l := range u.Asks {
		s.book.SetLevel(book.Ask, book.Level{Price: l.Price, Size: l.Size, Venues: l.Venues})
	}
	if !s.bookSynced {
		return
	}
	if !wasSynced {
		res.BookReset = true
	}
	res.Book = make([]*pb.Delta, len(s.cfg.Depths))
	sumDepth, sum := -1, uint32(0) // depths with the same checksum depth share one checksum
	for i, d := range s.cfg.Depths {
		s.scratchDiff = book.Diff(s.scratchDiff[:0], book.Bid, topOf(s.scratchBids, int(d)), s.book.Top(book.Bid, int(d)))
		nBids := len(s.scratchDiff)
		s.scratchDiff = book.Diff(s.scratchDiff, book.Ask, topOf(s.scratchAsks, int(d)), s.book.Top(book.Ask, int(d)))
		if len(s.scratchDiff) == 0 && wasSynced {
			continue
		}
		if wasSynced { // from the view's diff just made: O(levels changed)
			s.bookHash[i] += book.HashChange(book.Bid, topOf(s.scratchBids, int(d)), s.scratchDiff[:nBids]) +
				book.HashChange(book.Ask, topOf(s.scratchAsks, int(d)), s.scratchDiff[nBids:])
		} else {
			s.bookHash[i] = book.Hash(s.book.Top(book.Bid, int(d)), s.book.Top(book.Ask, int(d)))
		}
		if k := ChecksumDepth(d); k != sumDepth {
			s.scratchSum = book.AppendChecksumInput(s.scratchSum[:0], s.book.Top(book.Bid, k), s.book.Top(book.Ask, k))
			sumDepth, sum = k, crc32.ChecksumIEEE(s.scratchSum)
		}
		delta := s.newDelta(ev, StreamBook0+i)
		delta.Checksum = sum
		delta.BookHash = s.bookHash[i]
		delta.Body = &pb.Delta_Book{Book: &pb.BookLevels{Depth: d, Bids: fromLevels(s.scratchDiff[:nBids]),
			Asks: fromLevels(s.scratchDiff[nBids:])}}
		res.Book[i] = delta
	}
	s.setQuote(ev, s.bookQuote(), res)
}

func topOf(levels []book.Level, n int) []book.Level {
	if n < len(levels) {
		return levels[:n]
	}
	return levels
}

func fromLevels(src []book.Level) []*pb.Level {
	if len(src) == 0 {
		return nil
	}
	out := make([]*pb.Level, len(src))
	backing := make([]pb.Level, len(src))
	for i, l := range src {
		backing[i].Price, backing[i].Size, backing[i].Venues = l.Price, l.Size, l.Venues
		out[i] = &backing[i]
	}
	return out
}

func (s *State) bookQuote() quote {
	var q quote
	if l, ok := s.book.Best(book.Bid); ok {
		q.bidPrice, q.bidSize = l.Price, l.Size
	}
	if l, ok := s.book.Best(book.Ask); ok {
		q.askPrice, q.askSize = l.Price, l.Size
	}
	return q
}

// quote is pb.Quote as a comparable value.
type quote struct{ bidPrice, bidSize, askPrice, askSize int64 }

func quoteOf(q *pb.Quote) quote {
	return quote{q.GetBidPrice(), q.GetBidSize(), q.GetAskPrice(), q.GetAskSize()}
}

func (q quote) proto() *pb.Quote {
	return &pb.Quote{BidPrice: q.bidPrice, BidSize: q.bidSize, AskPrice: q.askPrice, AskSize: q.askSize}
}

func (s *State) setQuote(ev *pb.Event, q quote, res *Result) {
	if q == s.quote {
		return
	}
	res.quoteBefore, res.quoteIngestBefore = s.quote, s.lastIngest[StreamQuote]
	s.quote = q
	d := s.newDelta(ev, StreamQuote)
	d.Body = &pb.Delta_Quote{Quote: q.proto()}
	res.Quote = d
}

// eventTimeS is the event's time in Unix seconds: venue time, or ingest time when unknown.
func eventTimeNs(ev *pb.Event) int64 {
	if ev.VenueTimeNs > 0 {
		return ev.VenueTimeNs
	}
	return ev.IngestTimeNs
}

func (s *State) applyTrade(ev *pb.Event, t *pb.Trade, res *Result) {
	if t.History && s.holdsTrade(ev.VenueTimeNs, t) {
		// The tape has it already: a venue's recent trades sent again at a reconnect, or a
		// replay chain restarting where a watcher's tape has that run's trades. No delta.
		return
	}
	rec := &pb.TradeRecord{Trade: t, Seq: ev.Seq, VenueTimeNs: ev.VenueTimeNs}
	s.trades.push(rec)
	d := s.newDelta(ev, StreamTrades)
	d.Body = &pb.Delta_Trade{Trade: t}
	res.Trades = d
	if t.History {
		return // on the tape, but not a new trade: candles and stats do not count it
	}

	ts := floorDiv(eventTimeNs(ev), 1e9)
	changed := make([]*pb.Candle, 0, len(s.candles))
	for i, iv := range s.cfg.CandleIntervals {
		if c := updateCandles(&s.candles[i], iv, ts, t); c != nil {
			changed = append(changed, c)
		}
	}
	if len(changed) > 0 {
		d := s.newDelta(ev, StreamCandles)
		d.Body = &pb.Delta_Candles{Candles: &pb.CandleList{Candles: changed}}
		res.Candles = d
	}

	session := floorDiv(ts, 86400) * 86400
	st := s.stats
	switch {
	case st == nil || session > st.SessionStartS:
		st = &pb.Stats{SessionStartS: session, Open: t.Price, High: t.Price, Low: t.Price}
		s.notional = uint128{}
	case session < st.SessionStartS:
		return // a late trade from a closed session does not change today's figures
	default:
		st = cloneStats(st)
	}
	st.High = max(st.High, t.Price)
	st.Low = min(st.Low, t.Price)
	st.Last = t.Price
	st.Volume += t.Size
	st.TradeCount++
	s.notional = s.notional.add(mul64(uint64(t.Price), uint64(t.Size)))
	st.Vwap = s.notional.div(uint64(st.Volume))
	s.stats = st
	sd := s.newDelta(ev, StreamStats)
	sd.Body = &pb.Delta_Stats{Stats: st}
	res.Stats = sd
}

func cloneStats(st *pb.Stats) *pb.Stats {
	return &pb.Stats{SessionStartS: st.SessionStartS, Open: st.Open, High: st.High, Low: st.Low,
		Last: st.Last, Volume: st.Volume, Vwap: st.Vwap, TradeCount: st.TradeCount}
}

// updateCandles folds trade t at time ts into the bars of one interval and returns the changed
// bar (a new value: bars already handed out are never modified), or nil for a trade older than
// every bar kept.
func updateCandles(r *ring[*pb.Candle], iv uint32, ts int64, t *pb.Trade) *pb.Candle {
	start := floorDiv(ts, int64(iv)) * int64(iv)
	for i := r.len() - 1; i >= 0; i-- {
		c := r.at(i)
		if c.StartS == start {
			n := &pb.Candle{IntervalS: iv, StartS: start, Open: c.Open, High: max(c.High, t.Price),
				Low: min(c.Low, t.Price), Close: t.Price, Volume: c.Volume + t.Size, TradeCount: c.TradeCount + 1}
			r.set(i, n)
			return n
		}
		if c.StartS < start {
			if i != r.len()-1 {
				return nil // late trade for a bar that had none: keep bars ordered, skip it
			}
			break
		}
	}
	if r.len() > 0 && r.at(r.len()-1).StartS > start {
		return nil
	}
	n := &pb.Candle{IntervalS: iv, StartS: start, Open: t.Price, High: t.Price, Low: t.Price,
		Close: t.Price, Volume: t.Size, TradeCount: 1}
	r.push(n)
	return n
}

// micros returns Unix nanoseconds ns as whole microseconds, rounded down.
func micros(ns int64) int64 { return floorDiv(ns, 1000) }

func floorDiv(a, b int64) int64 {
	q := a / b
	if (a%b != 0) && ((a < 0) != (b < 0)) {
		q--
	}
	return q
}

// newDelta starts the delta of stream i for event ev and moves the stream's chain on.
func (s *State) newDelta(ev *pb.Event, i int) *pb.Delta {
	d := &pb.Delta{Epoch: ev.Epoch, Seq: ev.Seq, PrevSeq: s.last[i], VenueTimeNs: ev.VenueTimeNs, IngestTimeNs: ev.IngestTimeNs}
	s.last[i] = ev.Seq
	s.lastIngest[i] = ev.IngestTimeNs
	return d
}

// Snapshot returns the snapshot of one channel at the current position; for the book, at the
// offered depth with index depthIndex (see Config.DepthIndex). It returns nil when there is
// nothing to serve yet: no event, or a book that is not synced.
func (s *State) Snapshot(ch pb.Channel, depthIndex int, reason pb.SnapshotReason) *pb.Snapshot {
	if s.epoch == 0 {
		return nil
	}
	snap := &pb.Snapshot{Channel: ch, Epoch: s.epoch, Seq: s.seq, Reason: reason,
		LastIngestTimeNs: s.lastIngest[StreamOf(ch, depthIndex)]}
	switch ch {
	case pb.Channel_CHANNEL_QUOTE:
		snap.Body = &pb.Snapshot_Quote{Quote: s.quote.proto()}
	case pb.Channel_CHANNEL_BOOK:
		if !s.bookSynced {
			return nil
		}
		d := s.cfg.Depths[depthIndex]
		bids, asks := s.book.Top(book.Bid, int(d)), s.book.Top(book.Ask, int(d))
		k := ChecksumDepth(d)
		snap.Checksum = book.Checksum(topOf(bids, k), topOf(asks, k))
		snap.BookHash = book.Hash(bids, asks)
		snap.Body = &pb.Snapshot_Book{Book: &pb.BookLevels{Depth: d, Bids: fromLevels(bids), Asks: fromLevels(asks)}}
	case pb.Channel_CHANNEL_TRADES:
		list := &pb.TradeList{Trades: make([]*pb.TradeRecord, 0, s.trades.len())}
		for i := range s.trades.len() {
			list.Trades = append(list.Trades, s.trades.at(i))
		}
		snap.Body = &pb.Snapshot_Trades{Trades: list}
	case pb.Channel_CHANNEL_CANDLES:
		list := &pb.CandleList{}
		for i := range s.candles {
			for j := range s.candles[i].len() {
				list.Candles = append(list.Candles, s.candles[i].at(j))
			}
		}
		snap.Body = &pb.Snapshot_Candles{Candles: list}
	case pb.Channel_CHANNEL_STATS:
		st := s.stats
		if st == nil {
			st = &pb.Stats{}
		}
		snap.Body = &pb.Snapshot_Stats{Stats: st}
	default:
		return nil
	}
	return snap
}

// uint128 is an unsigned 128-bit integer, for sums of price*size that overflow int64.
type uint128 struct{ hi, lo uint64 }

func mul64(a, b uint64) uint128 {
	hi, lo := bits.Mul64(a, b)
	return uint128{hi, lo}
}

func (u uint128) add(v uint128) uint128 {
	lo, carry := bits.Add64(u.lo, v.lo, 0)
	hi, _ := bits.Add64(u.hi, v.hi, carry)
	return uint128{hi, lo}
}

// div returns u/d rounded toward zero, saturated to MaxInt64.
func (u uint128) div(d uint64) int64 {
	if d == 0 {
		return 0
	}
	if u.hi >= d {
		return 1<<63 - 1
	}
	q, _ := bits.Div64(u.hi, u.lo, d)
	if q > 1<<63-1 {
		return 1<<63 - 1
	}
	return int64(q)
}

// holdsTrade reports whether the trade list holds a trade at venue time ns equal to t but for
// the history mark (O(trades kept); asked of history trades only).
func (s *State) holdsTrade(ns int64, t *pb.Trade) bool {
	for i := range s.trades.len() {
		r := s.trades.at(i)
		h := r.GetTrade()
		if r.GetVenueTimeNs() == ns && h.GetPrice() == t.GetPrice() && h.GetSize() == t.GetSize() &&
			h.GetSide() == t.GetSide() && h.GetTradeId() == t.GetTradeId() {
			return true
		}
	}
	return false
}
