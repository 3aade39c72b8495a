package loadgen

import (
	"fmt"

	pb "github.com/tickwire/tickwire/pkg/proto/tickwire/v1"
)

// Event sources of the publisher (Config.Market).
const (
	// MarketSynthetic is internal/source/synthetic: books, trades and quotes as a venue sends
	// them (about 0.29 quote deltas per event).
	MarketSynthetic = "synthetic"
	// MarketQuotes is quoteMarket: every event is a Quote that changes its instrument's quote,
	// so each event is exactly one quote delta per subscriber, the shape of one Centrifugo
	// publication (docs/BENCHMARKS.md, Side by side with Centrifugo).
	MarketQuotes = "quotes"
)

// eventSource is what the publisher publishes: instruments (ids unique within the source) and
// their events, one at a time. *synthetic.Market is one.
type eventSource interface {
	Instruments() []*pb.InstrumentInfo
	Next(nowNs int64) *pb.Event
}

// quoteMarket emits, first, every instrument's InstrumentInfo and a first Quote (the checkpoint
// the publisher's Prime sends), then Quotes round robin over the instruments, each changing the
// bid size (and the prices), so that the feed emits one quote delta per event. The instruments
// have no book: the feed takes their quotes as they come (pkg/market.State.Apply).
type quoteMarket struct {
	infos    []*pb.InstrumentInfo
	count    []int64 // per instrument: quotes emitted
	next     int     // the instrument of the next quote
	primed   int     // infos emitted so far (the checkpoint interleaves info, quote)
	quoteDue bool
}

func newQuoteMarket(instruments int) *quoteMarket {
	q := &quoteMarket{count: make([]int64, instruments)}
	for i := range instruments {
		sym := fmt.Sprintf("Q%d", i)
		q.infos = append(q.infos, &pb.InstrumentInfo{Id: "quotes:" + sym, Venue: "quotes", Symbol: sym,
			Base: "B" + sym, Quote: "USD", PriceScale: 2, SizeScale: 0, TickSize: 1, LotSize: 1,
			Status: pb.InstrumentStatus_INSTRUMENT_STATUS_TRADING})
	}
	return q
}

func (q *quoteMarket) Instruments() []*pb.InstrumentInfo { return q.infos }

func (q *quoteMarket) Next(nowNs int64) *pb.Event {
	if q.primed < len(q.infos) && !q.quoteDue {
		in := q.infos[q.primed]
		q.quoteDue = true
		return &pb.Event{Instrument: in.Id, VenueTimeNs: nowNs, Body: &pb.Event_Info{Info: in}}
	}
	i := q.next
	if q.primed < len(q.infos) { // the checkpoint's first quote of the instrument just announced
		i = q.primed
		q.primed++
		q.quoteDue = false
	} else {
		q.next = (q.next + 1) % len(q.infos)
	}
	q.count[i]++
	n := q.count[i]
	return &pb.Event{Instrument: q.infos[i].Id, VenueTimeNs: nowNs, Body: &pb.Event_Quote{Quote: &pb.Quote{
		BidPrice: 1_000_000 + n%7, BidSize: n, AskPrice: 1_000_010 + n%5, AskSize: 100}}}
}
