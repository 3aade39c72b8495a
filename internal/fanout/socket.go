package fanout

import (
	"crypto/tls"
	"errors"
	"net"
	"os"
	"syscall"
	"time"
)

// Socket is the byte stream under one WebSocket connection, as a Writer's shard uses it.
type Socket interface {
	// TryWrite writes as much of b as the socket takes now, without waiting: n < len(b) with a
	// nil error means its send buffer is full, and the rest is offered again on a later pass.
	TryWrite(b []byte) (n int, err error)
	// Close closes the socket. It may be called more than once.
	Close() error
}

// NetSocket returns a Socket writing to c: directly to the file descriptor, without blocking,
// when c exposes one (a TCP or Unix connection); for a *tls.Conn, through a goroutine of its
// own that does the blocking writes (tlssocket.go); otherwise through c.Write with a deadline
// of a millisecond, a timeout counting as a full buffer.
func NetSocket(c net.Conn) Socket {
	if _, ok := c.(*tls.Conn); ok {
		return newTLSSocket(c)
	}
	if sc, ok := c.(syscall.Conn); ok {
		if rc, err := sc.SyscallConn(); err == nil && rawSupported {
			return newRawSocket(c, rc)
		}
	}
	return &deadlineSocket{conn: c}
}

// rawSocket writes to the descriptor in the runtime's non-blocking mode: a write the kernel
// cannot take at once returns EAGAIN instead of parking the shard. Only the connection's shard
// calls TryWrite.
type rawSocket struct {
	conn net.Conn
	rc   syscall.RawConn
	// The callback and what it works on are made once: a closure per write would allocate.
	write func(fd uintptr) bool
	b     []byte
	n     int
	err   error
}

func newRawSocket(c net.Conn, rc syscall.RawConn) *rawSocket {
	s := &rawSocket{conn: c, rc: rc}
	s.write = func(fd uintptr) bool {
		s.n, s.err = rawWrite(fd, s.b)
		return true // never wait for writability: the shard comes back on its next pass
	}
	return s
}

func (s *rawSocket) TryWrite(b []byte) (int, error) {
	s.b = b
	err := s.rc.Write(s.write)
	s.b = nil
	n, werr := s.n, s.err
	s.n, s.err = 0, nil
	switch {
	case err != nil:
		return 0, err
	case werr == nil:
		return n, nil
	case errors.Is(werr, syscall.EAGAIN):
		return 0, nil
	default:
		return 0, os.NewSyscallError("write", werr)
	}
}

func (s *rawSocket) Close() error { return s.conn.Close() }

// deadlineSocket is the fallback for connections without a descriptor (pipes); not for TLS,
// whose connection is broken by a write that timed out (tlsSocket).
type deadlineSocket struct{ conn net.Conn }

func (s *deadlineSocket) TryWrite(b []byte) (int, error) {
	if err := s.conn.SetWriteDeadline(time.Now().Add(time.Millisecond)); err != nil {
		return 0, err
	}
	n, err := s.conn.Write(b)
	if errors.Is(err, os.ErrDeadlineExceeded) {
		// Taken as a full buffer.
		return n, nil
	}
	return n, err
}

func (s *deadlineSocket) Close() error { return s.conn.Close() }
