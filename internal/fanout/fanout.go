// Package fanout delivers pre-encoded server messages to WebSocket connections through queues
// bounded in bytes, coalescing everything a connection has pending into one write.
//
// Messages are encoded once by their producer and shared by every connection: the queues hold
// references, never copies. Connections are written by a Writer: a few shard goroutines, each
// owning a share of the connections, that write raw WebSocket frames without blocking, so that
// no goroutine wakes per connection and a full socket never holds up the others (its unwritten
// bytes wait for the next pass). Policy when a connection falls behind (DESIGN.md decision 6):
//   - past SoftLimit pending bytes, the connection is conflated: every pending stream message is
//     dropped and the connection's generation moves on. Producers see the new generation and send
//     each of the connection's streams one fresh snapshot instead of the deltas it missed.
//   - past HardLimit pending bytes, or when a write is not taken by the socket within
//     WriteTimeout, or after MaxConflations within a minute, the connection is closed with a
//     documented close code.
package fanout

import (
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tickwire/tickwire/pkg/wire"
)

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

// Config bounds every connection of a Writer. Zero fields take the defaults.
type Config struct {
	// SoftLimit in pending bytes triggers conflation. Default 1 MiB: about a second of a busy
	// firehose, so only a client that is really behind is conflated.
	SoftLimit int
	// HardLimit in pending bytes closes the connection with CloseSlowConsumer. Default 8 MiB.
	HardLimit int
	// MaxFrame bounds one WebSocket frame; more pending bytes go in several frames (of one
	// write). Default 1 MiB.
	MaxFrame int
	// WriteTimeout: a connection whose socket has not taken everything written to it for this
	// long is closed with CloseWriteTimeout. Default 5 s.
	WriteTimeout time.Duration
	// Heartbeat is sent after this long without a frame (each connection beats a little
	// sooner, by up to a quarter, so that connections idle together do not beat together).
	// Default 5 s.
	Heartbeat time.Duration
	// PingInterval between WebSocket pings that keep the client's read deadline alive. Default 15 s.
	PingInterval time.Duration
	// MaxConflations within a minute before the connection is closed as a slow consumer. Default 10.
	MaxConflations int
	// FlushInterval is the least time between two writes of deltas to one connection (0: 2 ms).
	// A write costs a system call whatever it carries, so a busy connection's deltas of the
	// interval leave in one write; a quiet connection is written at once, and so is one with
	// a snapshot or control message pending. Negative: no gathering.
	FlushInterval time.Duration
	// Shards is the number of writer goroutines (0: GOMAXPROCS). Each writes its connections
	// in turn.
	Shards int
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
	if c.Shards <= 0 {
		c.Shards = runtime.GOMAXPROCS(0)
	}
	return c
}

// Hooks are called by a Conn; any may be nil. They must not block.
type Hooks struct {
	// Conflated is called (without locks held) after the queue was conflated.
	Conflated func()
	// Wrote is called after each write with the number of messages and bytes in it.
	Wrote func(messages, bytes int)
	// Closed is called once, when Close is first called, with the close code and reason.
	Closed func(code int, reason string)
	// Heartbeat returns the encoded Heartbeat message to send when idle.
	Heartbeat func(json bool) []byte
}

type item struct {
	b    []byte
	kind Kind
}

// maxControl bounds the control frames (pongs, pings) waiting for one connection: a client
// that pings faster than it reads loses pongs, not memory.
const maxControl = 4 << 10

// Conn is the outbound side of one connection: a bounded queue that its shard writes.
type Conn struct {
	cfg   *Config
	json  bool
	sock  Socket
	hooks Hooks
	shard *shard

	mu sync.Mutex
	// guarded by mu:
	pending     []item
	pendingSize int
	control     []byte // raw WebSocket control frames (ping, pong) to write before the data
	closeFrame  []byte // set by Close; written after everything already framed
	gen         uint64
	closed      bool
	queued      bool        // in the shard's dirty list
	conflations []time.Time // within the last minute

	// owned by the shard goroutine:
	unsent         []byte        // framed bytes the socket has not taken yet
	unsentSince    time.Time     // when the socket first refused what is in unsent
	lastWrite      time.Time     // for heartbeats
	heartbeatEvery time.Duration // this connection's heartbeat period: 3/4 to all of Heartbeat
	lastFlush      time.Time     // for gathering (FlushInterval)
	lastPing       time.Time
	closeBy        time.Time // after Close: give up on writing the close frame at this time
	pass           uint64    // the last pass that visited the connection

	closing  atomic.Bool // Close was called (read by the shard without taking mu)
	urgent   atomic.Bool // a snapshot or control message is pending: written without holding
	finished atomic.Bool // the socket is closed (set once, by finish)

	once sync.Once
	done chan struct{}
}

// JSON reports whether the connection takes JSON messages.
func (c *Conn) JSON() bool { return c.json }

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
	mark := c.queueLocked()
	if kind != Delta {
		// A reply or a (re)subscription's snapshot does not wait to be gathered, nor for the
		// rest of a pass: the shard writes it first.
		c.urgent.Store(true)
		c.mu.Unlock()
		c.shard.markUrgent(c)
		return Queued
	}
	c.mu.Unlock()
	if mark {
		c.shard.mark(c)
	}
	return Queued
}

// queueLocked records that c has something to write and reports whether the caller must put
// it on its shard's dirty list (it is not there yet). c.mu must be held.
func (c *Conn) queueLocked() bool {
	if c.queued {
		return false
	}
	c.queued = true
	return true
}

// Pong queues a WebSocket pong answering a client's ping.
func (c *Conn) Pong(payload []byte) {
	c.mu.Lock()
	if c.closed || len(c.control)+2+len(payload) > maxControl {
		c.mu.Unlock()
		return
	}
	c.control = appendControl(c.control, opPong, payload)
	c.urgent.Store(true)
	c.queueLocked()
	c.mu.Unlock()
	c.shard.markUrgent(c)
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

// Pending returns the bytes queued and not yet framed.
func (c *Conn) Pending() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.pendingSize
}

// Close closes the connection with a close code, once; later calls do nothing. What is queued
// is dropped; the shard writes the close frame after any frame already partly written (waiting
// at most a second for the socket to take it), then closes the socket. Close does not wait:
// use Done.
func (c *Conn) Close(code int, reason string) { c.close(code, reason, true) }

// Abort closes the connection without a close frame, once (Close and Abort share the once): for
// a connection already lost, where RFC 6455's 1006 is recorded but never sent. What is queued
// is dropped; the shard closes the socket on its next pass.
func (c *Conn) Abort(code int, reason string) { c.close(code, reason, false) }

func (c *Conn) close(code int, reason string, frame bool) {
	c.once.Do(func() {
		c.closing.Store(true)
		c.mu.Lock()
		c.closed = true
		clear(c.pending)
		c.pending, c.pendingSize = nil, 0
		c.control = nil
		if frame {
			c.closeFrame = appendClose(nil, code, reason)
		}
		mark := c.queueLocked()
		c.mu.Unlock()
		if c.hooks.Closed != nil {
			c.hooks.Closed(code, reason)
		}
		if mark {
			c.shard.mark(c)
		}
	})
}

// Closing reports whether Close or Abort was called.
func (c *Conn) Closing() bool { return c.closing.Load() }

// Done is closed when the socket has been closed.
func (c *Conn) Done() <-chan struct{} { return c.done }
