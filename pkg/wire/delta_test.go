package wire

import (
	"bytes"
	"math/rand/v2"
	"testing"

	"github.com/tickwire/tickwire/internal/prototest"
	pb "github.com/tickwire/tickwire/pkg/proto/tickwire/v1"
)

var randInt = prototest.EdgeInt64

func randDelta(r *rand.Rand) *pb.Delta {
	d := &pb.Delta{Handle: r.Uint32N(1 << 20), Epoch: r.Uint64N(1 << 40), Seq: r.Uint64(), PrevSeq: r.Uint64N(3),
		Checksum: r.Uint32(), VenueTimeNs: randInt(r), IngestTimeNs: randInt(r), BookHash: []uint64{0, r.Uint64()}[r.IntN(2)]}
	switch r.IntN(6) {
	case 0:
		d.Body = &pb.Delta_Quote{Quote: &pb.Quote{BidPrice: randInt(r), BidSize: randInt(r), AskPrice: randInt(r), AskSize: randInt(r)}}
	case 1:
		bk := &pb.BookLevels{Depth: r.Uint32N(100)}
		for range r.IntN(4) {
			bk.Bids = append(bk.Bids, &pb.Level{Price: randInt(r), Size: randInt(r)})
		}
		for range r.IntN(4) {
			bk.Asks = append(bk.Asks, &pb.Level{Price: randInt(r), Size: randInt(r)})
		}
		d.Body = &pb.Delta_Book{Book: bk}
	case 2:
		id := ""
		if r.IntN(2) == 0 {
			id = "t-12345"
		}
		d.Body = &pb.Delta_Trade{Trade: &pb.Trade{Price: randInt(r), Size: randInt(r), Side: pb.Side(r.IntN(3)), TradeId: id, History: r.IntN(4) == 0}}
	case 3:
		cl := &pb.CandleList{}
		for range r.IntN(3) {
			cl.Candles = append(cl.Candles, &pb.Candle{IntervalS: r.Uint32N(3600), StartS: randInt(r), Open: randInt(r),
				High: randInt(r), Low: randInt(r), Close: randInt(r), Volume: randInt(r), TradeCount: r.Uint32()})
		}
		d.Body = &pb.Delta_Candles{Candles: cl}
	case 4:
		d.Body = &pb.Delta_Stats{Stats: &pb.Stats{SessionStartS: randInt(r), Open: randInt(r), High: randInt(r), Low: randInt(r),
			Last: randInt(r), Volume: randInt(r), Vwap: randInt(r), TradeCount: r.Uint64()}}
	case 5: // empty bodies
		d.Body = &pb.Delta_Quote{Quote: &pb.Quote{}}
	}
	return d
}

// TestAppendDeltaMessageMatchesProto: the direct encoder writes exactly what the protobuf
// library writes, for every body and edge value.
func TestAppendDeltaMessageMatchesProto(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for i := range 20000 {
		d := randDelta(r)
		want, err := AppendMessage(nil, &pb.ServerMessage{Kind: &pb.ServerMessage_Delta{Delta: d}})
		if err != nil {
			t.Fatal(err)
		}
		if got := AppendDeltaMessage(nil, d); !bytes.Equal(got, want) {
			t.Fatalf("delta %d %v:\n got %x\nwant %x", i, d, got, want)
		}
	}
}

func BenchmarkAppendDeltaMessageQuote(b *testing.B) {
	d := &pb.Delta{Handle: 17, Epoch: 1763790000, Seq: 1234567, PrevSeq: 1234560,
		VenueTimeNs: 1763790000123456789, IngestTimeNs: 1763790000123556789,
		Body: &pb.Delta_Quote{Quote: &pb.Quote{BidPrice: 1234500, BidSize: 150000, AskPrice: 1234600, AskSize: 90000}}}
	buf := make([]byte, 0, 256)
	b.ReportAllocs()
	for b.Loop() {
		buf = AppendDeltaMessage(buf[:0], d)
	}
	b.ReportMetric(float64(len(buf)), "bytes/msg")
}

// TestAppendCompactQuoteMessageMatchesProto: the same for the compact quote.
func TestAppendCompactQuoteMessageMatchesProto(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for i := range 20000 {
		c := &pb.CompactQuote{Handle: r.Uint32N(1 << 20), Seq: r.Uint64(), SeqStep: r.Uint64N(3), IngestTimeStepUs: randInt(r),
			VenueLagUs: randInt(r), BidPriceChange: randInt(r), BidSizeChange: randInt(r), AskPriceChange: randInt(r), AskSizeChange: randInt(r)}
		want, err := AppendMessage(nil, &pb.ServerMessage{Kind: &pb.ServerMessage_CompactQuote{CompactQuote: c}})
		if err != nil {
			t.Fatal(err)
		}
		if got := AppendCompactQuoteMessage(nil, c); !bytes.Equal(got, want) {
			t.Fatalf("compact quote %d %v:\n got %x\nwant %x", i, c, got, want)
		}
	}
}

// BenchmarkAppendCompactQuoteMessage encodes a typical compact quote: one side's size changed,
// a millisecond after the previous quote, 40 ms after the venue's time.
func BenchmarkAppendCompactQuoteMessage(b *testing.B) {
	c := &pb.CompactQuote{Handle: 17, Seq: 1234567, SeqStep: 2, IngestTimeStepUs: 1_012, VenueLagUs: 40_123,
		BidSizeChange: -25000}
	buf := make([]byte, 0, 256)
	b.ReportAllocs()
	for b.Loop() {
		buf = AppendCompactQuoteMessage(buf[:0], c)
	}
	b.ReportMetric(float64(len(buf)), "bytes/msg")
}
