package client

import (
	"errors"
	"fmt"
	"net"
	"time"
)

// deadlineConn is the connection gws writes to. gws writes each frame (a command, a pong, a
// close, whoever asks for it: the caller of a command, the read goroutine, Run's context, or
// gws itself on an error) with one Write under its own write mutex, so each Write here is one
// frame, and no two run at once. Each gets its own deadline, timeout from its start, cleared
// once it is done: a frame that cannot be written in time fails the connection, and no deadline
// outlives its write to fail a later one. (A deadline set for each command and never cleared,
// as this package once did, failed the next pong as soon as it passed, and the client dropped
// a healthy connection as a "heartbeat timeout" about every 15 s.)
type deadlineConn struct {
	net.Conn
	timeout time.Duration
}

func (c *deadlineConn) Write(b []byte) (int, error) {
	if err := c.Conn.SetWriteDeadline(time.Now().Add(c.timeout)); err != nil {
		return 0, err
	}
	n, err := c.Conn.Write(b)
	if err != nil {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			err = fmt.Errorf("%w: a frame not written in %v: %w", ErrWriteTimeout, c.timeout, err)
		}
		return n, err
	}
	_ = c.Conn.SetWriteDeadline(time.Time{})
	return n, nil
}
