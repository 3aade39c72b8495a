package market

import (
	"errors"
	"math/rand/v2"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/tickwire/tickwire/pkg/book"
	pb "github.com/tickwire/tickwire/pkg/proto/tickwire/v1"
)

const testID = "synthetic:TEST"

var allChannels = []pb.Channel{pb.Channel_CHANNEL_QUOTE, pb.Channel_CHANNEL_BOOK, pb.Channel_CHANNEL_TRADES,
	pb.Channel_CHANNEL_CANDLES, pb.Channel_CHANNEL_STATS}

// eventGen makes a plausible random event stream for one instrument: a book snapshot, then level
// updates and trades around a drifting mid, in one epoch, with seconds passing.
type eventGen struct {
	rng   *rand.Rand
	epoch uint64
	seq   uint64
	ts    int64
	mid   int64
}

func newEventGen(seed uint64) *eventGen {
	return &eventGen{rng: rand.New(rand.NewPCG(seed, 7)), epoch: 1700000000, ts: 1_700_000_000e9, mid: 10_000}
}

func (g *eventGen) next() *pb.Event {
	g.seq++
	g.ts += int64(g.rng.IntN(300)) * 1e6
	ev := &pb.Event{Instrument: testID, Epoch: g.epoch, Seq: g.seq, VenueTimeNs: g.ts, IngestTimeNs: g.ts + 1000}
	switch {
	case g.seq == 1:
		ev.Body = &pb.Event_Info{Info: &pb.InstrumentInfo{Id: testID, PriceScale: 2, SizeScale: 3, TickSize: 1, LotSize: 1}}
	case g.seq == 2:
		u := &pb.BookUpdate{Snapshot: true}
		for i := range int64(30) {
			u.Bids = append(u.Bids, &pb.Level{Price: g.mid - 1 - i, Size: 100 + i})
			u.Asks = append(u.Asks, &pb.Level{Price: g.mid + 1 + i, Size: 100 + i})
		}
		ev.Body = &pb.Event_Book{Book: u}
	case g.rng.IntN(5) == 0:
		side := pb.Side(1 + g.rng.IntN(2))
		ev.Body = &pb.Event_Trade{Trade: &pb.Trade{Price: g.mid + int64(g.rng.IntN(5)) - 2, Size: int64(1 + g.rng.IntN(50)), Side: side}}
	default:
		g.mid += int64(g.rng.IntN(3)) - 1
		u := &pb.BookUpdate{}
		for range 1 + g.rng.IntN(3) {
			off := int64(1 + g.rng.IntN(40))
			size := int64(g.rng.IntN(4)) * int64(1+g.rng.IntN(300))
			if g.rng.IntN(2) == 0 {
				u.Bids = append(u.Bids, &pb.Level{Price: g.mid - off, Size: size})
			} else {
				u.Asks = append(u.Asks, &pb.Level{Price: g.mid + off, Size: size})
			}
		}
		ev.Body = &pb.Event_Book{Book: u}
	}
	return ev
}

// client follows one depth of every channel from a snapshot taken at some point of the stream.
type client struct {
	depthIndex int
	replica    Replica
}

func deltasFor(res *Result, depthIndex int) []*pb.Delta {
	var out []*pb.Delta
	for _, d := range []*pb.Delta{res.Quote, res.Trades, res.Candles, res.Stats} {
		if d != nil {
			out = append(out, d)
		}
	}
	if res.Book != nil && res.Book[depthIndex] != nil {
		out = append(out, res.Book[depthIndex])
	}
	return out
}

// TestReplicaMatchesState is the contract between server and client: clients that start from a
// snapshot at any point and apply the deltas after it hold the server's snapshot at every seq,
// for every channel and every offered depth, with every delta accepted and every checksum equal.
func TestReplicaMatchesState(t *testing.T) {
	cfg := Config{Depths: []uint32{1, 10, 25}, TradeHistory: 20, CandleIntervals: []uint32{1, 60}, CandleHistory: 50}
	s := NewState(testID, cfg)
	g := newEventGen(42)
	var clients []*client
	for i := range 5000 {
		res, err := s.Apply(g.next())
		if err != nil {
			t.Fatalf("event %d: %v", i, err)
		}
		for ci, c := range clients {
			for _, d := range deltasFor(res, c.depthIndex) {
				if err := c.replica.ApplyDelta(roundTrip(t, d)); err != nil {
					t.Fatalf("event %d client %d: %v", i, ci, err)
				}
			}
			if i%97 == 0 {
				assertSameState(t, s, c)
			}
		}
		if i%700 == 10 { // a new client joins from a snapshot of every channel
			c := &client{depthIndex: len(clients) % len(cfg.Depths), replica: Replica{TradeHistory: 20, CandleHistory: 50}}
			for _, ch := range allChannels {
				snap := s.Snapshot(ch, c.depthIndex, pb.SnapshotReason_SNAPSHOT_REASON_SUBSCRIBE)
				if snap == nil {
					t.Fatalf("event %d: no %v snapshot", i, ch)
				}
				if err := c.replica.ApplySnapshot(roundTrip(t, snap)); err != nil {
					t.Fatalf("event %d: %v snapshot: %v", i, ch, err)
				}
			}
			clients = append(clients, c)
		}
	}
	if len(clients) < 5 {
		t.Fatalf("only %d clients joined", len(clients))
	}
	for _, c := range clients {
		assertSameState(t, s, c)
	}
}

// roundTrip sends a message through its wire encoding, as a real client would receive it.
func roundTrip[M proto.Message](t *testing.T, m M) M {
	t.Helper()
	b, err := proto.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	out := m.ProtoReflect().New().Interface().(M)
	if err := proto.Unmarshal(b, out); err != nil {
		t.Fatal(err)
	}
	return out
}

func assertSameState(t *testing.T, s *State, c *client) {
	t.Helper()
	r := &c.replica
	for _, ch := range allChannels {
		snap := s.Snapshot(ch, c.depthIndex, pb.SnapshotReason_SNAPSHOT_REASON_SUBSCRIBE)
		var fresh Replica
		fresh.TradeHistory, fresh.CandleHistory = r.TradeHistory, r.CandleHistory
		if err := fresh.ApplySnapshot(snap); err != nil {
			t.Fatal(err)
		}
		switch ch {
		case pb.Channel_CHANNEL_QUOTE:
			if !proto.Equal(fresh.Quote(), r.Quote()) {
				t.Fatalf("quote: replica %v, server %v", r.Quote(), fresh.Quote())
			}
		case pb.Channel_CHANNEL_BOOK:
			if !fresh.Book().Equal(r.Book()) {
				t.Fatalf("book depth %d: replica %v %v, server %v %v", r.Depth(), r.Book().Bids(), r.Book().Asks(), fresh.Book().Bids(), fresh.Book().Asks())
			}
		case pb.Channel_CHANNEL_TRADES:
			equalMsgs(t, "trades", fresh.Trades(), r.Trades())
		case pb.Channel_CHANNEL_CANDLES:
			equalMsgs(t, "candles", fresh.Candles(), r.Candles())
		case pb.Channel_CHANNEL_STATS:
			if !proto.Equal(fresh.Stats(), r.Stats()) {
				t.Fatalf("stats: replica %v, server %v", r.Stats(), fresh.Stats())
			}
		}
	}
}

func equalMsgs[M proto.Message](t *testing.T, what string, want, got []M) {
	t.Helper()
	if len(want) != len(got) {
		t.Fatalf("%s: replica has %d, server %d", what, len(got), len(want))
	}
	for i := range want {
		if !proto.Equal(want[i], got[i]) {
			t.Fatalf("%s[%d]: replica %v, server %v", what, i, got[i], want[i])
		}
	}
}

func TestApplyRejects(t *testing.T) {
	s := NewState(testID, Config{})
	g := newEventGen(1)
	for range 3 {
		if _, err := s.Apply(g.next()); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name string
		ev   *pb.Event
		want error
	}{
		{"other instrument", &pb.Event{Instrument: "x:Y", Epoch: g.epoch, Seq: 4, Body: &pb.Event_Trade{Trade: &pb.Trade{Price: 1, Size: 1}}}, ErrBadEvent},
		{"no body", &pb.Event{Instrument: testID, Epoch: g.epoch, Seq: 4}, ErrBadEvent},
		{"zero seq", &pb.Event{Instrument: testID, Epoch: g.epoch, Body: &pb.Event_Trade{Trade: &pb.Trade{Price: 1, Size: 1}}}, ErrBadEvent},
		{"zero price trade", &pb.Event{Instrument: testID, Epoch: g.epoch, Seq: 4, Body: &pb.Event_Trade{Trade: &pb.Trade{Size: 1}}}, ErrBadEvent},
		{"negative level", &pb.Event{Instrument: testID, Epoch: g.epoch, Seq: 4, Body: &pb.Event_Book{Book: &pb.BookUpdate{Bids: []*pb.Level{{Price: 5, Size: -1}}}}}, ErrBadEvent},
		{"zero size in snapshot", &pb.Event{Instrument: testID, Epoch: g.epoch, Seq: 4, Body: &pb.Event_Book{Book: &pb.BookUpdate{Snapshot: true, Bids: []*pb.Level{{Price: 5}}}}}, ErrBadEvent},
		{"redelivery", &pb.Event{Instrument: testID, Epoch: g.epoch, Seq: 3, Body: &pb.Event_Trade{Trade: &pb.Trade{Price: 1, Size: 1}}}, ErrStaleEvent},
		{"older epoch", &pb.Event{Instrument: testID, Epoch: g.epoch - 1, Seq: 9, Body: &pb.Event_Trade{Trade: &pb.Trade{Price: 1, Size: 1}}}, ErrStaleEvent},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := s.Apply(tt.ev)
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
			if e, q := s.Position(); e != g.epoch || q != 3 {
				t.Fatalf("position moved to %d/%d", e, q)
			}
		})
	}
}

func TestGapUnsyncsBookUntilSnapshot(t *testing.T) {
	s := NewState(testID, Config{})
	g := newEventGen(3)
	for range 10 {
		if _, err := s.Apply(g.next()); err != nil {
			t.Fatal(err)
		}
	}
	g.next() // lost
	res, err := s.Apply(g.next())
	if err != nil || !res.Gap || s.BookSynced() {
		t.Fatalf("gap: res %+v err %v synced %v", res, err, s.BookSynced())
	}
	if s.Snapshot(pb.Channel_CHANNEL_BOOK, 0, 0) != nil {
		t.Fatal("unsynced book served")
	}
	g.seq++
	res, err = s.Apply(&pb.Event{Instrument: testID, Epoch: g.epoch, Seq: g.seq, Body: &pb.Event_Book{Book: &pb.BookUpdate{
		Snapshot: true, Bids: []*pb.Level{{Price: 99, Size: 1}}, Asks: []*pb.Level{{Price: 101, Size: 1}}}}})
	if err != nil || !res.BookReset || !s.BookSynced() {
		t.Fatalf("snapshot: res %+v err %v", res, err)
	}
	if q := s.Snapshot(pb.Channel_CHANNEL_QUOTE, 0, 0).GetQuote(); q.BidPrice != 99 || q.AskPrice != 101 {
		t.Fatalf("quote after snapshot %v", q)
	}
}

func TestNewEpochResets(t *testing.T) {
	s := NewState(testID, Config{})
	g := newEventGen(4)
	for range 20 {
		if _, err := s.Apply(g.next()); err != nil {
			t.Fatal(err)
		}
	}
	g.epoch++
	g.seq = 0
	res, err := s.Apply(g.next())
	if err != nil || !res.NewEpoch || s.BookSynced() || s.Book().Len(book.Bid) != 0 {
		t.Fatalf("new epoch: res %+v err %v", res, err)
	}
}

func TestReplicaRefuses(t *testing.T) {
	var r Replica
	snap := &pb.Snapshot{Channel: pb.Channel_CHANNEL_QUOTE, Epoch: 5, Seq: 10, Body: &pb.Snapshot_Quote{Quote: &pb.Quote{BidPrice: 1, BidSize: 1}}}
	q := func(epoch, seq, prev uint64) *pb.Delta {
		return &pb.Delta{Epoch: epoch, Seq: seq, PrevSeq: prev, Body: &pb.Delta_Quote{Quote: &pb.Quote{BidPrice: 2, BidSize: 1}}}
	}
	tests := []struct {
		name  string
		delta *pb.Delta
		want  error
		sync  bool // synced afterwards
	}{
		{"follows", q(5, 12, 9), nil, true},
		{"follows exactly", q(5, 11, 10), nil, true},
		{"stale", q(5, 10, 8), ErrStale, true},
		{"gap", q(5, 13, 11), ErrGap, false},
		{"epoch", q(6, 1, 0), ErrEpoch, false},
		{"no body", &pb.Delta{Epoch: 5, Seq: 11}, ErrBadMessage, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r = Replica{}
			if err := r.ApplySnapshot(snap); err != nil {
				t.Fatal(err)
			}
			err := r.ApplyDelta(tt.delta)
			if !errors.Is(err, tt.want) || (tt.want == nil && err != nil) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
			if r.Synced(pb.Channel_CHANNEL_QUOTE) != tt.sync {
				t.Fatalf("synced = %v", !tt.sync)
			}
		})
	}
	var fresh Replica
	if err := fresh.ApplyDelta(q(5, 11, 10)); !errors.Is(err, ErrNotSynced) {
		t.Fatalf("delta before snapshot: %v", err)
	}
	bad := &pb.Snapshot{Channel: pb.Channel_CHANNEL_BOOK, Epoch: 1, Seq: 1, Checksum: 1,
		Body: &pb.Snapshot_Book{Book: &pb.BookLevels{Depth: 10, Bids: []*pb.Level{{Price: 1, Size: 1}}}}}
	if err := fresh.ApplySnapshot(bad); !errors.Is(err, ErrChecksum) || fresh.Synced(pb.Channel_CHANNEL_BOOK) {
		t.Fatalf("bad checksum snapshot: %v", err)
	}
	mismatch := &pb.Snapshot{Channel: pb.Channel_CHANNEL_TRADES, Body: &pb.Snapshot_Quote{Quote: &pb.Quote{}}}
	if err := fresh.ApplySnapshot(mismatch); !errors.Is(err, ErrBadMessage) {
		t.Fatalf("mismatched body: %v", err)
	}
}

func TestBookDeltaChecksumCatchesDrift(t *testing.T) {
	s := NewState(testID, Config{Depths: []uint32{10}})
	g := newEventGen(9)
	var r Replica
	for i := range 200 {
		res, err := s.Apply(g.next())
		if err != nil {
			t.Fatal(err)
		}
		if i == 2 {
			if err := r.ApplySnapshot(s.Snapshot(pb.Channel_CHANNEL_BOOK, 0, 0)); err != nil {
				t.Fatal(err)
			}
			r.book.Set(book.Bid, r.book.Bids()[0].Price, 424242) // corrupt the replica
			continue
		}
		if i > 2 && res.Book != nil && res.Book[0] != nil {
			err := r.ApplyDelta(res.Book[0])
			if errors.Is(err, ErrChecksum) {
				return
			}
			if err != nil {
				t.Fatal(err)
			}
		}
	}
	t.Fatal("corrupted replica never failed its checksum")
}

func TestVWAPNoOverflow(t *testing.T) {
	s := NewState(testID, Config{})
	price, size := int64(6_000_000_000), int64(100_000_000_000) // 6e19 notional per trade
	for i := uint64(1); i <= 10; i++ {
		if _, err := s.Apply(&pb.Event{Instrument: testID, Epoch: 1, Seq: i, VenueTimeNs: 1e18,
			Body: &pb.Event_Trade{Trade: &pb.Trade{Price: price, Size: size}}}); err != nil {
			t.Fatal(err)
		}
	}
	if st := s.Snapshot(pb.Channel_CHANNEL_STATS, 0, 0).GetStats(); st.Vwap != price || st.Volume != 10*size || st.TradeCount != 10 {
		t.Fatalf("stats %v", st)
	}
}

// TestHistoryTrades: a history trade (the venue's tape from before ingest saw the market) is on
// the trades stream and in its snapshot, but not in candles or session stats.
func TestHistoryTrades(t *testing.T) {
	s := NewState(testID, Config{})
	trade := func(seq uint64, price int64, history bool) *Result {
		t.Helper()
		res, err := s.Apply(&pb.Event{Instrument: testID, Epoch: 1, Seq: seq, VenueTimeNs: 1e18 + int64(seq)*1e9,
			Body: &pb.Event_Trade{Trade: &pb.Trade{Price: price, Size: 10, History: history}}})
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	for seq, price := range []int64{90, 91} {
		if res := trade(uint64(seq+1), price, true); res.Trades == nil || res.Candles != nil || res.Stats != nil {
			t.Fatalf("history trade: trades %v candles %v stats %v, want a trades delta only", res.Trades, res.Candles, res.Stats)
		}
	}
	if res := trade(3, 100, false); res.Trades == nil || res.Candles == nil || res.Stats == nil {
		t.Fatal("a live trade should change trades, candles and stats")
	}
	if tr := s.Snapshot(pb.Channel_CHANNEL_TRADES, 0, 0).GetTrades().GetTrades(); len(tr) != 3 || !tr[0].Trade.History || tr[2].Trade.History {
		t.Fatalf("trades snapshot %v, want both history trades then the live one", tr)
	}
	st := s.Snapshot(pb.Channel_CHANNEL_STATS, 0, 0).GetStats()
	if st.Volume != 10 || st.TradeCount != 1 || st.Open != 100 || st.Low != 100 {
		t.Fatalf("stats %v count history trades", st)
	}
	for _, c := range s.Snapshot(pb.Channel_CHANNEL_CANDLES, 0, 0).GetCandles().GetCandles() {
		if c.Volume != 10 || c.Open != 100 {
			t.Fatalf("candle %v counts history trades", c)
		}
	}
}

// TestHistoryTradeAlreadyHeld: a history trade the tape already holds (the same trade, live or
// history: a venue's recent trades sent again at a reconnect, a replay chain restarting over a
// tape that has them) is not added again and sends no delta; one it does not hold is added.
func TestHistoryTradeAlreadyHeld(t *testing.T) {
	s := NewState(testID, Config{})
	seq := uint64(0)
	apply := func(ns, price int64, id string, history bool) *Result {
		t.Helper()
		seq++
		res, err := s.Apply(&pb.Event{Instrument: testID, Epoch: 1, Seq: seq, VenueTimeNs: ns,
			Body: &pb.Event_Trade{Trade: &pb.Trade{Price: price, Size: 10, Side: pb.Side_SIDE_BUY, TradeId: id, History: history}}})
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	apply(1e18, 100, "7", false)
	apply(1e18+1, 101, "8", true)
	for _, tc := range []struct {
		name    string
		ns      int64
		price   int64
		id      string
		skipped bool
	}{
		{"a live trade sent again as history", 1e18, 100, "7", true},
		{"a history trade sent again", 1e18 + 1, 101, "8", true},
		{"another id", 1e18, 100, "9", false},
		{"another time", 1e18 + 5, 100, "7", false},
		{"another price", 1e18, 99, "7", false},
	} {
		before := len(s.Snapshot(pb.Channel_CHANNEL_TRADES, 0, 0).GetTrades().GetTrades())
		res := apply(tc.ns, tc.price, tc.id, true)
		after := len(s.Snapshot(pb.Channel_CHANNEL_TRADES, 0, 0).GetTrades().GetTrades())
		if skipped := res.Trades == nil && after == before; skipped != tc.skipped || (!tc.skipped && after != before+1) {
			t.Errorf("%s: delta %v, %d -> %d trades; want skipped %v", tc.name, res.Trades, before, after, tc.skipped)
		}
	}
}

func BenchmarkApply(b *testing.B) {
	g := newEventGen(5)
	evs := make([]*pb.Event, 100_000)
	for i := range evs {
		evs[i] = g.next()
	}
	s := NewState(testID, Config{})
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if i == len(evs) {
			b.StopTimer()
			s = NewState(testID, Config{})
			i = 0
			b.StartTimer()
		}
		if _, err := s.Apply(evs[i]); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

// TestJoinMidEpochChainsToBefore: a state that starts (or resumes after a gap) in the middle of
// an epoch chains every stream to the event before, so that no client positioned earlier can
// take its first deltas for a continuation.
func TestJoinMidEpochChainsToBefore(t *testing.T) {
	s := NewState(testID, Config{})
	trade := func(seq uint64) *pb.Event {
		return &pb.Event{Instrument: testID, Epoch: 9, Seq: seq, VenueTimeNs: 1e18, Body: &pb.Event_Trade{Trade: &pb.Trade{Price: 5, Size: 1}}}
	}
	res, err := s.Apply(trade(100))
	if err != nil {
		t.Fatal(err)
	}
	if res.Trades.PrevSeq != 99 || res.Stats.PrevSeq != 99 {
		t.Fatalf("first deltas chain to %d/%d, want 99", res.Trades.PrevSeq, res.Stats.PrevSeq)
	}
	if res, _ = s.Apply(trade(101)); res.Trades.PrevSeq != 100 {
		t.Fatalf("next delta chains to %d, want 100", res.Trades.PrevSeq)
	}
	if res, _ = s.Apply(trade(150)); !res.Gap || res.Trades.PrevSeq != 149 {
		t.Fatalf("after a gap: gap %v, chains to %d, want 149", res.Gap, res.Trades.PrevSeq)
	}
}

// TestEpochBackInTimeForgetsHistory: a new epoch whose events are older than what was applied (a
// replay sought back) drops trades, candles and statistics of the later run; a new epoch that
// goes on in time (a live reconnect) keeps them.
func TestEpochBackInTimeForgetsHistory(t *testing.T) {
	trade := func(epoch, seq uint64, ts int64) *pb.Event {
		return &pb.Event{Instrument: testID, Epoch: epoch, Seq: seq, VenueTimeNs: ts, Body: &pb.Event_Trade{Trade: &pb.Trade{Price: 5, Size: 1}}}
	}
	for _, tt := range []struct {
		name       string
		ts         int64
		wantTrades int
	}{{"forward", 2e18 + 1e9, 2}, {"backward", 2e18 - 1e9, 1}} {
		t.Run(tt.name, func(t *testing.T) {
			s := NewState(testID, Config{})
			if _, err := s.Apply(trade(1, 1, 2e18)); err != nil {
				t.Fatal(err)
			}
			if _, err := s.Apply(trade(2, 1, tt.ts)); err != nil {
				t.Fatal(err)
			}
			snap := s.Snapshot(pb.Channel_CHANNEL_TRADES, 0, 0)
			if got := len(snap.GetTrades().Trades); got != tt.wantTrades {
				t.Fatalf("%d trades, want %d", got, tt.wantTrades)
			}
			if st := s.Snapshot(pb.Channel_CHANNEL_STATS, 0, 0).GetStats(); st.TradeCount != uint64(tt.wantTrades) {
				t.Fatalf("stats count %d, want %d", st.TradeCount, tt.wantTrades)
			}
		})
	}
}

// TestCompactQuoteExpandsToDelta: a quote stream followed in the compact form gives the client
// exactly the Deltas the standard form carries (prices, sizes, seqs and both times), across a
// gap and a new epoch, and a missed compact quote is caught as a gap like a missed Delta.
func TestCompactQuoteExpandsToDelta(t *testing.T) {
	s := NewState(testID, Config{})
	rng := rand.New(rand.NewPCG(9, 9))
	epoch, seq, ts, bid := uint64(1700000000), uint64(0), int64(1_700_000_000e9), int64(10_000)
	next := func() *pb.Event {
		seq++
		ts += int64(rng.IntN(3e6))
		ev := &pb.Event{Instrument: testID, Epoch: epoch, Seq: seq, VenueTimeNs: ts - int64(rng.IntN(5e7)), IngestTimeNs: ts}
		switch {
		case rng.IntN(11) == 0:
			ev.VenueTimeNs = 0 // unknown venue time
		case rng.IntN(5) == 0:
			ev.Body = &pb.Event_Trade{Trade: &pb.Trade{Price: bid, Size: 1 + int64(rng.IntN(50))}}
			return ev
		}
		bid += int64(rng.IntN(5)) - 2
		ev.Body = &pb.Event_Quote{Quote: &pb.Quote{BidPrice: bid, BidSize: 1 + int64(rng.IntN(900)),
			AskPrice: bid + 1 + int64(rng.IntN(3)), AskSize: 1 + int64(rng.IntN(900))}}
		return ev
	}
	var r Replica
	resnapshot := func(i int) {
		t.Helper()
		snap := s.Snapshot(pb.Channel_CHANNEL_QUOTE, 0, pb.SnapshotReason_SNAPSHOT_REASON_RESYNC)
		if err := r.ApplySnapshot(roundTrip(t, snap)); err != nil {
			t.Fatalf("event %d: snapshot: %v", i, err)
		}
	}
	var compact pb.CompactQuote
	expanded, quotes, resyncs, skipped := 0, 0, 0, false
	for i := range 6000 {
		switch i {
		case 2000: // a gap: the state chains every stream to seq-1
			seq += 5
		case 4000: // a new epoch
			epoch++
			seq = 0
		}
		res, err := s.Apply(next())
		if err != nil {
			t.Fatalf("event %d: %v", i, err)
		}
		if i == 10 || res.NewEpoch { // the feed sends snapshots, not deltas, on a new epoch
			resnapshot(i)
			resyncs++
			continue
		}
		if i < 10 || !res.CompactQuote(&compact) {
			continue
		}
		quotes++
		d, err := r.ExpandCompactQuote(roundTrip(t, &compact))
		if err != nil {
			t.Fatalf("event %d: %v", i, err)
		}
		if i == 3000 && !skipped { // lose this one: the next must not follow on
			skipped = true
			continue
		}
		if err := r.ApplyDelta(d); err != nil {
			// After the gap and the skipped quote the client's base is not the feed's: the
			// chain refuses the delta before its numbers are used.
			if !errors.Is(err, ErrGap) {
				t.Fatalf("event %d: %v", i, err)
			}
			resnapshot(i)
			resyncs++
			continue
		}
		want := proto.CloneOf(res.Quote)
		want.VenueTimeNs, want.IngestTimeNs = TruncateTimes(want.VenueTimeNs, want.IngestTimeNs)
		if !proto.Equal(d, want) {
			t.Fatalf("event %d: compact %v expands to\n%v, want\n%v", i, &compact, d, want)
		}
		expanded++
	}
	if expanded < quotes*9/10 || quotes < 3000 || resyncs != 4 || !skipped {
		t.Fatalf("expanded %d of %d compact quotes, %d resyncs (want one each for the start, the gap, the skipped quote and the new epoch)",
			expanded, quotes, resyncs)
	}
	if got, want := r.Quote(), s.Snapshot(pb.Channel_CHANNEL_QUOTE, 0, 0).GetQuote(); !proto.Equal(got, want) {
		t.Fatalf("replica quote %v, state %v", got, want)
	}
}

// TestExpandCompactQuoteRefuses: a compact quote on a stream without a snapshot, or with a seq
// step that names no possible previous delta, is refused and leaves the replica as it was.
func TestExpandCompactQuoteRefuses(t *testing.T) {
	var synced Replica
	if err := synced.ApplySnapshot(&pb.Snapshot{Channel: pb.Channel_CHANNEL_QUOTE, Epoch: 3, Seq: 10, LastIngestTimeNs: 5000,
		Body: &pb.Snapshot_Quote{Quote: &pb.Quote{BidPrice: 100, BidSize: 1, AskPrice: 101, AskSize: 1}}}); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		r    Replica
		c    *pb.CompactQuote
		want error
	}{
		{"no snapshot", Replica{}, &pb.CompactQuote{Seq: 11, SeqStep: 1}, ErrNotSynced},
		{"step 0", synced, &pb.CompactQuote{Seq: 11}, ErrBadMessage},
		{"step past seq 0", synced, &pb.CompactQuote{Seq: 11, SeqStep: 12}, ErrBadMessage},
		{"follows", synced, &pb.CompactQuote{Seq: 11, SeqStep: 1, IngestTimeStepUs: 2, BidSizeChange: 4}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := tt.r
			d, err := tt.r.ExpandCompactQuote(tt.c)
			if !errors.Is(err, tt.want) || (err == nil) != (tt.want == nil) {
				t.Fatalf("error %v, want %v", err, tt.want)
			}
			if !tt.r.EqualChannel(&before, pb.Channel_CHANNEL_QUOTE) || tt.r.Position(pb.Channel_CHANNEL_QUOTE) != before.Position(pb.Channel_CHANNEL_QUOTE) {
				t.Fatal("the replica changed")
			}
			if err == nil {
				want := &pb.Delta{Epoch: 3, Seq: 11, PrevSeq: 10, IngestTimeNs: 7000, VenueTimeNs: 7000,
					Body: &pb.Delta_Quote{Quote: &pb.Quote{BidPrice: 100, BidSize: 5, AskPrice: 101, AskSize: 1}}}
				if !proto.Equal(d, want) {
					t.Fatalf("expanded to %v, want %v", d, want)
				}
			}
		})
	}
}

// TestFullDepthHashCatchesDeepDrift: a replica whose book differs below the checksum's top 10
// levels passes the CRC32 but fails the full-depth hash on the next book delta, and the hash
// the state keeps up to date delta by delta always equals the hash of its whole view.
func TestFullDepthHashCatchesDeepDrift(t *testing.T) {
	s := NewState(testID, Config{Depths: []uint32{10, 50}})
	g := newEventGen(9)
	var r Replica
	corrupted := false
	for i := range 3000 {
		res, err := s.Apply(g.next())
		if err != nil {
			t.Fatal(err)
		}
		if s.BookSynced() {
			bids, asks := s.Book().Top(book.Bid, 50), s.Book().Top(book.Ask, 50)
			if d := res.Book; d != nil && d[1] != nil && d[1].BookHash != book.Hash(bids, asks) {
				t.Fatalf("event %d: delta hash %#x, whole view %#x", i, d[1].BookHash, book.Hash(bids, asks))
			}
		}
		if !corrupted && s.BookSynced() && len(s.Book().Top(book.Bid, 50)) > 20 {
			if err := r.ApplySnapshot(s.Snapshot(pb.Channel_CHANNEL_BOOK, 1, 0)); err != nil {
				t.Fatal(err)
			}
			deep := r.book.Top(book.Bid, 50)[15] // below the checksum's 10 levels
			r.book.Set(book.Bid, deep.Price, deep.Size+1)
			corrupted = true
			continue
		}
		if corrupted && res.Book != nil && res.Book[1] != nil {
			err := r.ApplyDelta(res.Book[1])
			if errors.Is(err, ErrChecksum) {
				if !strings.Contains(err.Error(), "full-depth hash") {
					t.Fatalf("caught by the CRC32, not the hash: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
		}
	}
	t.Fatal("a replica wrong at level 16 never failed the full-depth hash")
}

// TestSessionStatsSeed: a replay chain's session statistics are adopted by a state that has none
// for that session (with the notional, so the VWAP of later trades is exact), ignored by one that
// has them, and refused when malformed.
func TestSessionStatsSeed(t *testing.T) {
	seq := uint64(0)
	ev := func(body any) *pb.Event {
		seq++
		e := &pb.Event{Instrument: testID, Epoch: 1, Seq: seq, VenueTimeNs: 1_700_000_000e9 + int64(seq)}
		switch b := body.(type) {
		case *pb.SessionStats:
			e.Body = &pb.Event_Stats{Stats: b}
		case *pb.Trade:
			e.Body = &pb.Event_Trade{Trade: b}
		}
		return e
	}
	// The reference: two trades counted from scratch.
	ref := NewState(testID, Config{})
	for _, tr := range []*pb.Trade{{Price: 100, Size: 3}, {Price: 103, Size: 1}} {
		if _, err := ref.Apply(ev(tr)); err != nil {
			t.Fatal(err)
		}
	}
	seq = 0
	// A state that has only the first trade's statistics as a seed, then the second trade.
	first := NewState(testID, Config{})
	if _, err := first.Apply(ev(&pb.Trade{Price: 100, Size: 3})); err != nil {
		t.Fatal(err)
	}
	seed := first.SessionStats()
	seq = 0
	s := NewState(testID, Config{})
	res, err := s.Apply(ev(seed))
	if err != nil || res.Stats == nil {
		t.Fatalf("seed on a state with no statistics: %v, delta %v", err, res)
	}
	if _, err := s.Apply(ev(&pb.Trade{Price: 103, Size: 1})); err != nil {
		t.Fatal(err)
	}
	if got, want := s.SessionStats(), ref.SessionStats(); !proto.Equal(got, want) {
		t.Fatalf("after seed + trade %v, want %v", got, want)
	}
	// A state with statistics keeps them.
	if res, err := s.Apply(ev(seed)); err != nil || res.Stats != nil || !proto.Equal(s.SessionStats(), ref.SessionStats()) {
		t.Fatalf("seed over statistics: %v, delta %v, stats %v", err, res.Stats, s.SessionStats())
	}
	for _, bad := range []*pb.SessionStats{{}, {Stats: &pb.Stats{Volume: 0, Low: 1, High: 1, TradeCount: 1}},
		{Stats: &pb.Stats{Volume: 1, Low: 5, High: 4, TradeCount: 1}}, {Stats: &pb.Stats{Volume: 1, Low: 1, High: 1}}} {
		if _, err := NewState(testID, Config{}).Apply(ev(bad)); !errors.Is(err, ErrBadEvent) {
			t.Errorf("seed %v: %v, want ErrBadEvent", bad, err)
		}
	}
}
