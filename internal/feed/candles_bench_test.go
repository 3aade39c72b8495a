package feed

import (
	"context"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protojson"

	"github.com/tickwire/tickwire/internal/bus/bustest"
	pb "github.com/tickwire/tickwire/pkg/proto/tickwire/v1"
)

// BenchmarkCandlesFromStore: the dashboard's 1-hour chart (300 bars of 3,600 s) answered from a
// full candle store (1,440 one-minute bars): plan, aggregate, encode as the handler does.
func BenchmarkCandlesFromStore(b *testing.B) {
	const s = int64(1e9)
	c := newCandles(CandlesConfig{}.withDefaults(), nil)
	now := int64(1_700_000_000) * s
	for m := range int64(1440) {
		for k := range int64(10) { // 10 trades a minute
			c.observe(tradeEv("x:A", now-(1440-m)*60*s+k*6*s, 1000+k, 1))
		}
	}
	req := candleRequest{instrument: "x:A", iv: 3600, w: nsSpan{now - 300*3600*s, now + s}}
	b.ReportAllocs()
	for b.Loop() {
		bars, _, err := c.answer(context.Background(), nil, true, req)
		if err != nil || len(bars) != 25 {
			b.Fatalf("%d bars, %v", len(bars), err)
		}
		if _, err := protojson.Marshal(&pb.CandleList{Candles: bars}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCandleScan: reading one instrument's events from JetStream (real, in-process) for
// an interval the store cannot answer: the cost per event read, which MaxScanEvents bounds.
func BenchmarkCandleScan(b *testing.B) {
	nats := bustest.Start(b)
	bs := bustest.Connect(b, nats)
	const n = 20_000
	t0 := int64(1_700_000_000) * 1e9
	ctx := context.Background()
	for i := range int64(n) {
		ev := tradeEv("x:A", t0+i*10e6, 1000+i%7, 1)
		if i%3 != 0 { // two quotes for each trade, as a quiet market
			ev.Body = &pb.Event_Quote{Quote: &pb.Quote{BidPrice: 999, AskPrice: 1001, BidSize: 1, AskSize: 1}}
		}
		ev.Epoch, ev.Seq = 1, uint64(i+1)
		if err := bs.Publish(ctx, ev); err != nil {
			b.Fatal(err)
		}
	}
	if err := bs.Flush(ctx); err != nil {
		b.Fatal(err)
	}
	c := newCandles(CandlesConfig{ScanTimeout: time.Minute}.withDefaults(), nil)
	w := nsSpan{t0, t0 + n*10e6}
	b.ResetTimer()
	var read int
	for b.Loop() {
		budget := 1 << 30
		trades, err := c.scan(ctx, bs, "x:A", w, &budget)
		if err != nil || len(trades) != (n+2)/3 {
			b.Fatalf("%d trades, %v", len(trades), err)
		}
		read += 1<<30 - budget
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(read), "ns/event")
}
