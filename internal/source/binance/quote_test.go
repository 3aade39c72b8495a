package binance

import (
	"testing"

	"github.com/tickwire/tickwire/internal/source/sourcetest"
	"github.com/tickwire/tickwire/pkg/book"
	"github.com/tickwire/tickwire/pkg/market"
	pb "github.com/tickwire/tickwire/pkg/proto/tickwire/v1"
)

// TestQuoteIsBookTop pins the choice of docs/PROTOCOL.md 8.1 on recorded data: while the book is
// whole the quote stream is the book's top, never the venue's own best bid/offer (Binance
// bookTicker), so the quote and the book a client shows never disagree. It also measures what
// that costs: how often the venue's bookTicker, which is sent at once, is ahead of the
// diff-depth book, which Binance sends every 100 ms (the figures are in PROTOCOL 8.1).
func TestQuoteIsBookTop(t *testing.T) {
	h, err := New(Config{Market: Spot}, nil)
	if err != nil {
		t.Fatal(err)
	}
	var col sourcetest.Collector
	for _, f := range sourcetest.Frames(sourcetest.Records(t, sourcetest.Path(t, "binance-spot-2024-hftbacktest", "btcusdt_first60s.ndjson"))) {
		if err := h.Handle(&f, col.Emit); err != nil {
			t.Fatal(err)
		}
	}
	st := market.NewState("binance:BTCUSDT", market.Config{})
	var venueQuotes, differ, priceDiffer int
	for i, ev := range col.Events {
		ev.Epoch, ev.Seq = 1, uint64(i+1)
		if _, err := st.Apply(ev); err != nil {
			t.Fatalf("event %d: %v", i+1, err)
		}
		if !st.BookSynced() {
			continue
		}
		q := st.Snapshot(pb.Channel_CHANNEL_QUOTE, 0, 0).GetQuote()
		bid, _ := st.Book().Best(book.Bid)
		ask, _ := st.Book().Best(book.Ask)
		if q.BidPrice != bid.Price || q.BidSize != bid.Size || q.AskPrice != ask.Price || q.AskSize != ask.Size {
			t.Fatalf("event %d: quote %v, book top %v / %v", i+1, q, bid, ask)
		}
		if vq := ev.GetQuote(); vq != nil {
			venueQuotes++
			if vq.BidPrice != q.BidPrice || vq.BidSize != q.BidSize || vq.AskPrice != q.AskPrice || vq.AskSize != q.AskSize {
				differ++
			}
			if vq.BidPrice != q.BidPrice || vq.AskPrice != q.AskPrice {
				priceDiffer++
			}
		}
	}
	if venueQuotes < 5000 {
		t.Fatalf("%d venue quotes while the book was whole", venueQuotes)
	}
	t.Logf("%d bookTicker messages while the book was whole: %d (%.0f%%) differ from the book's top, %d (%.0f%%) in price",
		venueQuotes, differ, 100*float64(differ)/float64(venueQuotes), priceDiffer, 100*float64(priceDiffer)/float64(venueQuotes))
}
