package chaos

import (
	"testing"
	"time"

	pb "github.com/tickwire/tickwire/pkg/proto/tickwire/v1"
)

// TestObservationsAheadAreCheckedLater: a client's book at a position the reference has not
// read yet is kept and checked once the reference gets there; a wrong one is then counted
// wrong, and one the reference never reaches counts as unchecked, not as a match.
func TestObservationsAheadAreCheckedLater(t *testing.T) {
	ref := NewReference(10)
	b := &bot{ref: ref}
	f := &Fleet{ref: ref, bots: []*bot{b}}
	good := Fingerprint([][2]int64{{100, 1}}, nil)
	now := time.Now()
	b.check(observation{inst: "x:A", epoch: 1, seq: 1, fp: good, at: now})
	b.check(observation{inst: "x:A", epoch: 1, seq: 2, fp: good, at: now}) // the book changes at 2
	b.check(observation{inst: "x:A", epoch: 1, seq: 3, fp: good, at: now}) // never stored
	if got := f.Findings(); got.Checked != 0 || got.Unchecked != 3 {
		t.Fatalf("before the reference read anything: %+v", got)
	}
	// Findings gave up on them; check again with fresh observations kept pending.
	b.mu.Lock()
	b.unchecked = 0
	b.mu.Unlock()
	for seq := uint64(1); seq <= 3; seq++ {
		b.check(observation{inst: "x:A", epoch: 1, seq: seq, fp: good, at: now})
	}
	ref.Apply(&pb.Event{Instrument: "x:A", Epoch: 1, Seq: 1, Body: &pb.Event_Book{Book: &pb.BookUpdate{Snapshot: true, Bids: []*pb.Level{{Price: 100, Size: 1}}}}})
	ref.Apply(&pb.Event{Instrument: "x:A", Epoch: 1, Seq: 2, Body: &pb.Event_Book{Book: &pb.BookUpdate{Bids: []*pb.Level{{Price: 100, Size: 2}}}}})
	f.recheck(time.Hour)
	got := f.Findings()
	if got.Checked != 2 || got.Wrong != 1 || got.Unchecked != 1 || len(got.WrongExamples) != 1 {
		t.Fatalf("findings %+v; want seq 1 right, seq 2 wrong, seq 3 unchecked", got)
	}
}
