package chaos

import (
	"testing"

	pb "github.com/tickwire/tickwire/pkg/proto/tickwire/v1"
)

func lv(price, size int64) *pb.Level { return &pb.Level{Price: price, Size: size} }

func ev(epoch, seq uint64, snapshot bool, bids, asks []*pb.Level) *pb.Event {
	return &pb.Event{Instrument: "x:A", Epoch: epoch, Seq: seq, Body: &pb.Event_Book{Book: &pb.BookUpdate{Snapshot: snapshot, Bids: bids, Asks: asks}}}
}

func trade(epoch, seq uint64) *pb.Event {
	return &pb.Event{Instrument: "x:A", Epoch: epoch, Seq: seq, Body: &pb.Event_Trade{Trade: &pb.Trade{Price: 1, Size: 1}}}
}

func TestReferenceVerdicts(t *testing.T) {
	r := NewReference(2)
	for _, e := range []*pb.Event{
		ev(7, 1, true, []*pb.Level{lv(100, 1), lv(99, 2), lv(98, 3)}, []*pb.Level{lv(101, 1)}),
		trade(7, 2),
		ev(7, 3, false, []*pb.Level{lv(100, 0)}, nil), // best bid removed: 99, 98 now the top 2
		ev(7, 6, false, nil, []*pb.Level{lv(102, 5)}), // 4 and 5 missing
		ev(7, 6, false, nil, []*pb.Level{lv(103, 5)}), // a duplicate seq: ignored
		ev(9, 1, true, []*pb.Level{lv(50, 1)}, nil),   // a new epoch voids the old book
	} {
		r.Apply(e)
	}
	fp := func(bids, asks [][2]int64) uint64 { return Fingerprint(bids, asks) }
	top1 := fp([][2]int64{{100, 1}, {99, 2}}, [][2]int64{{101, 1}}) // depth 2: level 98 is not compared
	top3 := fp([][2]int64{{99, 2}, {98, 3}}, [][2]int64{{101, 1}})
	top6 := fp([][2]int64{{99, 2}, {98, 3}}, [][2]int64{{101, 1}, {102, 5}})
	for _, tc := range []struct {
		epoch, seq, fp uint64
		want           Verdict
	}{
		{7, 1, top1, Match},
		{7, 2, top1, Match}, // a trade leaves the book as it was
		{7, 3, top3, Match},
		{7, 3, top1, Wrong}, // the book before the removal, claimed after it
		{7, 1, fp([][2]int64{{100, 1}, {99, 3}}, [][2]int64{{101, 1}}), Wrong}, // one size off
		{7, 4, top3, Unknown}, // in the gap
		{7, 6, top6, Match},
		{7, 7, top6, Unknown}, // past the end of an epoch that is over
		{9, 1, fp([][2]int64{{50, 1}}, nil), Match},
		{9, 2, 1, Ahead},  // not read yet
		{11, 1, 1, Ahead}, // a later epoch not read yet
		{8, 1, 1, Unknown},
		{6, 1, 1, Unknown},
	} {
		if got := r.Check("x:A", tc.epoch, tc.seq, tc.fp); got != tc.want {
			t.Errorf("%d/%d: %v, want %v", tc.epoch, tc.seq, got, tc.want)
		}
	}
	if got := r.Check("x:B", 1, 1, 1); got != Ahead {
		t.Errorf("an instrument not read yet: %v, want ahead", got)
	}
	n, gaps, dups := r.Stats()
	if n != 6 || dups != 1 || len(gaps) != 1 || gaps[0] != (Gap{Instrument: "x:A", Epoch: 7, After: 3, Before: 6}) {
		t.Errorf("stats: %d events, gaps %v, %d dups", n, gaps, dups)
	}
	if e, s, f, ok := r.Head("x:A"); !ok || e != 9 || s != 1 || f != fp([][2]int64{{50, 1}}, nil) {
		t.Errorf("head %d/%d %x %v", e, s, f, ok)
	}
}
