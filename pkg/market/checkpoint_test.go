package market

import (
	"testing"

	"google.golang.org/protobuf/proto"

	pb "github.com/tickwire/tickwire/pkg/proto/tickwire/v1"
)

// checkpointStream is a stream with what a restore must carry across: a gap (the book unsynced
// until the next snapshot, every stream chained to before the gap), then a new epoch (history
// kept or forgotten), trades and candles past their rings, stats, reference data.
func checkpointStream(n int) []*pb.Event {
	g := newEventGen(11)
	var evs []*pb.Event
	for i := range n {
		ev := g.next()
		switch i {
		case n / 4: // a gap
			g.seq += 3
			ev.Seq = g.seq
		case n / 3: // the book comes back
			ev.Body = &pb.Event_Book{Book: &pb.BookUpdate{Snapshot: true,
				Bids: []*pb.Level{{Price: g.mid - 1, Size: 5}}, Asks: []*pb.Level{{Price: g.mid + 1, Size: 7}}}}
		case n / 2: // a new epoch, its first event a book snapshot
			g.epoch++
			g.seq = 1
			ev.Epoch, ev.Seq = g.epoch, 1
			ev.Body = &pb.Event_Book{Book: &pb.BookUpdate{Snapshot: true,
				Bids: []*pb.Level{{Price: g.mid - 2, Size: 9}}, Asks: []*pb.Level{{Price: g.mid + 2, Size: 3}}}}
		}
		evs = append(evs, ev)
	}
	return evs
}

// encodedState is everything a state serves and holds: its checkpoint and every snapshot.
func encodedState(t *testing.T, s *State) [][]byte {
	t.Helper()
	var out [][]byte
	add := func(m proto.Message) {
		b, err := proto.MarshalOptions{Deterministic: true}.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, b)
	}
	add(s.Checkpoint())
	for _, ch := range allChannels {
		for d := range s.cfg.Depths {
			if snap := s.Snapshot(ch, d, pb.SnapshotReason_SNAPSHOT_REASON_SUBSCRIBE); snap != nil {
				add(snap)
			} else {
				out = append(out, nil)
			}
		}
	}
	return out
}

// TestCheckpointRestoreEqualsReplay: a state restored from a checkpoint taken after any event,
// then given the events after it, holds and serves exactly what a state given every event does,
// and the deltas of the next events are the same.
func TestCheckpointRestoreEqualsReplay(t *testing.T) {
	cfg := Config{TradeHistory: 7, CandleHistory: 5, Depths: []uint32{3, 10, 50}}
	evs := checkpointStream(600)
	full := NewState(testID, cfg)
	var fullRes []*Result
	for _, ev := range evs {
		res, err := full.Apply(ev)
		if err != nil {
			t.Fatal(err)
		}
		fullRes = append(fullRes, res)
	}
	want := encodedState(t, full)
	for _, cut := range []int{0, 1, 2, 3, 100, 150, 151, 200, 299, 300, 301, 450, 599, 600} {
		s := NewState(testID, cfg)
		for _, ev := range evs[:cut] {
			if _, err := s.Apply(ev); err != nil {
				t.Fatal(err)
			}
		}
		b, err := proto.Marshal(s.Checkpoint())
		if err != nil {
			t.Fatal(err)
		}
		var cs pb.InstrumentState
		if err := proto.Unmarshal(b, &cs); err != nil {
			t.Fatal(err)
		}
		r, err := RestoreState(cfg, &cs)
		if err != nil {
			t.Fatalf("cut %d: %v", cut, err)
		}
		for i, ev := range evs[cut:] {
			res, err := r.Apply(ev)
			if err != nil {
				t.Fatalf("cut %d event %d: %v", cut, cut+i, err)
			}
			if w := fullRes[cut+i]; !sameResult(w, res) {
				t.Fatalf("cut %d event %d: result differs from the full replay's", cut, cut+i)
			}
		}
		got := encodedState(t, r)
		for i := range want {
			if string(got[i]) != string(want[i]) {
				t.Fatalf("cut %d: encoding %d differs from the full replay's", cut, i)
			}
		}
	}
}

func sameResult(a, b *Result) bool {
	if a.NewEpoch != b.NewEpoch || a.BookReset != b.BookReset || a.Gap != b.Gap || len(a.Book) != len(b.Book) {
		return false
	}
	for i, d := range append([]*pb.Delta{a.Quote, a.Trades, a.Candles, a.Stats}, a.Book...) {
		e := append([]*pb.Delta{b.Quote, b.Trades, b.Candles, b.Stats}, b.Book...)[i]
		if !proto.Equal(d, e) {
			return false
		}
	}
	return true
}

func TestRestoreRefusesAnotherShape(t *testing.T) {
	cfg := Config{}
	s := NewState(testID, cfg)
	g := newEventGen(3)
	for range 50 {
		if _, err := s.Apply(g.next()); err != nil {
			t.Fatal(err)
		}
	}
	if !cfg.SameShape(cfg.Shape()) || cfg.SameShape(Config{Depths: []uint32{10}}.Shape()) || cfg.SameShape(nil) {
		t.Fatal("SameShape")
	}
	cs := s.Checkpoint()
	if _, err := RestoreState(Config{Depths: []uint32{10}}, cs); err == nil {
		t.Fatal("restored under fewer depths")
	}
	if _, err := RestoreState(Config{CandleIntervals: []uint32{60}}, cs); err == nil {
		t.Fatal("restored under other candle intervals")
	}
	cs.Bids = append(cs.Bids, &pb.Level{Price: 5, Size: 0})
	if _, err := RestoreState(cfg, cs); err == nil {
		t.Fatal("restored an empty level")
	}
}
