package client_test

import (
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/tickwire/tickwire/pkg/client"
	pb "github.com/tickwire/tickwire/pkg/proto/tickwire/v1"
	"github.com/tickwire/tickwire/pkg/wire"
)

// replayWatcher is a Handler that also implements ReplayStatusHandler.
type replayWatcher struct {
	client.BaseHandler
	mu  sync.Mutex
	got []string // "session state generation", in order
}

func (w *replayWatcher) OnReplayStatus(_ *client.Client, s *pb.ReplayStatus) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.got = append(w.got, fmt.Sprintf("%s %s %d", s.Session, s.State, s.Generation))
}

func (w *replayWatcher) statuses() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.got)
}

// replayStatus sends st to every connection, as a feed does to a replay session's watchers.
func (s *fakeServer) replayStatus(st *pb.ReplayStatus) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, fc := range s.conns {
		fc.write(&pb.ServerMessage{Kind: &pb.ServerMessage_ReplayStatus{ReplayStatus: st}})
	}
}

// TestReplayStatus: every ReplayStatus reaches a ReplayStatusHandler, in order, over either
// subprotocol; a handler without the method is not disturbed by them.
func TestReplayStatus(t *testing.T) {
	for _, sub := range []string{wire.SubprotocolProto, wire.SubprotocolJSON} {
		t.Run(sub, func(t *testing.T) {
			w := &replayWatcher{}
			s, r := newSyncedClient(t, client.Options{Subprotocol: sub, Handler: w})
			s.replayStatus(&pb.ReplayStatus{Session: "s1", State: pb.ReplayState_REPLAY_STATE_RUNNING, Generation: 1})
			s.step(50)
			s.replayStatus(&pb.ReplayStatus{Session: "s1", State: pb.ReplayState_REPLAY_STATE_FINISHED, Generation: 1})
			want := []string{"s1 REPLAY_STATE_RUNNING 1", "s1 REPLAY_STATE_FINISHED 1"}
			eventually(t, "the statuses", func() error {
				got := w.statuses()
				return errorf(slices.Equal(got, want), "OnReplayStatus calls %q, want %q", got, want)
			})
			eventually(t, "the replicas", func() error { return s.mismatch(r.c, 0) })
		})
	}
	t.Run("without the handler", func(t *testing.T) {
		s, r := newSyncedClient(t, client.Options{})
		s.replayStatus(&pb.ReplayStatus{Session: "s1", State: pb.ReplayState_REPLAY_STATE_RUNNING})
		s.step(50)
		eventually(t, "the replicas", func() error { return s.mismatch(r.c, 0) })
		if st := r.c.Stats(); st.DecodeErrors != 0 || st.Connects != 1 {
			t.Fatalf("stats %+v", st)
		}
	})
}
