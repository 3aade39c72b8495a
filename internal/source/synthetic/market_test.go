package synthetic

import (
	"maps"
	"math"
	"slices"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/tickwire/tickwire/internal/normalize"
	tickwirev1 "github.com/tickwire/tickwire/pkg/proto/tickwire/v1"
)

type replica struct {
	bids, asks map[int64]int64
}

func (r *replica) best() (bid, ask int64) {
	for p := range r.bids {
		bid = max(bid, p)
	}
	for p := range r.asks {
		if ask == 0 || p < ask {
			ask = p
		}
	}
	return bid, ask
}

func TestMarketInvariants(t *testing.T) {
	const n = 100_000
	cfg := Config{Instruments: 20, Seed: 42, Depth: 25, CheckpointInterval: 10 * time.Second}
	m, err := NewMarket(cfg)
	if err != nil {
		t.Fatal(err)
	}
	v, err := normalize.NewValidator(nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	books := map[string]*replica{}
	start := time.Unix(1_700_000_000, 0)
	var pendingTrade *tickwirev1.Event
	counts := map[string]int{}
	for i := range n {
		now := start.Add(time.Duration(i) * time.Millisecond) // 100 s: several checkpoints
		ev := m.Next(now.UnixNano())
		if ev.GetVenueTimeNs() != now.UnixNano() {
			t.Fatalf("event %d: venue time %d", i, ev.GetVenueTimeNs())
		}
		if crossed, err := v.Validate(ev, now); err != nil || crossed {
			t.Fatalf("event %d %v: crossed=%t err=%v", i, ev, crossed, err)
		}
		r := books[ev.GetInstrument()]
		if pendingTrade != nil {
			if ev.GetBook() == nil || ev.GetInstrument() != pendingTrade.GetInstrument() {
				t.Fatalf("event %d: trade not followed by its book update: %v", i, ev)
			}
			pendingTrade = nil
		}
		switch b := ev.GetBody().(type) {
		case *tickwirev1.Event_Info:
			counts["info"]++
			if books[ev.GetInstrument()] == nil {
				books[ev.GetInstrument()] = &replica{bids: map[int64]int64{}, asks: map[int64]int64{}}
			}
		case *tickwirev1.Event_Trade:
			counts["trade"]++
			bid, ask := r.best()
			tr := b.Trade
			switch tr.GetSide() {
			case tickwirev1.Side_SIDE_BUY:
				if tr.GetPrice() != ask || tr.GetSize() > r.asks[ask] {
					t.Fatalf("event %d: buy %v not at the ask %d (size %d)", i, tr, ask, r.asks[ask])
				}
			case tickwirev1.Side_SIDE_SELL:
				if tr.GetPrice() != bid || tr.GetSize() > r.bids[bid] {
					t.Fatalf("event %d: sell %v not at the bid %d (size %d)", i, tr, bid, r.bids[bid])
				}
			default:
				t.Fatalf("event %d: trade side %v", i, tr.GetSide())
			}
			pendingTrade = ev
		case *tickwirev1.Event_Book:
			if r == nil {
				t.Fatalf("event %d: book before info", i)
			}
			bu := b.Book
			if bu.GetSnapshot() {
				counts["snapshot"]++
				clear(r.bids)
				clear(r.asks)
			} else {
				counts["update"]++
			}
			for _, l := range bu.GetBids() {
				set(r.bids, l)
			}
			for _, l := range bu.GetAsks() {
				set(r.asks, l)
			}
			bid, ask := r.best()
			if len(r.bids) > cfg.Depth || len(r.asks) > cfg.Depth || len(r.bids) < cfg.Depth-1 || len(r.asks) < cfg.Depth-1 {
				t.Fatalf("event %d: depth %d/%d", i, len(r.bids), len(r.asks))
			}
			if bid >= ask || bid <= 0 {
				t.Fatalf("event %d: book %d/%d crossed or empty", i, bid, ask)
			}
		default:
			t.Fatalf("event %d: body %T", i, b)
		}
	}
	// The replicas equal the generator's own books (sorted, unique, > 0).
	for _, in := range m.insts {
		r := books[in.info.Id]
		for _, s := range []struct {
			levels []level
			rep    map[int64]int64
			desc   bool
		}{{in.bids, r.bids, true}, {in.asks, r.asks, false}} {
			prices := slices.Sorted(maps.Keys(s.rep))
			if s.desc {
				slices.Reverse(prices)
			}
			if len(prices) != len(s.levels) {
				t.Fatalf("%s: replica %d levels, market %d", in.info.Id, len(prices), len(s.levels))
			}
			for i, l := range s.levels {
				if l.price != prices[i] || l.size != s.rep[l.price] || l.size <= 0 || l.price%TickSize != 0 {
					t.Fatalf("%s level %d: market %v, replica %d/%d", in.info.Id, i, l, prices[i], s.rep[prices[i]])
				}
			}
		}
	}
	t.Logf("counts %v", counts)
	if counts["trade"] < n/20 || counts["snapshot"] < 10*cfg.Instruments || counts["update"] < n/2 {
		t.Fatalf("unrealistic mix %v", counts)
	}
}

func set(side map[int64]int64, l *tickwirev1.Level) {
	if l.GetSize() == 0 {
		delete(side, l.GetPrice())
	} else {
		side[l.GetPrice()] = l.GetSize()
	}
}

func TestMarketDeterministic(t *testing.T) {
	gen := func(seed uint64) []*tickwirev1.Event {
		m, err := NewMarket(Config{Instruments: 30, Seed: seed})
		if err != nil {
			t.Fatal(err)
		}
		out := make([]*tickwirev1.Event, 5000)
		for i := range out {
			out[i] = m.Next(int64(i) * 1e6)
		}
		return out
	}
	a, b, c := gen(7), gen(7), gen(8)
	same := func(x, y []*tickwirev1.Event) bool {
		for i := range x {
			if !proto.Equal(x[i], y[i]) {
				return false
			}
		}
		return true
	}
	if !same(a, b) {
		t.Fatal("same seed, different events")
	}
	if same(a, c) {
		t.Fatal("different seed, same events")
	}
}

func TestTickers(t *testing.T) {
	names := Tickers(5000)
	seen := map[string]bool{}
	for _, n := range names {
		if len(n) < 3 || len(n) > 5 || seen[n] {
			t.Fatalf("bad or duplicate ticker %q", n)
		}
		seen[n] = true
	}
	if names[0] != "ACME" || names[1] != "BOLT" {
		t.Fatalf("first tickers %v", names[:2])
	}
	if !slices.Equal(Tickers(100), names[:100]) {
		t.Fatal("tickers not a stable prefix")
	}
}

func TestConfigValidate(t *testing.T) {
	for _, c := range []Config{{Instruments: -1}, {Depth: 19}, {Rate: -5}, {Instruments: MaxInstruments + 1}, {CheckpointInterval: -time.Second},
		{Venues: []string{"a", "a"}}, {Venues: []string{"a", "consolidated"}}, {Venues: []string{"A b"}},
		{Venues: []string{"a", "b", "c", "d", "e", "f", "g", "h", "i"}}, {Instruments: 3, CrossListed: 4}, {CrossListed: -1}} {
		if _, err := NewMarket(c); err == nil {
			t.Errorf("NewMarket(%+v) accepted", c)
		}
	}
}

// TestMarketVenues: cross-listed tickers trade on every venue, each with its own book around
// the same fair value, so the venues' best prices stay close; the others on the first venue only.
func TestMarketVenues(t *testing.T) {
	m, err := NewMarket(Config{Instruments: 3, Seed: 5, Venues: []string{"synthetic", "other"}, CrossListed: 2})
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, in := range m.Instruments() {
		ids = append(ids, in.Id)
	}
	want := []string{"synthetic:ACME", "other:ACME", "synthetic:BOLT", "other:BOLT", "synthetic:CORA"}
	if !slices.Equal(ids, want) {
		t.Fatalf("instruments %v, want %v", ids, want)
	}
	books := map[string]*replica{}
	maxApart := int64(0)
	for i := range 200_000 {
		ev := m.Next(int64(i) * 1000)
		b := ev.GetBook()
		if b == nil {
			continue
		}
		r := books[ev.Instrument]
		if r == nil || b.Snapshot {
			r = &replica{bids: map[int64]int64{}, asks: map[int64]int64{}}
			books[ev.Instrument] = r
		}
		for side, levels := range [2][]*tickwirev1.Level{b.Bids, b.Asks} {
			for _, l := range levels {
				book := [2]map[int64]int64{r.bids, r.asks}[side]
				if l.Size == 0 {
					delete(book, l.Price)
				} else {
					book[l.Price] = l.Size
				}
			}
		}
		a, o := books["synthetic:ACME"], books["other:ACME"]
		if a != nil && o != nil && i > 10_000 {
			ab, _ := a.best()
			ob, _ := o.best()
			maxApart = max(maxApart, abs(ab-ob))
		}
	}
	// Both venues' books chase the one fair value: their best bids stay a few ticks apart.
	t.Logf("best bids at most %d ticks apart", maxApart)
	if maxApart == 0 || maxApart > 30 {
		t.Fatalf("the venues' best bids were up to %d ticks apart, want 1..30", maxApart)
	}
}

func BenchmarkMarketNext(b *testing.B) {
	m, err := NewMarket(Config{Instruments: 1000, Seed: 1})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	var now int64
	for b.Loop() {
		now += 1000
		m.Next(now)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}

// TestMarketLooksLikeAMarket (issue 12): over ten minutes at the default rate, instruments move
// by tenths of a percent a minute, not by 8-11 % (a walk of ticks moved a 5.00 instrument that
// much), and the top of a book has no hole of more than a percent of the price.
func TestMarketLooksLikeAMarket(t *testing.T) {
	m, err := NewMarket(Config{Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	books := map[string]*replica{}
	mids := map[string]float64{}
	var moves []float64
	maxHole := 0.0
	const perMinute = DefaultRate * 60
	var now int64
	for i := range int64(perMinute * 10) {
		now += int64(time.Second) / DefaultRate
		ev := m.Next(now)
		if b := ev.GetBook(); b != nil {
			r := books[ev.Instrument]
			if r == nil || b.Snapshot {
				r = &replica{bids: map[int64]int64{}, asks: map[int64]int64{}}
				books[ev.Instrument] = r
			}
			for side, levels := range [2][]*tickwirev1.Level{b.Bids, b.Asks} {
				book := [2]map[int64]int64{r.bids, r.asks}[side]
				for _, l := range levels {
					if l.Size == 0 {
						delete(book, l.Price)
					} else {
						book[l.Price] = l.Size
					}
				}
			}
		}
		if i%perMinute != perMinute-1 {
			continue
		}
		for id, r := range books {
			bid, ask := r.best()
			mid := float64(bid+ask) / 2
			if p, ok := mids[id]; ok {
				moves = append(moves, math.Abs(mid-p)/p*100)
			}
			mids[id] = mid
			for i, side := range []map[int64]int64{r.bids, r.asks} {
				prices := slices.Sorted(maps.Keys(side))
				if i == 0 { // bids best first
					slices.Reverse(prices)
				}
				for k := 1; k < min(10, len(prices)); k++ {
					maxHole = max(maxHole, math.Abs(float64(prices[k]-prices[k-1]))/mid*100)
				}
			}
		}
	}
	slices.Sort(moves)
	median, p90, top := moves[len(moves)/2], moves[len(moves)*9/10], moves[len(moves)-1]
	t.Logf("per-minute moves: median %.3f %%, p90 %.3f %%, max %.3f %%; largest hole in the top 10 levels %.3f %%", median, p90, top, maxHole)
	if median < 0.02 || p90 > 0.5 || top > 1.5 || maxHole > 1 {
		t.Fatalf("want a median move of at least 0.02 %%, p90 at most 0.5 %%, max at most 1.5 %%, holes at most 1 %%")
	}
}
