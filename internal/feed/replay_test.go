package feed

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/tickwire/tickwire/internal/replay"
	"github.com/tickwire/tickwire/pkg/market"
	pb "github.com/tickwire/tickwire/pkg/proto/tickwire/v1"
	"github.com/tickwire/tickwire/pkg/wire"
)

// TestReplaySession: a client watches a replay session through the feed over the same
// protocol, sees its status, controls it, and follows a seek as a new epoch; live clients are
// not disturbed, and unknown sessions are refused.
func TestReplaySession(t *testing.T) {
	e := startEnv(t, Config{})
	e.srv.EnableReplay(e.bus)
	p := newPublisher(t, e.bus, 3)
	p.publish(3000) // 30 s of market time
	e.waitApplied(p)

	from := time.Unix(0, 1_700_000_000_000_000_000)
	r, err := replay.New(replay.Config{Session: "test-replay", Speed: 0,
		Window: replay.Window{From: from.Add(5 * time.Second), To: from.Add(25 * time.Second), ScanAll: true}},
		replay.BusSource{Bus: e.bus}, e.bus, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
			t.Errorf("replayer: %v", err)
		}
	})
	waitFor(t, 10*time.Second, "replay to finish", func() bool {
		st := r.Status()
		return st != nil && st.State == pb.ReplayState_REPLAY_STATE_FINISHED
	})

	if _, err := dial(t, e.url+"?replay=nope", wire.SubprotocolProto, nil); err == nil {
		t.Fatal("an unknown replay session was accepted")
	} else if he, ok := err.(*httpError); !ok || he.status != http.StatusNotFound {
		t.Fatalf("unknown session: %v, want 404", err)
	}

	c := mustDial(t, e.url+"?replay=test-replay", wire.SubprotocolProto)
	var status *pb.ReplayStatus
	var list *pb.InstrumentList
	for list == nil || len(list.Instruments) < 3 {
		time.Sleep(20 * time.Millisecond)
		c.send(&pb.ClientMessage{Id: 1, Command: &pb.ClientMessage_ListInstruments{ListInstruments: &pb.ListInstruments{}}})
		for _, m := range c.next(5 * time.Second) {
			if m.GetReplayStatus() != nil {
				status = m.GetReplayStatus()
			}
			if m.GetInstrumentList() != nil {
				list = m.GetInstrumentList()
			}
		}
	}
	if status == nil || status.Session != "test-replay" {
		t.Fatalf("no replay status on joining: %v", status)
	}
	ids := []string{list.Instruments[0].Id}
	c.send(subscribe(2, ids, 10))

	// Seek back to the window start at 3x (20 s of market in about 7 s, so that it is still
	// running when paused below): the session restarts as a new epoch, from snapshots.
	c.send(&pb.ClientMessage{Id: 5, Command: &pb.ClientMessage_ReplayControl{ReplayControl: &pb.ReplayControl{
		Action: &pb.ReplayControl_Speed{Speed: 3}}}})
	c.send(&pb.ClientMessage{Id: 3, Command: &pb.ClientMessage_ReplayControl{ReplayControl: &pb.ReplayControl{
		Action: &pb.ReplayControl_SeekTimeNs{SeekTimeNs: from.Add(5 * time.Second).UnixNano()}}}})
	var rep market.Replica
	handles := map[uint32]bool{}
	epochs := map[uint64]bool{}
	deltas := 0
	deadline := time.Now().Add(15 * time.Second)
	for deltas < 200 && time.Now().Before(deadline) {
		for _, m := range c.next(5 * time.Second) {
			switch k := m.Kind.(type) {
			case *pb.ServerMessage_Subscribed:
				handles[k.Subscribed.Handle] = true
			case *pb.ServerMessage_Snapshot:
				epochs[k.Snapshot.Epoch] = true
				if err := rep.ApplySnapshot(k.Snapshot); err != nil {
					t.Fatal(err)
				}
			case *pb.ServerMessage_Delta:
				if err := rep.ApplyDelta(k.Delta); err != nil && !errors.Is(err, market.ErrStale) {
					t.Fatalf("replayed delta: %v", err)
				}
				deltas++
			case *pb.ServerMessage_Error:
				t.Fatalf("error: %v", k.Error)
			}
		}
	}
	if deltas < 200 || len(epochs) < 2 {
		t.Fatalf("after the seek: %d deltas, epochs %v", deltas, epochs)
	}

	c.send(&pb.ClientMessage{Id: 4, Command: &pb.ClientMessage_ReplayControl{ReplayControl: &pb.ReplayControl{
		Action: &pb.ReplayControl_Pause{Pause: true}}}})
	waitStatus := func(want pb.ReplayState) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for time.Now().Before(deadline) {
			for _, m := range c.next(5 * time.Second) {
				if st := m.GetReplayStatus(); st != nil && st.State == want {
					return
				}
			}
		}
		t.Fatalf("no %v status", want)
	}
	waitStatus(pb.ReplayState_REPLAY_STATE_PAUSED)

	// A live connection cannot control replays.
	live := mustDial(t, e.url, wire.SubprotocolProto)
	live.send(&pb.ClientMessage{Id: 9, Command: &pb.ClientMessage_ReplayControl{ReplayControl: &pb.ReplayControl{
		Action: &pb.ReplayControl_Pause{Pause: true}}}})
	if got := live.waitError(5 * time.Second); got.Code != pb.ErrorCode_ERROR_CODE_NOT_REPLAY {
		t.Fatalf("live replay control: %v", got)
	}
}
