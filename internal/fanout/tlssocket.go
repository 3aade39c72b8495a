package fanout

import (
	"net"
	"sync"
	"time"
)

// TLS connections cannot be written the way rawSocket writes TCP ones (the bytes on the
// descriptor are records the tls.Conn encrypts), nor with deadlineSocket's short deadline: a
// tls.Conn whose write timed out may have sent part of a record and fails every later write, so
// a socket buffer that is full for a millisecond would end the connection. tlsSocket gives
// each TLS connection a goroutine that does the blocking writes: TryWrite copies what it
// takes into a buffer of at most tlsTake bytes and returns at once; while the goroutine is
// still writing the previous bytes, it takes nothing (a full socket, as for TCP), and the
// Writer's WriteTimeout applies unchanged.
const (
	// tlsTake bounds the bytes taken and not yet handed to the tls.Conn.
	tlsTake = 256 << 10
	// tlsKeep: a buffer that grew past this is dropped once written, so that an idle
	// connection does not hold a burst's memory.
	tlsKeep = 16 << 10
	// tlsWriteTimeout bounds one write of the goroutine; the Writer closes a connection whose
	// socket takes nothing for its WriteTimeout long before, so this only frees the goroutine of a
	// peer that stopped reading.
	tlsWriteTimeout = time.Minute
)

// tlsSocket is a Socket over a connection (a *tls.Conn) that must only ever be written whole.
type tlsSocket struct {
	conn net.Conn
	wake chan struct{} // the writer goroutine has something to do

	mu      sync.Mutex
	buf     []byte // taken, not yet handed to the goroutine
	spare   []byte // the goroutine's last buffer, for reuse
	busy    bool   // the goroutine is writing
	err     error  // the write that failed, returned by every later TryWrite
	closing bool
	closeBy time.Time
}

func newTLSSocket(c net.Conn) *tlsSocket {
	s := &tlsSocket{conn: c, wake: make(chan struct{}, 1)}
	go s.run()
	return s
}

// TryWrite takes as much of b as fits in the buffer. It never waits for the network.
func (s *tlsSocket) TryWrite(b []byte) (int, error) {
	s.mu.Lock()
	if s.err != nil || s.closing {
		err := s.err
		s.mu.Unlock()
		if err == nil {
			err = net.ErrClosed
		}
		return 0, err
	}
	if s.busy && len(s.buf) > 0 {
		// The goroutine is writing and more waits behind it: the socket is full for now.
		s.mu.Unlock()
		return 0, nil
	}
	n := min(len(b), tlsTake-len(s.buf))
	s.buf = append(s.buf, b[:n]...)
	s.mu.Unlock()
	s.signal()
	return n, nil
}

func (s *tlsSocket) signal() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// Close writes what was taken (for at most closeGrace), then closes the connection, without
// waiting for either.
func (s *tlsSocket) Close() error {
	s.mu.Lock()
	if !s.closing {
		s.closing = true
		s.closeBy = time.Now().Add(closeGrace)
		// A write in progress, stuck on a peer that does not read, ends by the grace too.
		_ = s.conn.SetWriteDeadline(s.closeBy)
	}
	s.mu.Unlock()
	s.signal()
	return nil
}

// run writes what TryWrite took, in order, until the socket is closed or a write fails.
func (s *tlsSocket) run() {
	defer s.conn.Close()
	for {
		s.mu.Lock()
		for len(s.buf) == 0 {
			if s.closing {
				s.mu.Unlock()
				return
			}
			s.mu.Unlock()
			<-s.wake
			s.mu.Lock()
		}
		out := s.buf
		s.buf, s.spare = s.spare[:0], nil
		s.busy = true
		deadline := time.Now().Add(tlsWriteTimeout)
		if s.closing {
			deadline = s.closeBy
		}
		_ = s.conn.SetWriteDeadline(deadline) // under mu: Close's deadline is never overwritten
		s.mu.Unlock()

		_, err := s.conn.Write(out)

		s.mu.Lock()
		s.busy = false
		if cap(out) <= tlsKeep {
			s.spare = out[:0]
		}
		if err != nil {
			s.err = err
			s.buf = nil
			s.mu.Unlock()
			return
		}
		s.mu.Unlock()
	}
}
