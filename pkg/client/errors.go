package client

import (
	"errors"
	"fmt"

	"github.com/tickwire/tickwire/pkg/wire"
)

var (
	// ErrRunning is returned by Run while another Run of the same Client is in progress.
	ErrRunning = errors.New("client: already running")
	// ErrClosed is returned by Run, and by commands that wait for an answer, after Close.
	ErrClosed = errors.New("client: closed")
	// ErrStopped is returned by ListInstruments when Run returned before the answer came.
	ErrStopped = errors.New("client: stopped before the answer arrived")
	// ErrNotSubscribed is returned by Resync for an instrument the client does not hold.
	ErrNotSubscribed = errors.New("client: instrument not subscribed")
	// ErrHeartbeatTimeout is the reason a connection was dropped when nothing arrived from the
	// server within Options.HeartbeatTimeout. The client reconnects.
	ErrHeartbeatTimeout = errors.New("client: heartbeat timeout")
	// ErrWriteTimeout is the reason a connection was dropped when a frame (a command, a pong or
	// a close) could not be written within Options.WriteTimeout. The client reconnects.
	ErrWriteTimeout = errors.New("client: write timeout")
	// ErrProtocol is the reason a connection was dropped when the server broke the WebSocket
	// protocol (an invalid frame header, refused before it was used). The client reconnects.
	ErrProtocol = errors.New("client: server broke the WebSocket protocol")
	// ErrPanic is the reason a connection was dropped after a panic while reading it (in a
	// handler, or a bug in the client): logged with its stack, and the client reconnects.
	ErrPanic = errors.New("client: panic while reading")
)

// CloseError is a connection closed by the server with a WebSocket close code. Run returns one
// when the code says not to reconnect (see wire.Reconnectable): 1000, 1009 and 4500-4999.
type CloseError struct {
	// Code is the WebSocket close code (wire.Close* constants); 1005 when the server sent none.
	Code int
	// Reason is the text the server sent with the code.
	Reason string
}

func (e *CloseError) Error() string {
	return fmt.Sprintf("client: server closed the connection: code %d %q", e.Code, e.Reason)
}

// Reconnectable reports whether the client reconnects after this close.
func (e *CloseError) Reconnectable() bool { return wire.Reconnectable(e.Code) }

// HandshakeError is a WebSocket upgrade refused by the server with an HTTP status. Run gives up
// on 4xx statuses other than 408 and 429 (the request itself is wrong: path, origin,
// credentials) and retries the rest.
type HandshakeError struct {
	StatusCode int
	Err        error
}

func (e *HandshakeError) Error() string {
	return fmt.Sprintf("client: websocket handshake refused with HTTP %d: %v", e.StatusCode, e.Err)
}

func (e *HandshakeError) Unwrap() error { return e.Err }

func (e *HandshakeError) retryable() bool {
	return e.StatusCode < 400 || e.StatusCode >= 500 || e.StatusCode == 408 || e.StatusCode == 429
}
