package feed

import (
	"errors"
	"testing"
	"time"

	"github.com/tickwire/tickwire/pkg/market"
	pb "github.com/tickwire/tickwire/pkg/proto/tickwire/v1"
	"github.com/tickwire/tickwire/pkg/wire"
)

// TestBookAwaitsSnapshotAndHeals: one event lost upstream breaks the feed's copy of the book.
// Its book subscribers are told at once (StreamStatus AWAITING_SNAPSHOT) instead of watching a
// frozen book that looks live; the feed asks for a fresh snapshot, and the book heals with it
// (a RESYNC snapshot) long before the source's next checkpoint. A subscriber that comes while
// the book is broken is told too.
func TestBookAwaitsSnapshotAndHeals(t *testing.T) {
	e := startEnv(t, Config{})
	p := newPublisher(t, e.bus, 1)
	id := p.instruments()[0]
	asked := make(chan string, 16)
	e.srv.EnableSnapshotRequests(func(instrument string) error {
		asked <- instrument
		return nil
	})
	p.publish(300)
	e.waitApplied(p)

	c := mustDial(t, e.url, wire.SubprotocolProto)
	c.send(subscribe(1, []string{id}, 10, pb.Channel_CHANNEL_BOOK))
	var rep market.Replica
	waitMsg(t, c, "book snapshot", func(m *pb.ServerMessage) bool {
		if s := m.GetSnapshot(); s != nil {
			if err := rep.ApplySnapshot(s); err != nil {
				t.Fatal(err)
			}
			return true
		}
		return false
	})

	// Lose one event upstream: its seq is taken and never published.
	p.mu.Lock()
	p.seq[id]++
	p.mu.Unlock()
	p.clock += 10e6
	_ = p.m.Next(p.clock)
	broke := time.Now()
	p.publish(5) // the first of these shows the gap

	var status *pb.StreamStatus
	for status == nil {
		for _, m := range c.next(5 * time.Second) {
			switch {
			case m.GetStreamStatus() != nil:
				status = m.GetStreamStatus()
			case m.GetDelta() != nil:
				// A delta of the book before the status would be a book that looks live.
				if m.GetDelta().GetBook() != nil {
					t.Fatalf("book delta %d after the break", m.GetDelta().Seq)
				}
			}
		}
	}
	toldIn := time.Since(broke)
	if status.Channel != pb.Channel_CHANNEL_BOOK || status.State != pb.StreamState_STREAM_STATE_AWAITING_SNAPSHOT || status.Reason == "" {
		t.Fatalf("status %v", status)
	}
	select {
	case got := <-asked:
		if got != id {
			t.Fatalf("asked for a snapshot of %s, want %s", got, id)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the feed did not ask for a snapshot")
	}

	// A subscriber that comes now is told as well.
	late := mustDial(t, e.url, wire.SubprotocolProto)
	late.send(subscribe(1, []string{id}, 10, pb.Channel_CHANNEL_BOOK))
	if st := waitMsg(t, late, "StreamStatus", func(m *pb.ServerMessage) bool { return m.GetStreamStatus() != nil }); st.GetStreamStatus().State != pb.StreamState_STREAM_STATE_AWAITING_SNAPSHOT {
		t.Fatalf("late subscriber: %v", st)
	}

	// Ingest answers the request: InstrumentInfo and a full book, then the market goes on.
	p.m.Resnapshot(id, p.clock)
	p.publish(10)
	var healedIn time.Duration
	healed, deltas := false, 0
	for end := time.Now().Add(5 * time.Second); deltas < 3; {
		if time.Now().After(end) {
			t.Fatalf("healed %v, %d book deltas after it", healed, deltas)
		}
		if healed {
			p.publish(5)
		}
		for _, m := range c.next(5 * time.Second) {
			if snap := m.GetSnapshot(); snap != nil && !healed {
				healedIn, healed = time.Since(broke), true
				if snap.Reason != pb.SnapshotReason_SNAPSHOT_REASON_RESYNC {
					t.Fatalf("healing snapshot reason %v, want RESYNC", snap.Reason)
				}
				if err := rep.ApplySnapshot(snap); err != nil {
					t.Fatal(err)
				}
			}
			// Deltas follow on from it, their checksums matching.
			if d := m.GetDelta(); d != nil && d.GetBook() != nil && healed {
				if err := rep.ApplyDelta(d); err != nil && !errors.Is(err, market.ErrStale) {
					t.Fatalf("after healing: %v", err)
				}
				deltas++
			}
		}
	}
	t.Logf("told in %v, healed in %v (including this test's own publish)", toldIn, healedIn)
}
