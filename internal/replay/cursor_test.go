package replay

import (
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/tickwire/tickwire/internal/replay/replaytest"
	"github.com/tickwire/tickwire/pkg/market"
	pb "github.com/tickwire/tickwire/pkg/proto/tickwire/v1"
)

// rebuild applies every event before t (EventTime) to a fresh state per instrument.
func rebuild(t *testing.T, evs []*pb.Event, before int64) map[string]*market.State {
	t.Helper()
	out := map[string]*market.State{}
	for _, ev := range evs {
		if EventTime(ev) >= before {
			break
		}
		s := out[ev.Instrument]
		if s == nil {
			s = market.NewState(ev.Instrument, market.Config{})
			out[ev.Instrument] = s
		}
		if _, err := s.Apply(ev); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// checkSession checks a session's events for one generation: per instrument, InstrumentInfo
// and a snapshot equal to the state rebuilt at target, then the stored events of the window in
// order, re-stamped into one gapless chain of epoch.
//
// statsFrom, if not 0, is the window's start when the session was read from it: each chain then
// carries, after its history trades, the session statistics of the stored trades from statsFrom
// to the target (none when there were none).
func checkSession(t *testing.T, stored, got []*pb.Event, target, to int64, epoch uint64, statsFrom int64) {
	t.Helper()
	states := rebuild(t, stored, target)
	statsOf := map[string]*pb.SessionStats{}
	if statsFrom != 0 {
		forgot := false
		sts := map[string]*market.State{}
		forget := func() {
			forgot = true
			for _, st := range sts {
				st.ForgetStats()
			}
		}
		for _, ev := range stored {
			tm := EventTime(ev)
			if tm >= statsFrom && !forgot {
				forget()
			}
			if tm >= target {
				break
			}
			st := sts[ev.Instrument]
			if st == nil {
				st = market.NewState(ev.Instrument, market.Config{})
				sts[ev.Instrument] = st
			}
			if _, err := st.Apply(ev); err != nil {
				t.Fatal(err)
			}
		}
		for id, st := range sts {
			statsOf[id] = st.SessionStats()
		}
	}
	want := map[string][]*pb.Event{}
	for _, ev := range stored {
		if tm := EventTime(ev); tm >= target && tm <= to {
			want[ev.Instrument] = append(want[ev.Instrument], ev)
		}
	}
	byInst := map[string][]*pb.Event{}
	for _, ev := range got {
		if ev.Epoch != epoch {
			t.Fatalf("%s: epoch %d, want %d", ev.Instrument, ev.Epoch, epoch)
		}
		byInst[ev.Instrument] = append(byInst[ev.Instrument], ev)
	}
	if len(byInst) != len(states) {
		t.Fatalf("%d instruments in the session, %d with state at the target", len(byInst), len(states))
	}
	for id, evs := range byInst {
		for i, ev := range evs {
			if ev.Seq != uint64(i+1) {
				t.Fatalf("%s: event %d has seq %d", id, i, ev.Seq)
			}
		}
		if len(evs) < 2 || evs[0].GetInfo() == nil || !evs[1].GetBook().GetSnapshot() {
			t.Fatalf("%s: chain does not begin with info + snapshot: %v", id, evs[:min(2, len(evs))])
		}
		st := states[id]
		if !proto.Equal(evs[0].GetInfo(), st.Info()) {
			t.Fatalf("%s: info %v, want %v", id, evs[0].GetInfo(), st.Info())
		}
		snap := market.NewState(id, market.Config{})
		for _, ev := range evs[:2] {
			if _, err := snap.Apply(ev); err != nil {
				t.Fatal(err)
			}
		}
		if !snap.Book().Equal(st.Book()) {
			t.Fatalf("%s: snapshot book differs from the state rebuilt at the target", id)
		}
		// Then the trades the state held at the target, as history trades, oldest first.
		held := st.Snapshot(pb.Channel_CHANNEL_TRADES, 0, 0).GetTrades().GetTrades()
		if len(evs) < 2+len(held) {
			t.Fatalf("%s: %d events, fewer than the %d history trades", id, len(evs), len(held))
		}
		for i, r := range held {
			ev := evs[2+i]
			w := proto.CloneOf(r.GetTrade())
			w.History = true
			if !proto.Equal(ev.GetTrade(), w) || ev.VenueTimeNs != r.GetVenueTimeNs() {
				t.Fatalf("%s: history trade %d: %v, want %v at %d", id, i, ev, w, r.GetVenueTimeNs())
			}
		}
		rest := evs[2+len(held):]
		if want := statsOf[id]; want != nil {
			if len(rest) == 0 || !proto.Equal(rest[0].GetStats(), want) {
				t.Fatalf("%s: after the history trades %v, want the session stats %v", id, rest[:min(1, len(rest))], want)
			}
			rest = rest[1:]
		}
		for _, ev := range rest {
			if ev.GetStats() != nil {
				t.Fatalf("%s: session stats %v not at the chain's start", id, ev)
			}
		}
		if len(rest) != len(want[id]) {
			t.Fatalf("%s: %d events after the snapshot, want %d", id, len(rest), len(want[id]))
		}
		for i, ev := range rest {
			w := proto.CloneOf(want[id][i])
			w.Epoch, w.Seq = ev.Epoch, ev.Seq
			if !proto.Equal(ev, w) {
				t.Fatalf("%s: event %d\n got %v\nwant %v", id, i, ev, w)
			}
		}
	}
}

func feedAll(c *cursor, evs []*pb.Event) []*pb.Event {
	var out []*pb.Event
	for _, ev := range evs {
		out = c.feed(proto.CloneOf(ev), out)
	}
	return c.finish(out)
}

func TestCursorWindow(t *testing.T) {
	stored := replaytest.Events(t, replaytest.Config{Instruments: 5, Events: 4000})
	target := replaytest.T0.Add(1500 * time.Millisecond).UnixNano()
	to := replaytest.T0.Add(3200 * time.Millisecond).UnixNano()
	c := newCursor(target, to, 77)
	got := feedAll(c, stored)
	checkSession(t, stored, got, target, to, 77, 0)
	if c.rejected != 0 {
		t.Fatalf("%d rejected", c.rejected)
	}
	// The snapshots come first, all at the target, each instrument's followed by its history
	// trades from before the target.
	snapshots := 0
	for _, ev := range got {
		switch {
		case ev.GetInfo() != nil || ev.GetBook().GetSnapshot():
			if ev.VenueTimeNs != target {
				t.Fatalf("opening event %v not at the target", ev)
			}
			snapshots++
			continue
		case ev.GetTrade().GetHistory():
			if ev.VenueTimeNs >= target {
				t.Fatalf("history trade %v not before the target", ev)
			}
			continue
		}
		break
	}
	if snapshots != 10 {
		t.Fatalf("%d opening info and snapshot events, want 10", snapshots)
	}
}

// TestCursorEmptyWindow: a window with no events still yields every instrument's state.
func TestCursorEmptyWindow(t *testing.T) {
	stored := replaytest.Events(t, replaytest.Config{Instruments: 3, Events: 500})
	end := replaytest.T0.Add(time.Hour).UnixNano()
	got := feedAll(newCursor(end, end, 1), stored)
	held := 0
	for _, st := range rebuild(t, stored, end) {
		held += len(st.Snapshot(pb.Channel_CHANNEL_TRADES, 0, 0).GetTrades().GetTrades())
	}
	if held == 0 || len(got) != 6+held {
		t.Fatalf("%d events, want info + snapshot of 3 instruments and their %d history trades", len(got), held)
	}
	checkSession(t, stored, got, end, end, 1, 0)
}

// TestCursorNoCheckpoint: an instrument whose state is not whole at the target starts its
// chain at its first snapshot in the window; one whose stored chain breaks restarts in place.
func TestCursorNoCheckpoint(t *testing.T) {
	info := func(seq uint64, tm int64) *pb.Event {
		return &pb.Event{Instrument: "x:A", Epoch: 1, Seq: seq, VenueTimeNs: tm, Body: &pb.Event_Info{Info: &pb.InstrumentInfo{Id: "x:A", PriceScale: 2}}}
	}
	book := func(seq uint64, tm int64, snap bool, bid int64) *pb.Event {
		return &pb.Event{Instrument: "x:A", Epoch: 1, Seq: seq, VenueTimeNs: tm, Body: &pb.Event_Book{Book: &pb.BookUpdate{
			Snapshot: snap, Bids: []*pb.Level{{Price: bid, Size: 1}}}}}
	}
	stored := []*pb.Event{
		book(5, 10, false, 100), // mid-chain: no info, no snapshot
		book(6, 20, false, 101), // in the window, state not whole
		info(7, 30),
		book(8, 31, true, 102), // whole: chain starts here with info + snapshot
		book(9, 40, false, 103),
		book(11, 50, false, 104), // gap in the stored chain: ours pauses
		book(12, 55, true, 105),  // whole again: info + snapshot, same epoch, next seqs
		book(13, 60, false, 106),
		book(14, 200, false, 107), // after `to`
	}
	got := feedAll(newCursor(15, 100, 9), stored)
	type row struct {
		seq  uint64
		kind string
		tm   int64
	}
	var rows []row
	for _, ev := range got {
		k := "delta"
		switch {
		case ev.GetInfo() != nil:
			k = "info"
		case ev.GetBook().GetSnapshot():
			k = "snap"
		}
		rows = append(rows, row{ev.Seq, k, ev.VenueTimeNs})
	}
	want := []row{{1, "info", 31}, {2, "snap", 31}, {3, "delta", 40}, {4, "info", 55}, {5, "snap", 55}, {6, "delta", 60}}
	if len(rows) != len(want) {
		t.Fatalf("got %v\nwant %v", rows, want)
	}
	for i := range rows {
		if rows[i] != want[i] {
			t.Fatalf("got %v\nwant %v", rows, want)
		}
	}
}
