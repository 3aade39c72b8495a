// Package fanout delivers pre-encoded server messages to one WebSocket connection through a
// queue bounded in bytes, coalescing everything pending into one frame per write.
//
// Messages are encoded once by their producer and shared by every connection: the queue holds
// references, never copies. Policy when a connection falls behind (DESIGN.md decision 6):
//   - past SoftLimit pending bytes, the connection is conflated: every pending stream message is
//     dropped and the connection's generation moves on. Producers see the new generation and send
//     each of the connection's streams one fresh snapshot instead of the deltas it missed.
//   - past HardLimit pending bytes, or when a write does not finish within WriteTimeout, or after
//     MaxConflations within a minute, the connection is closed with a documented close code.
package fanout

import (
	"errors"
	"sync"
	"time"

	"github.com/tickwire/tickwire/pkg/wire"
)

// Socket is the write side of a connection. A gws.Conn adapter implements it; tests use fakes.
type Socket interface {
	// WriteFrame writes one whole WebSocket message, failing after the deadline.
	WriteFrame(frame []byte, deadline time.Time) error
	// WritePing writes a WebSocket ping.
	WritePing(deadline time.Time) error
	// Close sends a close frame with code and reason (best effort) and closes the connection.
	Close(code int, reason string)
}

// Kind says how a queued message is treated when the connection is conflated.
type Kind uint8

const (
	// Control messages (Subscribed, Error, Pong, InstrumentList) survive conflation.
	Control Kind = iota
	// Snapshot messages are bounded only by HardLimit.
	Snapshot
	// Delta messages are dropped by conflation; past SoftLimit they trigger it.
	Delta
)

// Result of Enqueue.
type Result uint8

const (
	// Queued: the message will be written.
	Queued Result = iota
	// Stale: the connection's generation is not the one the producer holds; nothing was queued.
	// The producer must send the stream a snapshot at the current generation instead.
	Stale
	// Conflated: queuing this delta passed SoftLimit; the queue was conflated and the generation
	// moved on. Nothing was queued. As for Stale.
	Conflated
	// Closed: the connection is closed or closing; forget it.
	Closed
)

// Config bounds one connection. Zero fields take the defaults.
type Config struct {
	// SoftLimit in pending bytes triggers conflation. Default 1 MiB: about a second of a busy
	// firehose, so only a client that is really behind is conflated.
	SoftLimit int
	// HardLimit in pending bytes closes the connection with CloseSlowConsumer. Default 8 MiB.
	HardLimit int
	// MaxFrame bounds one written frame; more pending bytes go in several frames. Default 1 MiB.
	MaxFrame int
	// WriteTimeout is the write deadline. Default 5 s.
	WriteTimeout time.Duration
	// Heartbeat is sent after this long without a frame. Default 5 s.
	Heartbeat time.Duration
	// PingInterval between WebSocket pings that keep the client's read deadline alive. Default 15 s.
	PingInterval time.Duration
	// MaxConflations within a minute before the connection is closed as a slow consumer. Default 10.
	MaxConflations int
	// FlushInterval is the least time between two writes to the connection (0: 2 ms). A write
	// costs a system call (about 10 us here) whatever it carries, so under load a connection's
	// updates are gathered for up to this long and leave in one frame; an update to a connection
	// that has not been written to for this long leaves at once. Negative: no gathering.
	FlushInterval time.Duration
	// JSON frames the messages as JSON (subprotocol tickwire.v1.json) instead of protobuf.
	JSON bool
}

// WithDefaults returns c with every unset field at its default.
func (c Config) WithDefaults() Config {
	if c.SoftLimit <= 0 {
		c.SoftLimit = 1 << 20
	}
	if c.HardLimit <= 0 {
		c.HardLimit = 8 << 20
	}
	if c.HardLimit < c.SoftLimit {
		c.HardLimit = c.SoftLimit
	}
	if c.MaxFrame <= 0 {
		c.MaxFrame = 1 << 20
	}
	if c.WriteTimeout <= 0 {
		c.WriteTimeout = 5 * time.Second
	}
	if c.Heartbeat <= 0 {
		c.Heartbeat = 5 * time.Second
	}
	if c.PingInterval <= 0 {
		c.PingInterval = 15 * time.Second
	}
	if c.MaxConflations <= 0 {
		c.MaxConflations = 10
	}
	if c.FlushInterval == 0 {
		c.FlushInterval = 2 * time.Millisecond
	}
	return c
}

// Hooks are called by a Conn; any may be nil. They must not block.
type Hooks struct {
	// Conflated is called (without locks held) after the queue was conflated.
	Conflated func()
	// Wrote is called after each frame with the number of messages and bytes in it.
	Wrote func(messages, bytes int)
	// Closed is called once, when the connection closes, with the close code and reason.
	Closed func(code int, reason string)
	// Heartbeat returns the encoded Heartbeat message to send when idle.
	Heartbeat func(json bool) []byte
}

type item struct {
	b    []byte
	kind Kind
}

// Conn is the outbound side of one connection: a bounded queue and the goroutine that writes it.
type Conn struct {
	cfg   Config
	sock  Socket
	hooks Hooks

	mu sync.Mutex
	// guarded by mu:
	pending     []item
	pendingSize int
	gen         uint64
	closed      bool
	conflations []time.Time // within the last minute

	wake chan struct{} // capacity 1: the writer has work
	quit chan struct{}
	done chan struct{}
	once sync.Once
}

// ErrClosed is returned by Close after the first call.
var ErrClosed = errors.New("fanout: connection closed")

// New returns a Conn writing to sock. Start must be called to begin writing.
func New(sock Socket, cfg Config, hooks Hooks) *Conn {
	return &Conn{
		cfg:   cfg.WithDefaults(),
		sock:  sock,
		hooks: hooks,
		wake:  make(chan struct{}, 1),
		quit:  make(chan struct{}),
		done:  make(chan struct{}),
	}
}

// Start runs the writer; start is the caller's goroutine launcher (so the owner can track it).
func (c *Conn) Start(start func(func())) { start(c.writeLoop) }

// JSON reports whether the connection takes JSON messages.
func (c *Conn) JSON() bool { return c.cfg.JSON }

// Gen returns the connection's generation. Producers remember the generation at which they
// sent a stream its snapshot, and pass it to Enqueue.
func (c *Conn) Gen() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.gen
}

// Enqueue queues msg if the connection is still at generation gen (ignored for Control). See
// Result for what the caller must do otherwise. msg is not copied: it must never be modified.
func (c *Conn) Enqueue(msg []byte, kind Kind, gen uint64) Result {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return Closed
	}
	if kind != Control && gen != c.gen {
		c.mu.Unlock()
		return Stale
	}
	size := c.pendingSize + len(msg)
	switch {
	case kind == Delta && size > c.cfg.SoftLimit:
		tooMany := c.conflateLocked()
		c.mu.Unlock()
		if tooMany {
			c.Close(wire.CloseSlowConsumer, "conflated too often")
			return Closed
		}
		if c.hooks.Conflated != nil {
			c.hooks.Conflated()
		}
		return Conflated
	case size > c.cfg.HardLimit:
		c.mu.Unlock()
		c.Close(wire.CloseSlowConsumer, "queue over hard limit")
		return Closed
	}
	c.pending = append(c.pending, item{b: msg, kind: kind})
	c.pendingSize = size
	c.mu.Unlock()
	select {
	case c.wake <- struct{}{}:
	default:
	}
	return Queued
}

// conflateLocked drops every pending non-control message and moves the generation on. It
// reports whether the connection conflated more than MaxConflations times in a minute.
func (c *Conn) conflateLocked() bool {
	kept := c.pending[:0]
	size := 0
	for _, it := range c.pending {
		if it.kind == Control {
			kept = append(kept, it)
			size += len(it.b)
		}
	}
	clear(c.pending[len(kept):])
	c.pending, c.pendingSize = kept, size
	c.gen++
	now := time.Now()
	recent := c.conflations[:0]
	for _, t := range c.conflations {
		if now.Sub(t) < time.Minute {
			recent = append(recent, t)
		}
	}
	c.conflations = append(recent, now)
	return len(c.conflations) > c.cfg.MaxConflations
}

// Pending returns the bytes waiting to be written.
func (c *Conn) Pending() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.pendingSize
}

// Close closes the connection with a close code, once; later calls do nothing. It does not wait
// for the writer: use Done.
func (c *Conn) Close(code int, reason string) {
	c.once.Do(func() {
		c.mu.Lock()
		c.closed = true
		clear(c.pending)
		c.pending, c.pendingSize = nil, 0
		c.mu.Unlock()
		close(c.quit)
		c.sock.Close(code, reason)
		if c.hooks.Closed != nil {
			c.hooks.Closed(code, reason)
		}
	})
}

// Done is closed when the writer has stopped.
func (c *Conn) Done() <-chan struct{} { return c.done }

func (c *Conn) writeLoop() {
	defer close(c.done)
	idle := time.NewTimer(c.cfg.Heartbeat)
	defer idle.Stop()
	ping := time.NewTicker(c.cfg.PingInterval)
	defer ping.Stop()
	linger := time.NewTimer(time.Hour)
	linger.Stop()
	defer linger.Stop()
	var (
		batch     []item
		frame     []byte
		jsons     [][]byte
		lastWrite time.Time
	)
	for {
		select {
		case <-c.quit:
			return
		case <-ping.C:
			if err := c.sock.WritePing(time.Now().Add(c.cfg.WriteTimeout)); err != nil {
				c.Close(wire.CloseWriteTimeout, "ping write failed")
				return
			}
			continue
		case <-idle.C:
			if c.hooks.Heartbeat != nil {
				c.mu.Lock()
				if !c.closed && len(c.pending) == 0 {
					c.pending = append(c.pending, item{b: c.hooks.Heartbeat(c.cfg.JSON), kind: Control})
				}
				c.mu.Unlock()
			}
		case <-c.wake:
			// Written to a moment ago: gather what else comes until FlushInterval has passed,
			// so that a busy connection pays one write per interval, not one per update.
			if wait := c.cfg.FlushInterval - time.Since(lastWrite); wait > 0 {
				linger.Reset(wait)
				select {
				case <-c.quit:
					return
				case <-linger.C:
				}
			}
		}
		c.mu.Lock()
		batch, c.pending = c.pending, batch[:0]
		c.pendingSize = 0
		c.mu.Unlock()
		for start := 0; start < len(batch); {
			n := 0
			size := 0
			for start+n < len(batch) && (n == 0 || size+len(batch[start+n].b) <= c.cfg.MaxFrame) {
				size += len(batch[start+n].b)
				n++
			}
			now := time.Now()
			frame = frame[:0]
			if c.cfg.JSON {
				jsons = jsons[:0]
				for _, it := range batch[start : start+n] {
					jsons = append(jsons, it.b)
				}
				frame = wire.JSONFrame(frame, jsons, now.UnixNano())
			} else {
				for _, it := range batch[start : start+n] {
					frame = append(frame, it.b...)
				}
				frame = wire.AppendSendTime(frame, now.UnixNano())
			}
			lastWrite = now
			if err := c.sock.WriteFrame(frame, now.Add(c.cfg.WriteTimeout)); err != nil {
				c.Close(wire.CloseWriteTimeout, "write failed or timed out")
				return
			}
			if c.hooks.Wrote != nil {
				c.hooks.Wrote(n, len(frame))
			}
			start += n
		}
		clear(batch)
		if frame != nil && cap(frame) > 4*c.cfg.MaxFrame {
			frame = nil // do not keep a huge buffer for an idle connection
		}
		idle.Reset(c.cfg.Heartbeat)
	}
}
