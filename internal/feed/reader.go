package feed

import (
	"bufio"
	"errors"
	"net"
	"runtime/debug"
	"strconv"
	"time"

	"github.com/tickwire/tickwire/internal/wsframe"
	"github.com/tickwire/tickwire/pkg/wire"
)

// readBuffer is each connection's read buffer. Commands are small and rare: a small buffer keeps
// an idle connection cheap; a larger frame is read through it.
const readBuffer = 512

// readLoop reads one connection's frames until it closes, and handles them in order. It is the
// connection's only reader; it never writes: pongs and close frames go through sess.out, the
// socket's only writer. gws did the handshake only: its read loop sliced with a client's
// unchecked 64-bit length and panicked (issue 14), and it wrote close frames and pongs of its own
// between the shard's frames.
func (s *Server) readLoop(sess *session, nc net.Conn) {
	defer s.endSession(sess)
	defer func() {
		// The last line, not the fix: a bug in handling one client's command must not take the
		// feed (and an embedded NATS) down with it.
		if v := recover(); v != nil {
			s.metrics.panics.Inc()
			s.log.Error("panic handling a connection", "conn", sess.id, "remote", sess.ip,
				"panic", v, "stack", string(debug.Stack()))
			sess.out.Close(wire.CloseInternalError, "internal error")
		}
	}()
	r := wsframe.NewReader(bufio.NewReaderSize(nc, readBuffer), wsframe.ServerSide, s.cfg.ReadLimit)
	idleSince := time.Now() // since when the connection holds no subscription
	for {
		now := time.Now()
		deadline, idle := now.Add(s.cfg.ReadTimeout), false
		if sess.holdsAny() {
			idleSince = time.Time{}
		} else if s.cfg.IdleTimeout > 0 {
			if idleSince.IsZero() {
				idleSince = now
			}
			if end := idleSince.Add(s.cfg.IdleTimeout); !end.After(now) {
				sess.out.Close(wire.CloseIdle, "no subscription within the idle timeout")
				return
			} else if end.Before(deadline) {
				deadline, idle = end, true
			}
		}
		_ = nc.SetReadDeadline(deadline)
		f, err := r.Next()
		if err != nil {
			s.readFailed(sess, err, idle)
			return
		}
		switch f.Opcode {
		case wsframe.OpPing:
			sess.out.Pong(f.Payload)
		case wsframe.OpPong:
			// Alive: the loop moves the deadline.
		case wsframe.OpClose:
			// The client closes: answer with a close frame (RFC 6455 section 5.5.1); the shard
			// writes it after anything partly written and closes the socket.
			sess.out.Close(wire.CloseNormal, "")
			return
		default:
			if (f.Opcode == wsframe.OpText) != sess.json {
				sess.out.Close(wire.CloseProtocolError, "wrong frame type for subprotocol")
				return
			}
			if code, reason := sess.onMessage(f.Payload); code != 0 {
				sess.out.Close(code, reason)
				return
			}
		}
	}
}

// readFailed closes a connection whose read ended with err, with the code that says why.
// idle says the deadline was the idle timeout's, not the read timeout's.
func (s *Server) readFailed(sess *session, err error, idle bool) {
	if sess.out.Closing() {
		return // the server closed first (shutdown, a failed write, a command): its reason stands
	}
	var fe *wsframe.Error
	var ne net.Error
	switch {
	case errors.As(err, &fe):
		code := fe.Code
		if code == wsframe.CloseTooLarge {
			code = wire.CloseMessageTooBig
		}
		s.metrics.commandErrors.WithLabelValues("frame_" + strconv.Itoa(code)).Inc()
		sess.out.Close(code, fe.Reason)
	case errors.As(err, &ne) && ne.Timeout() && idle:
		sess.out.Close(wire.CloseIdle, "no subscription within the idle timeout")
	case errors.As(err, &ne) && ne.Timeout():
		sess.out.Close(wire.ClosePingTimeout, "nothing received within the read timeout")
	default:
		// EOF, reset: nothing to tell a peer that is gone (1006 is never sent).
		sess.out.Abort(closeLost, "connection lost")
	}
}

// endSession forgets a connection whose read loop ended.
func (s *Server) endSession(sess *session) {
	sess.endAuth()
	sess.closed()
	if sess.replay != nil {
		s.leaveReplay(sess.replay, sess)
	}
	s.mu.Lock()
	delete(s.sessions, sess)
	s.mu.Unlock()
	s.release(sess.ip)
	s.metrics.connections.Dec()
}
