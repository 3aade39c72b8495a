package consolidated

import (
	"errors"
	"math/rand/v2"
	"testing"

	"github.com/tickwire/tickwire/pkg/book"
	pb "github.com/tickwire/tickwire/pkg/proto/tickwire/v1"
)

const (
	memA = "a:X" // price scale 2, size scale 2
	memB = "b:X" // price scale 3, size scale 1
)

func infoOf(id string, ps, ss int32, tick, lot int64) *pb.InstrumentInfo {
	venue, sym := id[:1], id[2:]
	return &pb.InstrumentInfo{Id: id, Venue: venue, Symbol: sym, Base: "X", Quote: "USD", PriceScale: ps, SizeScale: ss,
		TickSize: tick, LotSize: lot, Status: pb.InstrumentStatus_INSTRUMENT_STATUS_TRADING}
}

// feed numbers each member's events as its ingest would.
type feed struct{ seq map[string]uint64 }

func (f *feed) ev(id string, body any) *pb.Event {
	if f.seq == nil {
		f.seq = map[string]uint64{}
	}
	f.seq[id]++
	ev := &pb.Event{Instrument: id, Epoch: 7, Seq: f.seq[id]}
	switch b := body.(type) {
	case *pb.InstrumentInfo:
		ev.Body = &pb.Event_Info{Info: b}
	case *pb.BookUpdate:
		ev.Body = &pb.Event_Book{Book: b}
	case *pb.Trade:
		ev.Body = &pb.Event_Trade{Trade: b}
	}
	return ev
}

func lv(p, s int64) *pb.Level { return &pb.Level{Price: p, Size: s} }

func snap(bids, asks []*pb.Level) *pb.BookUpdate {
	return &pb.BookUpdate{Snapshot: true, Bids: bids, Asks: asks}
}

// sink collects what a Merge emits and keeps the book a client of the stream would hold.
type sink struct {
	events []*pb.Event
	book   book.Book
	info   *pb.InstrumentInfo
}

func (s *sink) emit(ev *pb.Event) error {
	s.events = append(s.events, ev)
	switch b := ev.Body.(type) {
	case *pb.Event_Info:
		s.info = b.Info
	case *pb.Event_Book:
		if b.Book.Snapshot {
			s.book.Reset()
		}
		for side, levels := range [2][]*pb.Level{b.Book.Bids, b.Book.Asks} {
			for _, l := range levels {
				s.book.SetLevel(book.Side(side), book.Level{Price: l.Price, Size: l.Size, Venues: l.Venues})
			}
		}
	}
	return nil
}

func (s *sink) take() []*pb.Event {
	out := s.events
	s.events = nil
	return out
}

func levels(ls ...book.Level) []book.Level { return ls }

func newMerge(t *testing.T) (*Merge, *sink, *feed, map[string]int) {
	t.Helper()
	dropped := map[string]int{}
	m, err := NewMerge(Spec{ID: "consolidated:X", Members: []string{memA, memB}}, func(r string) { dropped[r]++ })
	if err != nil {
		t.Fatal(err)
	}
	return m, &sink{}, &feed{}, dropped
}

// TestMergeTwoVenues walks one merged book through snapshots at different scales, a delta,
// a shared price, a trade, a member's gap and its recovery.
func TestMergeTwoVenues(t *testing.T) {
	m, s, f, dropped := newMerge(t)
	steps := []*pb.Event{
		f.ev(memA, &pb.Trade{Price: 10000, Size: 1}), // before A's reference data: counted, dropped
		f.ev(memA, infoOf(memA, 2, 2, 1, 1)),
		f.ev(memA, &pb.Trade{Price: 10000, Size: 1}), // before the instrument started: counted, dropped
		f.ev(memB, infoOf(memB, 3, 1, 5, 1)),
		f.ev(memA, snap([]*pb.Level{lv(10000, 150)}, []*pb.Level{lv(10002, 10)})), // 100.00 x 1.50 / 100.02 x 0.10
		f.ev(memB, snap([]*pb.Level{lv(100005, 3)}, []*pb.Level{lv(100020, 2)})),  // 100.005 x 0.3 / 100.020 x 0.2
	}
	for _, ev := range steps {
		if err := m.Apply(ev, s.emit); err != nil {
			t.Fatal(err)
		}
	}
	if len(s.events) != 0 || m.Started() {
		t.Fatalf("emitted %d events before Start", len(s.events))
	}
	if dropped[ReasonNoInfo] != 1 || dropped[ReasonNotStarted] != 1 {
		t.Fatalf("dropped %v, want a no_info and a not_started trade", dropped)
	}
	if err := m.Start(1, s.emit); err != nil {
		t.Fatal(err)
	}
	// Merged scales: price 3, size 2; tick gcd(1*10, 5) = 5, lot gcd(1, 1*10) = 1.
	if i := s.info; i.PriceScale != 3 || i.SizeScale != 2 || i.TickSize != 5 || i.LotSize != 1 || len(i.Members) != 2 ||
		i.Venue != "consolidated" || i.Symbol != "X" || i.Status != pb.InstrumentStatus_INSTRUMENT_STATUS_TRADING {
		t.Fatalf("info %v", i)
	}
	wantBids := levels(book.Level{Price: 100005, Size: 30, Venues: 2}, book.Level{Price: 100000, Size: 150, Venues: 1})
	wantAsks := levels(book.Level{Price: 100020, Size: 30, Venues: 3}) // both venues at 100.020: 0.10 + 0.20
	check := func(step string) {
		t.Helper()
		if !equal(s.book.Bids(), wantBids) || !equal(s.book.Asks(), wantAsks) {
			t.Fatalf("%s: book %v / %v, want %v / %v", step, s.book.Bids(), s.book.Asks(), wantBids, wantAsks)
		}
		bids, asks := m.Book()
		if len(bids) != len(wantBids) || len(asks) != len(wantAsks) {
			t.Fatalf("%s: Merge.Book has %d/%d levels", step, len(bids), len(asks))
		}
	}
	check("start")
	s.take()

	// A delta of A: only the level it changes, with its venues.
	if err := m.Apply(f.ev(memA, &pb.BookUpdate{Asks: []*pb.Level{lv(10002, 0)}}), s.emit); err != nil {
		t.Fatal(err)
	}
	wantAsks = levels(book.Level{Price: 100020, Size: 20, Venues: 2})
	check("A leaves the shared ask")
	if evs := s.take(); len(evs) != 1 || len(evs[0].GetBook().Asks) != 1 || evs[0].GetBook().Asks[0].Venues != 2 {
		t.Fatalf("emitted %v", evs)
	}

	// A trade of B: at the merged scale, its id prefixed with the venue.
	if err := m.Apply(f.ev(memB, &pb.Trade{Price: 100020, Size: 1, Side: pb.Side_SIDE_BUY, TradeId: "42"}), s.emit); err != nil {
		t.Fatal(err)
	}
	if evs := s.take(); len(evs) != 1 || evs[0].GetTrade().GetPrice() != 100020 || evs[0].GetTrade().GetSize() != 10 ||
		evs[0].GetTrade().GetTradeId() != "b:42" {
		t.Fatalf("trade emitted as %v", evs)
	}

	// B skips a seq: its levels leave the merged book, its deltas wait for a snapshot.
	f.seq[memB]++
	if err := m.Apply(f.ev(memB, &pb.BookUpdate{Bids: []*pb.Level{lv(100010, 1)}}), s.emit); err != nil {
		t.Fatal(err)
	}
	wantBids, wantAsks = levels(book.Level{Price: 100000, Size: 150, Venues: 1}), nil
	check("B's gap")
	if got := m.NeedSnapshot(); len(got) != 1 || got[0] != memB {
		t.Fatalf("NeedSnapshot = %v", got)
	}
	// A duplicate of A changes nothing.
	dup := f.ev(memA, &pb.BookUpdate{Bids: []*pb.Level{lv(9999, 5)}})
	if err := m.Apply(dup, s.emit); err != nil {
		t.Fatal(err)
	}
	wantBids = levels(book.Level{Price: 100000, Size: 150, Venues: 1}, book.Level{Price: 99990, Size: 5, Venues: 1})
	if err := m.Apply(dup, s.emit); err != nil {
		t.Fatal(err)
	}
	check("A's duplicate")
	// B's snapshot brings it back.
	if err := m.Apply(f.ev(memB, snap([]*pb.Level{lv(100000, 1)}, []*pb.Level{lv(100030, 4)})), s.emit); err != nil {
		t.Fatal(err)
	}
	wantBids = levels(book.Level{Price: 100000, Size: 160, Venues: 3}, book.Level{Price: 99990, Size: 5, Venues: 1})
	wantAsks = levels(book.Level{Price: 100030, Size: 40, Venues: 2})
	check("B's snapshot")

	// B goes silent: out of the merge.
	if err := m.Stale(memB, 2, s.emit); err != nil {
		t.Fatal(err)
	}
	wantBids, wantAsks = levels(book.Level{Price: 100000, Size: 150, Venues: 1}, book.Level{Price: 99990, Size: 5, Venues: 1}), nil
	check("B stale")

	// A's reference data at a finer price scale than the merged one: a restart.
	if err := m.Apply(f.ev(memA, infoOf(memA, 4, 2, 1, 1)), s.emit); !errors.Is(err, errRestart) {
		t.Fatalf("finer scale: %v, want errRestart", err)
	}
}

// TestMergeMatchesMembers: over random snapshots, deltas, gaps and silences of three members
// at different scales, the book a client builds from the emitted events always equals the
// merge of the members' books built independently, level by level with its venues.
func TestMergeMatchesMembers(t *testing.T) {
	ids := []string{"a:X", "b:X", "c:X"}
	scales := []int32{2, 3, 2}
	m, err := NewMerge(Spec{ID: "consolidated:X", Members: ids}, nil)
	if err != nil {
		t.Fatal(err)
	}
	s, f := &sink{}, &feed{}
	r := rand.New(rand.NewPCG(3, 4))
	// What each member's subscriber would hold (nil: out of the merge until its next snapshot).
	ref := make([]*book.Book, len(ids))
	for i, id := range ids {
		if err := m.Apply(f.ev(id, infoOf(id, scales[i], 2, 1, 1)), s.emit); err != nil {
			t.Fatal(err)
		}
	}
	if err := m.Start(0, s.emit); err != nil {
		t.Fatal(err)
	}
	price := func(i int) int64 { // 99.0 .. 100.9 at the member's scale: prices overlap across members
		p := int64(990 + r.IntN(20))
		if scales[i] == 3 {
			return p * 100
		}
		return p * 10
	}
	for step := range 5000 {
		i := r.IntN(len(ids))
		id := ids[i]
		var ev *pb.Event
		switch k := r.IntN(20); {
		case k == 0 || ref[i] == nil:
			bu := &pb.BookUpdate{Snapshot: true}
			ref[i] = &book.Book{}
			for range 1 + r.IntN(8) {
				p, sz := price(i), int64(1+r.IntN(50))
				if _, ok := ref[i].Rank(book.Bid, p); ok {
					continue
				}
				ref[i].Set(book.Bid, p, sz)
				bu.Bids = append(bu.Bids, lv(p, sz))
			}
			ev = f.ev(id, bu)
		case k == 1: // a gap
			f.seq[id]++
			ev = f.ev(id, &pb.BookUpdate{Bids: []*pb.Level{lv(price(i), 1)}})
			ref[i] = nil
		case k == 2:
			if err := m.Stale(id, int64(step), s.emit); err != nil {
				t.Fatal(err)
			}
			ref[i] = nil
			continue
		default:
			p, sz := price(i), int64(r.IntN(50))
			ref[i].Set(book.Bid, p, sz)
			ev = f.ev(id, &pb.BookUpdate{Bids: []*pb.Level{lv(p, sz)}})
		}
		if err := m.Apply(ev, s.emit); err != nil {
			t.Fatal(err)
		}
		// The reference merge, at price scale 3, size scale 2.
		want := map[int64]book.Level{}
		for j, b := range ref {
			if b == nil {
				continue
			}
			for _, l := range b.Bids() {
				p := l.Price
				if scales[j] == 2 {
					p *= 10
				}
				w := want[p]
				w.Price, w.Size, w.Venues = p, w.Size+l.Size, w.Venues|1<<j
				want[p] = w
			}
		}
		got := s.book.Bids()
		if len(got) != len(want) {
			t.Fatalf("step %d: %d merged levels, want %d", step, len(got), len(want))
		}
		for _, l := range got {
			if want[l.Price] != l {
				t.Fatalf("step %d: level %v, want %v", step, l, want[l.Price])
			}
		}
	}
}

func TestParseSpec(t *testing.T) {
	for _, tc := range []struct {
		in  string
		ok  bool
		id  string
		mem int
	}{
		{"consolidated:BTC-USD=coinbase:BTC-USD,kraken:BTC/USD,binance:BTCUSDT", true, "consolidated:BTC-USD", 3},
		{"BTC-USD=coinbase:BTC-USD,kraken:BTC/USD", true, "consolidated:BTC-USD", 2},
		{"coinbase:BTC=coinbase:BTC-USD,kraken:BTC/USD", false, "", 0}, // not the consolidated venue
		{"BTC-USD=coinbase:BTC-USD", false, "", 0},                     // one member
		{"BTC-USD=coinbase:BTC-USD,coinbase:BTC-USD", false, "", 0},    // twice
		{"BTC-USD", false, "", 0},
		{"BTC-USD=", false, "", 0},
		{"BTC-USD=coinbase:BTC-USD,consolidated:ETH-USD", false, "", 0},
	} {
		sp, err := ParseSpec(tc.in)
		if (err == nil) != tc.ok || (tc.ok && (sp.ID != tc.id || len(sp.Members) != tc.mem)) {
			t.Errorf("ParseSpec(%q) = %+v, %v", tc.in, sp, err)
		}
		if err != nil && !errors.Is(err, ErrSpec) {
			t.Errorf("ParseSpec(%q): %v is not ErrSpec", tc.in, err)
		}
	}
}

func equal(a, b []book.Level) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// BenchmarkMergeApply: one member book delta (one level changed, as most venue updates are)
// merged into a consolidated book of three members with 50 levels a side each.
func BenchmarkMergeApply(b *testing.B) {
	ids := []string{"a:X", "b:X", "c:X"}
	m, err := NewMerge(Spec{ID: "consolidated:X", Members: ids}, nil)
	if err != nil {
		b.Fatal(err)
	}
	f := &feed{}
	discard := func(*pb.Event) error { return nil }
	for i, id := range ids {
		bu := &pb.BookUpdate{Snapshot: true}
		for k := range int64(50) {
			bu.Bids = append(bu.Bids, lv(10000-k-int64(i), 100+k))
			bu.Asks = append(bu.Asks, lv(10100+k+int64(i), 100+k))
		}
		for _, ev := range []*pb.Event{f.ev(id, infoOf(id, 2, 2, 1, 1)), f.ev(id, bu)} {
			if err := m.Apply(ev, discard); err != nil {
				b.Fatal(err)
			}
		}
	}
	if err := m.Start(0, discard); err != nil {
		b.Fatal(err)
	}
	evs := make([]*pb.Event, 1024)
	r := rand.New(rand.NewPCG(1, 1))
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		k := i % len(evs)
		if k == 0 {
			for j := range evs {
				id := ids[r.IntN(len(ids))]
				evs[j] = f.ev(id, &pb.BookUpdate{Bids: []*pb.Level{lv(10000-int64(r.IntN(52)), int64(r.IntN(200)))}})
			}
		}
		if err := m.Apply(evs[k], discard); err != nil {
			b.Fatal(err)
		}
		i++
	}
}
