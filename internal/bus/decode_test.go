package bus

import (
	"math/rand/v2"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/tickwire/tickwire/internal/prototest"
	"github.com/tickwire/tickwire/internal/source/synthetic"
	tickwirev1 "github.com/tickwire/tickwire/pkg/proto/tickwire/v1"
)

var randInt = prototest.EdgeInt64

func randEvent(r *rand.Rand) *tickwirev1.Event {
	ev := &tickwirev1.Event{Instrument: []string{"", "synthetic:A", "coinbase:BTC-USD", "kraken:XBT/€"}[r.IntN(4)],
		Epoch: r.Uint64(), Seq: r.Uint64N(1 << 30), VenueTimeNs: randInt(r), IngestTimeNs: randInt(r)}
	switch r.IntN(6) {
	case 0:
		u := &tickwirev1.BookUpdate{Snapshot: r.IntN(2) == 0}
		for range r.IntN(5) {
			u.Bids = append(u.Bids, &tickwirev1.Level{Price: randInt(r), Size: randInt(r)})
		}
		for range r.IntN(5) {
			u.Asks = append(u.Asks, &tickwirev1.Level{Price: randInt(r), Size: randInt(r)})
		}
		ev.Body = &tickwirev1.Event_Book{Book: u}
	case 1:
		ev.Body = &tickwirev1.Event_Trade{Trade: &tickwirev1.Trade{Price: randInt(r), Size: randInt(r),
			Side: tickwirev1.Side(r.IntN(4)), TradeId: []string{"", "t-1", "ü"}[r.IntN(3)], History: r.IntN(4) == 0}}
	case 2:
		ev.Body = &tickwirev1.Event_Quote{Quote: &tickwirev1.Quote{BidPrice: randInt(r), BidSize: randInt(r), AskPrice: randInt(r), AskSize: randInt(r)}}
	case 3:
		ev.Body = &tickwirev1.Event_Info{Info: &tickwirev1.InstrumentInfo{Id: ev.Instrument, PriceScale: 2}}
	case 4:
		ev.Body = &tickwirev1.Event_Book{Book: &tickwirev1.BookUpdate{}}
	}
	return ev
}

// checkSameAsProto decodes b both ways and fails unless the results (or the errors) agree.
func checkSameAsProto(t *testing.T, d *eventDecoder, b []byte) {
	t.Helper()
	var want, got tickwirev1.Event
	werr := proto.Unmarshal(b, &want)
	gerr := d.decode(b, &got)
	if (werr == nil) != (gerr == nil) {
		t.Fatalf("%x: proto.Unmarshal error %v, decoder error %v", b, werr, gerr)
	}
	if werr == nil && !proto.Equal(&want, &got) {
		t.Fatalf("%x:\n proto %v\n  ours %v", b, &want, &got)
	}
}

// TestDecodeEventMatchesProto: the direct decoder gives what proto.Unmarshal gives, on random
// events, on their encodings with fields repeated, reordered, unknown or cut short.
func TestDecodeEventMatchesProto(t *testing.T) {
	r := rand.New(rand.NewPCG(8, 9))
	var d eventDecoder
	direct := 0
	for i := range 20000 {
		ev := randEvent(r)
		b, err := proto.Marshal(ev)
		if err != nil {
			t.Fatal(err)
		}
		checkSameAsProto(t, &d, b)
		var probe tickwirev1.Event
		if d.direct(b, &probe) == nil {
			direct++
		}
		switch i % 5 {
		case 0: // a field again (last one wins; a second body merges)
			b = append(b, b[:min(len(b), 1+r.IntN(12))]...)
		case 1: // an unknown field
			b = protowire.AppendVarint(protowire.AppendTag(b, 99, protowire.VarintType), 7)
		case 2: // cut short
			b = b[:r.IntN(len(b)+1)]
		case 3: // a byte changed
			if len(b) > 0 {
				b[r.IntN(len(b))] ^= byte(1 + r.IntN(255))
			}
		case 4: // fields in another order: body first
			var body []byte
			rest := b[:0:0]
			for in := b; len(in) > 0; {
				num, typ, n := protowire.ConsumeTag(in)
				m := protowire.ConsumeFieldValue(num, typ, in[n:])
				if num >= 10 {
					body = append(body, in[:n+m]...)
				} else {
					rest = append(rest, in[:n+m]...)
				}
				in = in[n+m:]
			}
			b = append(body, rest...)
		}
		checkSameAsProto(t, &d, b)
	}
	if direct < 10000 {
		t.Fatalf("only %d of 20000 plain events took the direct path", direct)
	}
}

func FuzzDecodeEvent(f *testing.F) {
	r := rand.New(rand.NewPCG(1, 1))
	for range 20 {
		b, _ := proto.Marshal(randEvent(r))
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var d eventDecoder
		checkSameAsProto(t, &d, b)
	})
}

// BenchmarkDecodeEvent decodes the synthetic market's events (mostly book updates of a few
// levels, some trades) with proto.Unmarshal and with the direct decoder.
func BenchmarkDecodeEvent(b *testing.B) {
	m, err := synthetic.NewMarket(synthetic.Config{Instruments: 100, Seed: 5})
	if err != nil {
		b.Fatal(err)
	}
	var frames [][]byte
	now := time.Now().UnixNano()
	for i := range 4096 {
		ev := m.Next(now + int64(i)*1e6)
		ev.Epoch, ev.Seq, ev.IngestTimeNs = 1_800_000_000_000, uint64(i+1), now+int64(i)*1e6+5e4
		raw, err := proto.Marshal(ev)
		if err != nil {
			b.Fatal(err)
		}
		frames = append(frames, raw)
	}
	b.Run("proto", func(b *testing.B) {
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			ev := new(tickwirev1.Event)
			if err := proto.Unmarshal(frames[i%len(frames)], ev); err != nil {
				b.Fatal(err)
			}
			i++
		}
	})
	b.Run("direct", func(b *testing.B) {
		b.ReportAllocs()
		var d eventDecoder
		i := 0
		for b.Loop() {
			ev := new(tickwirev1.Event)
			if err := d.decode(frames[i%len(frames)], ev); err != nil {
				b.Fatal(err)
			}
			i++
		}
	})
}
