package feed

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/tickwire/tickwire/internal/bus"
	pb "github.com/tickwire/tickwire/pkg/proto/tickwire/v1"
)

// ReplaySource is where replay sessions come from (tickctl replay publishes them); *bus.Bus
// is one.
type ReplaySource interface {
	SubscribeReplay(session string, onEvent func(*pb.Event), onStatus func(*pb.ReplayStatus)) (stop func(), err error)
	RequestReplayControl(ctx context.Context, session string, c *pb.ReplayControl) (*pb.ReplayStatus, error)
}

// Errors of replay sessions.
var (
	// ErrNoReplay: no replay session by that id answers.
	ErrNoReplay = errors.New("feed: no such replay session")
	// ErrReplayDisabled: this feed was started without a replay source.
	ErrReplayDisabled = errors.New("feed: replay sessions not enabled")
)

// replayControlTimeout bounds a control round trip to the replayer: it answers from memory.
const replayControlTimeout = 3 * time.Second

// replaySession is a replay watched through this feed: its own hub of instruments, fed by the
// replayer over NATS, and the connections watching it. It lives while anyone watches.
type replaySession struct {
	id   string
	hub  *Hub
	quit chan struct{}
	stop func() // ends the NATS subscription

	mu sync.Mutex
	// guarded by mu:
	sessions map[*session]struct{}
	status   *pb.ReplayStatus
	closed   bool
}

// EnableReplay lets clients watch replay sessions at /ws?replay=<session>.
func (s *Server) EnableReplay(src ReplaySource) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.replaySrc = src
}

// joinReplay returns the replay session id with sess added to it, starting to follow the
// session if this feed was not yet.
func (s *Server) joinReplay(ctx context.Context, id string) (*replaySession, error) {
	if err := bus.ValidSessionID(id); err != nil {
		return nil, err
	}
	s.mu.Lock()
	src := s.replaySrc
	rs := s.replays[id]
	s.mu.Unlock()
	if src == nil {
		return nil, ErrReplayDisabled
	}
	if rs != nil {
		return rs, nil
	}
	cctx, cancel := context.WithTimeout(ctx, replayControlTimeout)
	defer cancel()
	st, err := src.RequestReplayControl(cctx, id, &pb.ReplayControl{}) // a status query
	if err != nil {
		if errors.Is(err, bus.ErrNoReplay) {
			return nil, fmt.Errorf("%w: %s", ErrNoReplay, id)
		}
		return nil, fmt.Errorf("feed: replay %s: %w", id, err)
	}
	rs = &replaySession{id: id, quit: make(chan struct{}), sessions: map[*session]struct{}{}, status: st}
	rs.hub = newHub(s.cfg, s.log.With("replay", id), newMetrics(nil))
	rs.hub.start(s.launch, rs.quit)
	dctx, dcancel := context.WithCancel(context.Background())
	go func() { <-rs.quit; dcancel() }()
	rs.stop, err = src.SubscribeReplay(id, func(ev *pb.Event) {
		_ = rs.hub.Dispatch(dctx, ev)
	}, rs.broadcast)
	if err != nil {
		close(rs.quit)
		return nil, fmt.Errorf("feed: follow replay %s: %w", id, err)
	}

	s.mu.Lock()
	if other := s.replays[id]; other != nil { // another connection won the race
		s.mu.Unlock()
		rs.stop()
		close(rs.quit)
		return other, nil
	}
	s.replays[id] = rs
	s.mu.Unlock()

	// Joining a running session sees each instrument's chain midway; a rebase makes the
	// replayer restart every chain with reference data and a snapshot where its clock is now
	// (a seek to st.ClockNs, read before subscribing, would set every watcher back).
	if st.ClockNs > 0 {
		sctx, scancel := context.WithTimeout(ctx, replayControlTimeout)
		defer scancel()
		if _, err := src.RequestReplayControl(sctx, id, &pb.ReplayControl{Action: &pb.ReplayControl_Rebase{Rebase: true}}); err != nil {
			s.log.Warn("replay: could not rebase the session on its clock", "replay", id, "err", err)
		}
	}
	return rs, nil
}

// addToReplay adds a signing-in watcher to its replay session. If the session's last watcher
// left between this connection's join and now, this feed stopped following it: it follows it
// afresh rather than tell the newcomer the session ended while it still runs. Runs before any
// command of the connection reached an owner, so its hub may still change.
func (s *Server) addToReplay(sess *session) bool {
	if sess.replay.add(sess) {
		return true
	}
	rs, err := s.joinReplay(context.Background(), sess.replay.id)
	if err != nil || !rs.add(sess) {
		return false
	}
	sess.replay, sess.hub = rs, rs.hub
	return true
}

// add registers a connection and sends it the latest status.
func (rs *replaySession) add(sess *session) bool {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	if rs.closed {
		return false
	}
	rs.sessions[sess] = struct{}{}
	if rs.status != nil {
		sess.sendControl(&pb.ServerMessage{Kind: &pb.ServerMessage_ReplayStatus{ReplayStatus: rs.status}})
	}
	return true
}

// broadcast sends a status to every connection watching, encoded once per format.
func (rs *replaySession) broadcast(st *pb.ReplayStatus) {
	status := controlMessage{m: &pb.ServerMessage{Kind: &pb.ServerMessage_ReplayStatus{ReplayStatus: st}}}
	rs.mu.Lock()
	defer rs.mu.Unlock()
	rs.status = st
	for sess := range rs.sessions {
		status.queue(sess.log, sess)
	}
}

// leave removes a connection; the last one out stops following the session.
func (s *Server) leaveReplay(rs *replaySession, sess *session) {
	rs.mu.Lock()
	delete(rs.sessions, sess)
	last := len(rs.sessions) == 0 && !rs.closed
	if last {
		rs.closed = true
	}
	rs.mu.Unlock()
	if !last {
		return
	}
	s.mu.Lock()
	if s.replays[rs.id] == rs {
		delete(s.replays, rs.id)
	}
	s.mu.Unlock()
	rs.close()
}

func (rs *replaySession) close() {
	rs.stop()
	close(rs.quit)
}

// mayControl reports whether a connection signed in with cred may pause, seek or change the
// speed of the session: a token granted replay_control, or one whose subject the session names
// as a controller (ReplayStatus.controllers, set by whoever started it). Anonymous access never
// names a subject, so it controls only through a policy granting replay_control.
func (rs *replaySession) mayControl(cred *credential) bool {
	if cred.ent.ReplayControl {
		return true
	}
	if cred.subject == "" {
		return false
	}
	rs.mu.Lock()
	defer rs.mu.Unlock()
	return rs.status != nil && slices.Contains(rs.status.Controllers, cred.subject)
}

// control forwards a client's ReplayControl to the replayer and answers with the new status.
func (s *Server) replayControl(sess *session, reqID uint32, c *pb.ReplayControl) {
	s.mu.Lock()
	src := s.replaySrc
	s.mu.Unlock()
	if sess.replay == nil || src == nil {
		sess.sendError(reqID, pb.ErrorCode_ERROR_CODE_NOT_REPLAY, "replay control on a live connection", "")
		return
	}
	if !sess.replay.mayControl(sess.auth.cred) {
		sess.sendError(reqID, pb.ErrorCode_ERROR_CODE_NOT_ENTITLED,
			"watching only: replay session "+sess.replay.id+" is controlled by its controllers and replay_control tokens", "")
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), replayControlTimeout)
	defer cancel()
	st, err := src.RequestReplayControl(ctx, sess.replay.id, c)
	if err != nil {
		sess.sendError(reqID, pb.ErrorCode_ERROR_CODE_NOT_REPLAY, "replay session did not answer: "+err.Error(), "")
		return
	}
	sess.sendControl(&pb.ServerMessage{Kind: &pb.ServerMessage_ReplayStatus{ReplayStatus: st}})
}
