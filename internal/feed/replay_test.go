package feed

import (
	"context"
	"errors"
	"google.golang.org/protobuf/proto"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/tickwire/tickwire/internal/auth"
	"github.com/tickwire/tickwire/internal/replay"
	"github.com/tickwire/tickwire/internal/testwait"
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
	r := runReplay(t, e, replay.Config{Session: "test-replay", Speed: 0,
		Window: replay.Window{From: from.Add(5 * time.Second), To: from.Add(25 * time.Second), ScanAll: true}})
	testwait.For(t, 10*time.Second, "replay to finish", func() bool {
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
	testwait.For(t, 20*time.Second, "the session's three instruments listed", func() bool {
		c.send(&pb.ClientMessage{Id: 1, Command: &pb.ClientMessage_ListInstruments{ListInstruments: &pb.ListInstruments{}}})
		for _, m := range c.next(5 * time.Second) {
			if m.GetReplayStatus() != nil {
				status = m.GetReplayStatus()
			}
			if m.GetInstrumentList() != nil {
				list = m.GetInstrumentList()
			}
		}
		return list != nil && len(list.Instruments) >= 3
	})
	if status == nil || status.Session != "test-replay" {
		t.Fatalf("no replay status on joining: %v", status)
	}
	ids := []string{list.Instruments[0].Id}
	c.send(subscribe(2, ids, 10))
	// Joining the finished session afresh: the tape is there at once, the trades from before its
	// clock as history trades (issue 12: a fresh page had book and quotes but no last or tape).
	// Its session statistics are those of every trade of the window, as for a page that
	// played it through (the chain carries those replayed before it joined).
	wantStats := func() *pb.Stats {
		st := market.NewState(ids[0], market.Config{})
		forgot := false
		p.mu.Lock()
		defer p.mu.Unlock()
		for _, ev := range p.events[ids[0]] {
			tm := replay.EventTime(ev)
			if tm > from.Add(25*time.Second).UnixNano() {
				break
			}
			if !forgot && tm >= from.Add(5*time.Second).UnixNano() {
				forgot = true
				st.ForgetStats()
			}
			if _, err := st.Apply(ev); err != nil {
				t.Fatal(err)
			}
		}
		return st.SessionStats().GetStats()
	}()
	var tape *pb.Snapshot
	var stats *pb.Stats
	testwait.For(t, 10*time.Second, "a trades snapshot with the session's tape, and the window's statistics", func() bool {
		for _, m := range c.next(2 * time.Second) {
			if sn := m.GetSnapshot(); sn != nil && sn.Channel == pb.Channel_CHANNEL_TRADES && len(sn.GetTrades().GetTrades()) > 0 {
				tape = sn
			}
			if sn := m.GetSnapshot(); sn != nil && sn.GetStats() != nil {
				stats = sn.GetStats()
			}
			if d := m.GetDelta(); d != nil && d.GetStats() != nil {
				stats = d.GetStats()
			}
		}
		return tape != nil && proto.Equal(stats, wantStats)
	})
	for _, r := range tape.GetTrades().GetTrades() {
		if !r.GetTrade().GetHistory() || r.GetVenueTimeNs() > from.Add(25*time.Second).UnixNano() {
			t.Fatalf("trade on joining %v: want a history trade from before the clock", r)
		}
	}

	// Seek back to the window start at 3x (20 s of market in about 7 s, so that it is still
	// running when paused below): the session restarts as a new epoch, from snapshots.
	c.send(&pb.ClientMessage{Id: 5, Command: &pb.ClientMessage_ReplayControl{ReplayControl: &pb.ReplayControl{
		Action: &pb.ReplayControl_Speed{Speed: 3}}}})
	c.send(&pb.ClientMessage{Id: 3, Command: &pb.ClientMessage_ReplayControl{ReplayControl: &pb.ReplayControl{
		Action: &pb.ReplayControl_SeekTimeNs{SeekTimeNs: from.Add(5 * time.Second).UnixNano()}}}})
	var rep market.Replica
	handles := map[uint32]bool{}
	epochs := map[uint64]bool{tape.Epoch: true}
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

// TestReplayControlByControllersOnly: a watcher of a replay session cannot pause, seek or change
// its speed for everyone else; the subjects the session names as controllers can, and so can a
// token granted replay_control.
func TestReplayControlByControllersOnly(t *testing.T) {
	k := newAuthKeys(t)
	e := startEnv(t, k.authConfig(t, nil))
	e.srv.EnableReplay(e.bus)
	p := newPublisher(t, e.bus, 2)
	p.publish(2000)
	e.waitApplied(p)

	from := time.Unix(0, 1_700_000_000_000_000_000)
	r := runReplay(t, e, replay.Config{Session: "ctl-replay", Speed: 1, Controllers: []string{"operator"},
		Window: replay.Window{From: from.Add(2 * time.Second), To: from.Add(18 * time.Second), ScanAll: true}})
	testwait.For(t, 10*time.Second, "replay to start", func() bool { return r.Status() != nil })

	watch := auth.Grant{Instruments: []string{"*"}, Replay: true}
	control := auth.Grant{Instruments: []string{"*"}, Replay: true, ReplayControl: true}
	speed := func(id uint32, v float64) *pb.ClientMessage {
		return &pb.ClientMessage{Id: id, Command: &pb.ClientMessage_ReplayControl{ReplayControl: &pb.ReplayControl{
			Action: &pb.ReplayControl_Speed{Speed: v}}}}
	}
	for _, tc := range []struct {
		name    string
		sub     string
		grant   auth.Grant
		speed   float64
		refused bool
	}{
		{name: "watcher", sub: "watcher", grant: watch, speed: 7, refused: true},
		{name: "no subject", sub: "", grant: watch, speed: 8, refused: true},
		{name: "named controller", sub: "operator", grant: watch, speed: 5},
		{name: "replay_control grant", sub: "ops-admin", grant: control, speed: 9},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := dial(t, e.url+"?replay=ctl-replay", wire.SubprotocolProto, bearerHeader(k.token(t, tc.sub, time.Minute, tc.grant)))
			if err != nil {
				t.Fatal(err)
			}
			go c.conn.ReadLoop()
			join := waitMsg(t, c, "the session's status", func(m *pb.ServerMessage) bool { return m.GetReplayStatus() != nil })
			if got := join.GetReplayStatus().Controllers; !slices.Equal(got, []string{"operator"}) {
				t.Fatalf("status names controllers %v, want [operator]", got)
			}
			before := r.Status().GetSpeed()
			c.send(speed(11, tc.speed))
			// The answer: an Error for request 11, or the status at the new speed.
			m := waitMsg(t, c, "an answer", func(m *pb.ServerMessage) bool {
				return m.GetError().GetRequestId() == 11 || m.GetReplayStatus().GetSpeed() == tc.speed
			})
			if tc.refused {
				if perr := m.GetError(); perr == nil || perr.Code != pb.ErrorCode_ERROR_CODE_NOT_ENTITLED {
					t.Fatalf("control by a watcher: %v, want NOT_ENTITLED", m)
				}
				if got := r.Status().GetSpeed(); got != before {
					t.Fatalf("the refused control changed the speed: %v -> %v", before, got)
				}
				return
			}
			if m.GetError() != nil {
				t.Fatalf("control refused: %v", m.GetError())
			}
			testwait.For(t, 5*time.Second, "the new speed", func() bool { return r.Status().GetSpeed() == tc.speed })
		})
	}
}

// runReplay runs a replay session of e's store until the test ends, failing the test if the
// replayer ends with an error.
func runReplay(t *testing.T, e *env, cfg replay.Config) *replay.Replayer {
	t.Helper()
	r, err := replay.New(cfg, replay.BusSource{Bus: e.bus}, e.bus, nil)
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
	return r
}
