package feed

import (
	"errors"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/tickwire/tickwire/internal/fanout"
	pb "github.com/tickwire/tickwire/pkg/proto/tickwire/v1"
	"github.com/tickwire/tickwire/pkg/wire"
)

// session is one client connection: the commands it sent (handled on its gws read goroutine,
// one at a time, in order) and its outbound queue.
type session struct {
	id     uint64
	hub    *Hub
	replay *replaySession // nil on a live connection
	server *Server
	out    *fanout.Conn
	json   bool
	ip     string
	log    *slog.Logger
	limits wire.Limits

	// snaps is the budget for the snapshots the client asks for; the owners charge it, under its
	// own lock (see owner.request).
	snaps snapBudget

	// auth is the connection's credential and its timers (auth.go).
	auth sessAuth

	// owned by the read goroutine:
	limiter *rate.Limiter
	strikes int // commands refused by the rate limiter in a row

	// subsMu guards subs and venues: the read goroutine changes them on commands, and an owner
	// adds an instrument of a wildcard venue when it appears (venueListed). Taken before the
	// hub's mu, never while waiting for anything.
	subsMu sync.Mutex
	subs   map[string]chanSet  // subscribed instruments and their channels; nil once closed
	venues map[string]venueSub // venue wildcards ("venue:*") by venue
}

// venueSub is a venue wildcard subscription: what to subscribe for each instrument of the venue
// that appears.
type venueSub struct {
	chans chanSet
	cmd   command // a cmdSubscribe without its instrument
}

// chanSet is a set of channels, one bit per channel number.
type chanSet uint8

func chanSetOf(chans []pb.Channel) chanSet {
	var set chanSet
	for _, ch := range chans {
		set |= 1 << uint(ch)
	}
	return set
}

// maxStrikes is how many rate-limited commands in a row close the connection: a client that
// ignores RATE_LIMITED errors that long is not going to slow down.
const maxStrikes = 100

func (s *session) encode(m *pb.ServerMessage) []byte { return encode(s.log, m, s.json) }

func (s *session) sendControl(m *pb.ServerMessage) {
	if b := s.encode(m); b != nil {
		s.out.Enqueue(b, fanout.Control, 0)
	}
}

func (s *session) sendError(reqID uint32, code pb.ErrorCode, msg, instrument string) {
	s.hub.metrics.commandErrors.WithLabelValues(code.String()).Inc()
	s.sendControl(&pb.ServerMessage{Kind: &pb.ServerMessage_Error{Error: &pb.Error{
		RequestId: reqID, Code: code, Message: msg, Instrument: instrument}}})
}

// idErrors gathers the instruments of one command refused for the same reason. The command gets
// one Error for them all, naming the first and the count, never one per instrument: replies stay
// smaller than the command however many ids it names.
type idErrors struct {
	first string
	n     int
}

func (e *idErrors) add(id string) {
	if e.n == 0 {
		e.first = id
	}
	e.n++
}

// sendIDErrors sends e's Error, if e holds any instrument: one is the message for a single
// instrument; for several it is many after their count, then the first ("1000 unknown
// instruments, first x:Y").
func (s *session) sendIDErrors(reqID uint32, code pb.ErrorCode, e idErrors, one, many string) {
	switch e.n {
	case 0:
	case 1:
		s.sendError(reqID, code, one, e.first)
	default:
		s.sendError(reqID, code, strconv.Itoa(e.n)+" "+many+", first "+e.first, e.first)
	}
}

// onMessage handles one client frame. It returns a close code and reason when the connection
// must close, or 0.
func (s *session) onMessage(data []byte) (int, string) {
	// Every frame counts against the rate limit, valid or not.
	limited := !s.limiter.Allow()
	if limited {
		s.strikes++
		if s.strikes >= maxStrikes {
			return wire.CloseRateLimited, "command rate limit"
		}
	} else {
		s.strikes = 0
	}
	m, err := wire.DecodeClientMessage(data, s.subprotocol(), s.limits)
	var ce *wire.CommandError
	switch {
	case err != nil && !errors.As(err, &ce):
		s.hub.metrics.commandErrors.WithLabelValues("undecodable").Inc()
		return wire.CloseProtocolError, "undecodable command"
	case limited:
		id := uint32(0)
		if m != nil {
			id = m.Id
		} else {
			id = ce.ID
		}
		s.sendError(id, pb.ErrorCode_ERROR_CODE_RATE_LIMITED, "too many commands", "")
		return 0, ""
	case ce != nil:
		s.sendError(ce.ID, ce.Code, ce.Message, "")
		return 0, ""
	}
	if code, reason, handled := s.authGate(m); handled {
		return code, reason
	}
	switch c := m.Command.(type) {
	case *pb.ClientMessage_Subscribe:
		s.subscribe(m.Id, c.Subscribe)
	case *pb.ClientMessage_Unsubscribe:
		s.unsubscribe(m.Id, c.Unsubscribe)
	case *pb.ClientMessage_Resync:
		s.resync(m.Id, c.Resync)
	case *pb.ClientMessage_ListInstruments:
		s.listInstruments(m.Id, c.ListInstruments)
	case *pb.ClientMessage_ReplayControl:
		s.hub.metrics.commands.WithLabelValues("replay_control").Inc()
		if !s.entitlements().Replay {
			s.sendError(m.Id, pb.ErrorCode_ERROR_CODE_NOT_ENTITLED, "not entitled to replay sessions", "")
			return 0, ""
		}
		s.server.replayControl(s, m.Id, c.ReplayControl)
	case *pb.ClientMessage_Ping:
		s.hub.metrics.commands.WithLabelValues("ping").Inc()
		s.sendControl(&pb.ServerMessage{Kind: &pb.ServerMessage_Pong{Pong: &pb.Pong{RequestId: m.Id, Nonce: c.Ping.Nonce}}})
	}
	return 0, ""
}

func (s *session) subprotocol() string {
	if s.json {
		return wire.SubprotocolJSON
	}
	return wire.SubprotocolProto
}

// closed tells every owner to drop the session's subscriptions.
func (s *session) closed() {
	s.hub.unlisten(s)
	s.subsMu.Lock()
	defer s.subsMu.Unlock()
	for venue := range s.venues {
		s.hub.unwatchVenue(s, venue)
	}
	s.venues = nil
	for id := range s.subs {
		s.hub.cancelWait(s, id, nil) // waits of Subscribe.wait end with the connection
	}
	s.hub.metrics.subscriptions.Sub(float64(len(s.subs)))
	s.subs = nil
	// Under subsMu: a venueListed subscribe is posted before this, or not at all.
	s.hub.postAll(command{kind: cmdClosed, sess: s})
}

// heartbeat returns an encoded Heartbeat for now.
func heartbeat(json bool) []byte {
	b, _ := wire.EncodeMessage(&pb.ServerMessage{Kind: &pb.ServerMessage_Heartbeat{Heartbeat: &pb.Heartbeat{TimeNs: time.Now().UnixNano()}}}, json)
	return b
}
