package feed

import (
	"context"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tickwire/tickwire/internal/replay/replaytest"
	"github.com/tickwire/tickwire/internal/testwait"
	pb "github.com/tickwire/tickwire/pkg/proto/tickwire/v1"
	"github.com/tickwire/tickwire/pkg/wire"
)

// TestSubscribeSeesQueuedEvents: a subscription is answered from the state after every event
// the feed had already taken in, even while those still wait in the owner's queue. Otherwise a
// feed that just caught up with the store would answer from the past: a resuming client with a
// newer position would get a snapshot older than what it holds, and see deltas twice.
func TestSubscribeSeesQueuedEvents(t *testing.T) {
	for round := range 3 {
		srv, err := New(Config{Owners: 1, OwnerQueue: 1 << 16}, nil, prometheus.NewRegistry())
		if err != nil {
			t.Fatal(err)
		}
		hs := httptest.NewServer(srv.Handler(nil))
		evs := replaytest.Events(t, replaytest.Config{Instruments: 1, Events: 30000})
		ctx := context.Background()
		// The first event makes the instrument known; the rest wait in the owner's queue (or
		// are being applied) when the subscription comes.
		if err := srv.Dispatch(ctx, evs[0]); err != nil {
			t.Fatal(err)
		}
		testwait.For(t, 5*time.Second, "the instrument", func() bool { return srv.hub.known(evs[0].Instrument) })
		srv.SetReady(true)
		c := mustDial(t, "ws"+strings.TrimPrefix(hs.URL, "http")+"/ws", wire.SubprotocolProto)
		for _, ev := range evs[1:] {
			if err := srv.Dispatch(ctx, ev); err != nil {
				t.Fatal(err)
			}
		}
		last := evs[len(evs)-1].Seq
		c.send(subscribe(1, []string{evs[0].Instrument}, 10, pb.Channel_CHANNEL_STATS))
		var snap *pb.Snapshot
		for snap == nil {
			for _, m := range c.next(10 * time.Second) {
				if s := m.GetSnapshot(); s != nil {
					snap = s
				}
			}
		}
		if snap.Seq != last {
			t.Fatalf("round %d: snapshot at seq %d, but events up to %d were taken in before the subscription", round, snap.Seq, last)
		}
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_ = srv.Shutdown(sctx)
		cancel()
		hs.Close()
	}
}

// TestResumeWaitsForAReplicaBehind: a client that resumes on a replica that has not yet
// reached its positions (it comes from one that is ahead) is held until the replica gets there,
// then resumed without a snapshot and without a delta twice; if the replica does not get there
// within ResumeWait, it gets HISTORY_GONE snapshots as before.
func TestResumeWaitsForAReplicaBehind(t *testing.T) {
	evs := replaytest.Events(t, replaytest.Config{Instruments: 1, Events: 3000})
	id := evs[0].Instrument
	chans := []pb.Channel{pb.Channel_CHANNEL_QUOTE, pb.Channel_CHANNEL_TRADES}
	ctx := context.Background()
	start := func(cfg Config, evs []*pb.Event) (*Server, string) {
		srv, err := New(cfg, nil, prometheus.NewRegistry())
		if err != nil {
			t.Fatal(err)
		}
		hs := httptest.NewServer(srv.Handler(nil))
		t.Cleanup(func() {
			sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_ = srv.Shutdown(sctx)
			hs.Close()
		})
		for _, ev := range evs {
			if err := srv.Dispatch(ctx, ev); err != nil {
				t.Fatal(err)
			}
		}
		if err := srv.Sync(ctx); err != nil { // as the service does before it reports ready
			t.Fatal(err)
		}
		srv.SetReady(true)
		return srv, "ws" + strings.TrimPrefix(hs.URL, "http") + "/ws"
	}
	// The client's positions on the replica that is ahead (all 2,000 events applied).
	_, urlA := start(Config{}, evs[:2000])
	a := mustDial(t, urlA, wire.SubprotocolProto)
	a.send(subscribe(1, []string{id}, 0, chans...))
	pos := map[pb.Channel]*pb.StreamPosition{}
	for len(pos) < len(chans) {
		for _, m := range a.next(5 * time.Second) {
			if s := m.GetSnapshot(); s != nil {
				pos[s.Channel] = &pb.StreamPosition{Instrument: id, Channel: s.Channel, Epoch: s.Epoch, Seq: s.Seq}
			}
		}
	}
	instrument := id
	resume := func(id uint32) *pb.ClientMessage {
		m := subscribe(id, []string{instrument}, 0, chans...)
		for _, p := range pos {
			m.GetSubscribe().Resume = append(m.GetSubscribe().Resume, p)
		}
		return m
	}

	t.Run("replica catches up", func(t *testing.T) {
		b, urlB := start(Config{}, evs[:1500]) // behind
		c := mustDial(t, urlB, wire.SubprotocolProto)
		c.t = t
		c.send(resume(2))
		// The resume reaches the replica's owner before the replica catches up (no sleep): the
		// session handles commands in order, posting the resume to the owner before it answers
		// the ListInstruments after it, and Sync is a barrier behind it in the owner's queue.
		// Nothing is answered meanwhile: the resume is held.
		c.send(&pb.ClientMessage{Id: 9, Command: &pb.ClientMessage_ListInstruments{ListInstruments: &pb.ListInstruments{}}})
		for listed := false; !listed; {
			for _, m := range c.next(5 * time.Second) {
				if m.GetInstrumentList() == nil {
					t.Fatalf("%v before the replica reached the resume positions", m)
				}
				listed = true
			}
		}
		if err := b.Sync(ctx); err != nil {
			t.Fatal(err)
		}
		for _, ev := range evs[1500:] {
			if err := b.Dispatch(ctx, ev); err != nil {
				t.Fatal(err)
			}
		}
		var sub *pb.Subscribed
		seen := map[pb.Channel]uint64{} // last seq per channel, from the resume position
		for ch, p := range pos {
			seen[ch] = p.Seq
		}
		for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); {
			for _, m := range c.next(5 * time.Second) {
				switch {
				case m.GetSubscribed() != nil:
					sub = m.GetSubscribed()
				case m.GetSnapshot() != nil:
					t.Fatalf("a snapshot (%v) where the resume should continue", m.GetSnapshot().Reason)
				case m.GetDelta() != nil:
					d := m.GetDelta()
					ch := pb.Channel_CHANNEL_QUOTE
					if d.GetTrade() != nil {
						ch = pb.Channel_CHANNEL_TRADES
					}
					// The delta rule (PROTOCOL.md §7.4): prev_seq <= position < seq, or a gap
					// (prev_seq above) or a repeat (seq not above).
					if d.PrevSeq > seen[ch] || d.Seq <= seen[ch] {
						t.Fatalf("%v delta %d (prev %d) does not follow the client's position %d", ch, d.Seq, d.PrevSeq, seen[ch])
					}
					seen[ch] = d.Seq
				}
			}
			if sub != nil && seen[pb.Channel_CHANNEL_TRADES] >= evs[len(evs)-1].Seq-50 {
				break
			}
		}
		if sub == nil || len(sub.Resumed) != len(chans) {
			t.Fatalf("subscribed %v, want both channels resumed", sub)
		}
	})

	t.Run("replica stays behind", func(t *testing.T) {
		_, urlB := start(Config{ResumeWait: 200 * time.Millisecond}, evs[:1500])
		c := mustDial(t, urlB, wire.SubprotocolProto)
		c.t = t
		sent := time.Now()
		c.send(resume(3))
		gone := 0
		for gone < len(chans) {
			for _, m := range c.next(5 * time.Second) {
				if s := m.GetSnapshot(); s != nil && s.Reason == pb.SnapshotReason_SNAPSHOT_REASON_HISTORY_GONE {
					gone++
				}
			}
		}
		if waited := time.Since(sent); waited < 150*time.Millisecond {
			t.Fatalf("HISTORY_GONE after %v, before the resume wait", waited)
		}
	})
}

// TestSyncWaitsForQueuedEvents: Sync returns only once every event dispatched before it has been
// applied (the service calls it before reporting ready).
func TestSyncWaitsForQueuedEvents(t *testing.T) {
	srv, err := New(Config{Owners: 2, OwnerQueue: 1 << 16}, nil, prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	evs := replaytest.Events(t, replaytest.Config{Instruments: 3, Events: 30000})
	last := map[string]uint64{}
	ctx := context.Background()
	for _, ev := range evs {
		if err := srv.Dispatch(ctx, ev); err != nil {
			t.Fatal(err)
		}
		last[ev.Instrument] = ev.Seq
	}
	if err := srv.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	// Nothing more is dispatched, so the owners' state can be read here.
	for id, seq := range last {
		in := srv.hub.ownerOf(id).instruments[id]
		if _, at := in.st.Position(); at != seq {
			t.Errorf("%s applied up to %d after Sync, dispatched up to %d", id, at, seq)
		}
	}
}
