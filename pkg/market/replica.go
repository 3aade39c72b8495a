package market

import (
	"fmt"
	"slices"

	"google.golang.org/protobuf/proto"

	"github.com/tickwire/tickwire/pkg/book"
	pb "github.com/tickwire/tickwire/pkg/proto/tickwire/v1"
)

// Position is a place in an instrument's event sequence.
type Position struct {
	Epoch, Seq uint64
}

// streamPos is a replica's position on one stream.
type streamPos struct {
	Position
	synced bool
}

// Replica is a client's copy of the streams of one instrument it subscribed to, built from
// snapshots and the deltas after them. The zero value is an empty replica that accepts a
// snapshot of any channel. A Replica is not safe for concurrent use.
type Replica struct {
	// TradeHistory and CandleHistory bound the trades and the bars per interval kept; zero means
	// the defaults of Config.
	TradeHistory, CandleHistory int

	pos [6]streamPos // by pb.Channel

	depth uint32
	quote quote
	// quoteIngest is the ingest time of the quote stream's latest update: the base of a
	// CompactQuote.
	quoteIngest int64
	book        book.Book
	trades      []*pb.TradeRecord
	candles     []*pb.Candle // sorted by (interval, start)
	stats       *pb.Stats
}

// Synced reports whether channel ch holds a snapshot and every delta since.
func (r *Replica) Synced(ch pb.Channel) bool { return validChannel(ch) && r.pos[ch].synced }

// Position returns the replica's position on channel ch.
func (r *Replica) Position(ch pb.Channel) Position {
	if !validChannel(ch) {
		return Position{}
	}
	return r.pos[ch].Position
}

// Unsync marks channel ch as lost: deltas are refused until the next snapshot.
func (r *Replica) Unsync(ch pb.Channel) {
	if validChannel(ch) {
		r.pos[ch].synced = false
	}
}

func validChannel(ch pb.Channel) bool {
	return ch >= pb.Channel_CHANNEL_QUOTE && ch <= pb.Channel_CHANNEL_STATS
}

// Quote returns the best bid and offer.
func (r *Replica) Quote() *pb.Quote { return r.quote.proto() }

// Book returns the book, at most Depth levels per side. Do not modify it.
func (r *Replica) Book() *book.Book { return &r.book }

// Depth returns the depth of the book stream.
func (r *Replica) Depth() uint32 { return r.depth }

// Trades returns the recent trades, oldest first. Do not modify them.
func (r *Replica) Trades() []*pb.TradeRecord { return r.trades }

// Candles returns the bars held, ordered by interval then start. Do not modify them.
func (r *Replica) Candles() []*pb.Candle { return r.candles }

// Stats returns the session statistics, or nil before any.
func (r *Replica) Stats() *pb.Stats { return r.stats }

// ApplySnapshot replaces channel snap.Channel with the snapshot. A book snapshot whose levels do
// not give its checksum returns ErrChecksum and leaves the channel unsynced.
func (r *Replica) ApplySnapshot(snap *pb.Snapshot) error {
	ch := snap.GetChannel()
	if !validChannel(ch) || !bodyMatches(ch, snap.Body) {
		return fmt.Errorf("%w: snapshot of channel %v with body %T", ErrBadMessage, ch, snap.Body)
	}
	p := &r.pos[ch]
	p.synced = false
	switch b := snap.Body.(type) {
	case *pb.Snapshot_Quote:
		r.quote = quoteOf(b.Quote)
		r.quoteIngest = snap.LastIngestTimeNs
	case *pb.Snapshot_Book:
		r.depth = b.Book.GetDepth()
		r.book.Reset()
		for _, l := range b.Book.GetBids() {
			r.book.SetLevel(book.Bid, book.Level{Price: l.Price, Size: l.Size, Venues: l.Venues})
		}
		for _, l := range b.Book.GetAsks() {
			r.book.SetLevel(book.Ask, book.Level{Price: l.Price, Size: l.Size, Venues: l.Venues})
		}
		r.book.Truncate(int(r.depth))
		if got := r.checksum(); got != snap.Checksum {
			return fmt.Errorf("%w: book snapshot at %d/%d: have %08x, server %08x", ErrChecksum, snap.Epoch, snap.Seq, got, snap.Checksum)
		}
		if got := r.hash(); snap.BookHash != 0 && got != snap.BookHash {
			return fmt.Errorf("%w: book snapshot at %d/%d: full-depth hash %016x, server %016x", ErrChecksum, snap.Epoch, snap.Seq, got, snap.BookHash)
		}
	case *pb.Snapshot_Trades:
		r.trades = append(r.trades[:0], b.Trades.GetTrades()...)
		r.trimTrades()
	case *pb.Snapshot_Candles:
		r.candles = append(r.candles[:0], b.Candles.GetCandles()...)
		slices.SortStableFunc(r.candles, compareCandles)
		r.trimCandles()
	case *pb.Snapshot_Stats:
		r.stats = b.Stats
	}
	p.Position = Position{Epoch: snap.Epoch, Seq: snap.Seq}
	p.synced = true
	return nil
}

// ApplyDelta applies a delta to its channel. It returns ErrStale for a delta already held (the
// replica is unchanged and still synced); ErrNotSynced, ErrEpoch or ErrGap for one that does not
// follow on (unchanged, and now unsynced); ErrChecksum for a book that differs from the server's
// after applying it (unsynced). After any error but ErrStale, ask for a resync of the channel.
func (r *Replica) ApplyDelta(d *pb.Delta) error {
	ch := ChannelOf(d)
	if ch == pb.Channel_CHANNEL_UNSPECIFIED {
		return fmt.Errorf("%w: delta without body", ErrBadMessage)
	}
	p := &r.pos[ch]
	switch {
	case !p.synced:
		return fmt.Errorf("%w: %v delta at %d/%d", ErrNotSynced, ch, d.Epoch, d.Seq)
	case d.Epoch != p.Epoch:
		p.synced = false
		return fmt.Errorf("%w: %v delta in epoch %d, replica in %d", ErrEpoch, ch, d.Epoch, p.Epoch)
	case d.Seq <= p.Seq:
		return fmt.Errorf("%w: %v delta %d, replica at %d", ErrStale, ch, d.Seq, p.Seq)
	case d.PrevSeq > p.Seq:
		p.synced = false
		return fmt.Errorf("%w: %v delta %d follows %d, replica at %d", ErrGap, ch, d.Seq, d.PrevSeq, p.Seq)
	}
	switch b := d.Body.(type) {
	case *pb.Delta_Quote:
		r.quote = quoteOf(b.Quote)
		r.quoteIngest = d.IngestTimeNs
	case *pb.Delta_Book:
		for _, l := range b.Book.GetBids() {
			r.book.SetLevel(book.Bid, book.Level{Price: l.Price, Size: l.Size, Venues: l.Venues})
		}
		for _, l := range b.Book.GetAsks() {
			r.book.SetLevel(book.Ask, book.Level{Price: l.Price, Size: l.Size, Venues: l.Venues})
		}
		r.book.Truncate(int(r.depth))
		if got := r.checksum(); got != d.Checksum {
			p.synced = false
			return fmt.Errorf("%w: book delta at %d/%d: have %08x, server %08x", ErrChecksum, d.Epoch, d.Seq, got, d.Checksum)
		}
		if d.BookHash != 0 {
			if got := r.hash(); got != d.BookHash {
				p.synced = false
				return fmt.Errorf("%w: book delta at %d/%d: full-depth hash %016x, server %016x", ErrChecksum, d.Epoch, d.Seq, got, d.BookHash)
			}
		}
	case *pb.Delta_Trade:
		r.trades = append(r.trades, &pb.TradeRecord{Trade: b.Trade, Seq: d.Seq, VenueTimeNs: d.VenueTimeNs})
		r.trimTrades()
	case *pb.Delta_Candles:
		for _, c := range b.Candles.GetCandles() {
			i, found := slices.BinarySearchFunc(r.candles, c, compareCandles)
			if found {
				r.candles[i] = c
			} else {
				r.candles = slices.Insert(r.candles, i, c)
			}
		}
		r.trimCandles()
	case *pb.Delta_Stats:
		r.stats = b.Stats
	}
	p.Seq = d.Seq
	return nil
}

// ExpandCompactQuote returns the quote Delta that c stands for, relative to the quote stream's
// epoch, quote and latest ingest time held (see CompactQuote in proto/tickwire/v1/stream.proto):
// prices and sizes exact, venue and ingest times truncated to the microsecond (TruncateTimes).
// Apply the result with ApplyDelta, which checks that it follows on. It returns ErrNotSynced
// while the quote channel holds no snapshot, and the replica is unchanged either way.
func (r *Replica) ExpandCompactQuote(c *pb.CompactQuote) (*pb.Delta, error) {
	p := &r.pos[pb.Channel_CHANNEL_QUOTE]
	if !p.synced {
		return nil, fmt.Errorf("%w: compact quote at %d", ErrNotSynced, c.GetSeq())
	}
	if c.GetSeqStep() == 0 || c.GetSeqStep() > c.GetSeq() {
		return nil, fmt.Errorf("%w: compact quote at %d with step %d", ErrBadMessage, c.GetSeq(), c.GetSeqStep())
	}
	ingestUs := micros(r.quoteIngest) + c.GetIngestTimeStepUs()
	q := r.quote
	return &pb.Delta{
		Handle:       c.GetHandle(),
		Epoch:        p.Epoch,
		Seq:          c.GetSeq(),
		PrevSeq:      c.GetSeq() - c.GetSeqStep(),
		IngestTimeNs: ingestUs * 1000,
		VenueTimeNs:  (ingestUs - c.GetVenueLagUs()) * 1000,
		Body: &pb.Delta_Quote{Quote: &pb.Quote{
			BidPrice: q.bidPrice + c.GetBidPriceChange(),
			BidSize:  q.bidSize + c.GetBidSizeChange(),
			AskPrice: q.askPrice + c.GetAskPriceChange(),
			AskSize:  q.askSize + c.GetAskSizeChange(),
		}},
	}, nil
}

// TruncateTimes returns venue and ingest times (Unix ns) as a CompactQuote carries them:
// rounded down to whole microseconds.
func TruncateTimes(venueNs, ingestNs int64) (int64, int64) {
	return micros(venueNs) * 1000, micros(ingestNs) * 1000
}

// hash is the full-depth hash of the replica's book (book.Hash). The server sends 0 for a book
// it does not hash (a server before it); an empty book's hash is 0 too, so 0 is not checked.
func (r *Replica) hash() uint64 {
	return book.Hash(r.book.Top(book.Bid, int(r.depth)), r.book.Top(book.Ask, int(r.depth)))
}

func (r *Replica) checksum() uint32 {
	k := ChecksumDepth(r.depth)
	return book.Checksum(r.book.Top(book.Bid, k), r.book.Top(book.Ask, k))
}

func (r *Replica) trimTrades() {
	n := r.TradeHistory
	if n <= 0 {
		n = Config{}.WithDefaults().TradeHistory
	}
	if extra := len(r.trades) - n; extra > 0 {
		r.trades = append(r.trades[:0], r.trades[extra:]...)
	}
}

// trimCandles keeps the newest CandleHistory bars of each interval.
func (r *Replica) trimCandles() {
	n := r.CandleHistory
	if n <= 0 {
		n = Config{}.WithDefaults().CandleHistory
	}
	out := r.candles[:0]
	for i := 0; i < len(r.candles); {
		j := i
		for j < len(r.candles) && r.candles[j].IntervalS == r.candles[i].IntervalS {
			j++
		}
		out = append(out, r.candles[max(i, j-n):j]...)
		i = j
	}
	r.candles = out
}

func compareCandles(a, b *pb.Candle) int {
	if a.IntervalS != b.IntervalS {
		return int(a.IntervalS) - int(b.IntervalS)
	}
	switch {
	case a.StartS < b.StartS:
		return -1
	case a.StartS > b.StartS:
		return 1
	}
	return 0
}

// ChannelOf returns the channel a delta belongs to, from its body (UNSPECIFIED for none).
func ChannelOf(d *pb.Delta) pb.Channel {
	switch d.GetBody().(type) {
	case *pb.Delta_Quote:
		return pb.Channel_CHANNEL_QUOTE
	case *pb.Delta_Book:
		return pb.Channel_CHANNEL_BOOK
	case *pb.Delta_Trade:
		return pb.Channel_CHANNEL_TRADES
	case *pb.Delta_Candles:
		return pb.Channel_CHANNEL_CANDLES
	case *pb.Delta_Stats:
		return pb.Channel_CHANNEL_STATS
	}
	return pb.Channel_CHANNEL_UNSPECIFIED
}

func bodyMatches(ch pb.Channel, body any) bool {
	switch body.(type) {
	case *pb.Snapshot_Quote:
		return ch == pb.Channel_CHANNEL_QUOTE
	case *pb.Snapshot_Book:
		return ch == pb.Channel_CHANNEL_BOOK
	case *pb.Snapshot_Trades:
		return ch == pb.Channel_CHANNEL_TRADES
	case *pb.Snapshot_Candles:
		return ch == pb.Channel_CHANNEL_CANDLES
	case *pb.Snapshot_Stats:
		return ch == pb.Channel_CHANNEL_STATS
	}
	return false
}

// EqualChannel reports whether r and o hold the same data on channel ch (positions aside).
// Tests use it to compare a client's replica with one built from the server's snapshot.
func (r *Replica) EqualChannel(o *Replica, ch pb.Channel) bool {
	switch ch {
	case pb.Channel_CHANNEL_QUOTE:
		return r.quote == o.quote
	case pb.Channel_CHANNEL_BOOK:
		return r.depth == o.depth && r.book.Equal(&o.book)
	case pb.Channel_CHANNEL_TRADES:
		return slices.EqualFunc(r.trades, o.trades, func(a, b *pb.TradeRecord) bool { return proto.Equal(a, b) })
	case pb.Channel_CHANNEL_CANDLES:
		return slices.EqualFunc(r.candles, o.candles, func(a, b *pb.Candle) bool { return proto.Equal(a, b) })
	case pb.Channel_CHANNEL_STATS:
		return proto.Equal(r.stats, o.stats)
	}
	return false
}
