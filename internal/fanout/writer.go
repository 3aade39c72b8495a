package fanout

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/tickwire/tickwire/pkg/wire"
)

// Writer writes every connection it made, from Shards goroutines. Create it with NewWriter and
// start it with Start; a connection made after the Writer stopped is closed at once.
type Writer struct {
	cfg    Config
	shards []*shard
	next   atomic.Uint32
}

// NewWriter returns a Writer for connections bounded by cfg.
func NewWriter(cfg Config) *Writer {
	cfg = cfg.WithDefaults()
	w := &Writer{cfg: cfg}
	tick := min(cfg.Heartbeat, cfg.PingInterval, cfg.WriteTimeout) / 4
	tick = max(tick, time.Millisecond)
	for range cfg.Shards {
		w.shards = append(w.shards, &shard{
			cfg:   &w.cfg,
			tick:  tick,
			wake:  make(chan struct{}, 1),
			conns: make(map[*Conn]struct{}),
		})
	}
	return w
}

// Config returns the Writer's configuration with defaults applied.
func (w *Writer) Config() Config { return w.cfg }

// Start runs the shards; start is the caller's goroutine launcher (so the owner can track
// them). They stop when quit is closed, after closing every connection's socket.
func (w *Writer) Start(start func(func()), quit <-chan struct{}) {
	for _, s := range w.shards {
		start(func() { s.run(quit) })
	}
}

// NewConn returns a connection writing to sock, taking protobuf messages, or JSON ones when
// json is set. Connections are spread over the shards in turn.
func (w *Writer) NewConn(sock Socket, json bool, hooks Hooks) *Conn {
	s := w.shards[int(w.next.Add(1))%len(w.shards)]
	c := &Conn{cfg: &w.cfg, json: json, sock: sock, hooks: hooks, shard: s, done: make(chan struct{})}
	now := time.Now()
	c.lastWrite, c.lastPing = now, now
	s.mu.Lock()
	stopped := s.stopped
	if !stopped {
		s.conns[c] = struct{}{}
	}
	s.mu.Unlock()
	if stopped {
		c.Close(wire.CloseGoingAway, "server shutting down")
	}
	return c
}

// shard writes its share of the connections. Connections with something to write are put on
// its dirty list by Enqueue, Pong and Close; a pass writes each of them with one system call.
type shard struct {
	cfg  *Config
	tick time.Duration // between housekeeping rounds (heartbeats, pings, write timeouts)
	wake chan struct{} // capacity 1: the dirty list went from empty to not empty

	mu sync.Mutex
	// guarded by mu:
	dirty   []*Conn
	conns   map[*Conn]struct{} // every connection not finished
	stopped bool

	// owned by the shard goroutine:
	work      []*Conn // the dirty list being written
	retry     []*Conn // connections whose socket was full: visited on every pass
	retrying  []*Conn // the retry list being visited
	house     []*Conn // scratch for housekeeping
	passes    uint64
	items     []item
	buf       []byte
	framer    framer
	lastHouse time.Time
}

// mark puts c on the dirty list. The caller set c.queued under c.mu, so c is listed once.
func (s *shard) mark(c *Conn) {
	s.mu.Lock()
	if s.stopped {
		s.mu.Unlock()
		c.finish()
		return
	}
	s.dirty = append(s.dirty, c)
	first := len(s.dirty) == 1
	s.mu.Unlock()
	if first {
		select {
		case s.wake <- struct{}{}:
		default:
		}
	}
}

func (s *shard) run(quit <-chan struct{}) {
	house := time.NewTicker(s.tick)
	defer house.Stop()
	linger := time.NewTimer(time.Hour)
	linger.Stop()
	defer linger.Stop()
	s.lastHouse = time.Now()
	for {
		select {
		case <-quit:
			s.stop()
			return
		case <-s.wake:
		case <-house.C:
		}
		for {
			wrote, waiting := s.pass()
			if !wrote && !waiting {
				break
			}
			// Something was written: gather what comes in the next FlushInterval, so that a
			// busy shard writes each connection once per interval, not once per update. A
			// full socket is offered its bytes again at the same pace, at least 1 ms apart.
			wait := s.cfg.FlushInterval
			if !wrote {
				wait = max(wait, time.Millisecond)
			}
			if wait > 0 {
				linger.Reset(wait)
				select {
				case <-quit:
					s.stop()
					return
				case <-linger.C:
				}
			}
		}
	}
}

// pass writes every dirty connection and retries the ones whose socket was full, after
// housekeeping when it is due. It reports whether it wrote anything and whether a connection is
// waiting for its socket.
func (s *shard) pass() (wrote, waiting bool) {
	now := time.Now()
	if now.Sub(s.lastHouse) >= s.tick-s.tick/8 {
		s.lastHouse = now
		s.housekeep(now)
	}
	s.mu.Lock()
	s.work, s.dirty = s.dirty, s.work[:0]
	s.mu.Unlock()
	s.retrying, s.retry = s.retry, s.retrying[:0]
	s.passes++
	for _, list := range [2][]*Conn{s.retrying, s.work} {
		for _, c := range list {
			if c.pass == s.passes || c.finished.Load() {
				continue // listed twice, or gone
			}
			c.pass = s.passes
			if s.flush(c, now) {
				wrote = true
			}
		}
	}
	clear(s.retrying)
	clear(s.work)
	return wrote, len(s.retry) > 0
}

// flush writes what c has: first what its socket refused before, then its control frames, its
// queued messages as frames and its close frame, in one write. It reports whether it wrote.
func (s *shard) flush(c *Conn, now time.Time) bool {
	if len(c.unsent) > 0 {
		n, err := c.sock.TryWrite(c.unsent)
		if err != nil {
			c.fail()
			return false
		}
		c.unsent = c.unsent[n:]
		if len(c.unsent) > 0 {
			s.waitSocket(c, now)
			return n > 0
		}
		c.unsent = nil
		c.lastWrite = now
	}
	c.mu.Lock()
	s.items = append(s.items[:0], c.pending...)
	clear(c.pending)
	c.pending, c.pendingSize = c.pending[:0], 0
	if cap(c.pending) > 1024 {
		c.pending = nil // do not keep a burst's queue on an idle connection
	}
	buf := append(s.buf[:0], c.control...)
	c.control = c.control[:0]
	closeFrame := c.closeFrame
	c.closeFrame = nil
	closed := c.closed
	c.queued = false
	c.mu.Unlock()

	buf = s.framer.appendFrames(buf, s.items, c.json, s.cfg.MaxFrame, now)
	buf = append(buf, closeFrame...)
	messages := len(s.items)
	clear(s.items)
	wrote := false
	if len(buf) > 0 {
		n, err := c.sock.TryWrite(buf)
		if err != nil {
			s.keep(buf)
			c.fail()
			return false
		}
		wrote = n > 0
		if c.hooks.Wrote != nil && messages > 0 {
			c.hooks.Wrote(messages, len(buf))
		}
		if n < len(buf) {
			c.unsent = append([]byte(nil), buf[n:]...)
			c.unsentSince = now
			s.waitSocket(c, now)
		} else {
			c.lastWrite = now
		}
	}
	s.keep(buf)
	if closed && len(c.unsent) == 0 {
		c.finish()
	}
	return wrote
}

// closeGrace is how long a closing connection's socket may take to accept its last frames.
const closeGrace = time.Second

// keep holds on to buf for the next connection, unless a burst made it large.
func (s *shard) keep(buf []byte) {
	if cap(buf) > 4*s.cfg.MaxFrame {
		buf = nil
	}
	s.buf = buf[:0]
}

// waitSocket handles a connection whose socket did not take everything: it is retried on
// every pass, and closed once it has been stuck for WriteTimeout or, when closing, for
// closeGrace.
func (s *shard) waitSocket(c *Conn, now time.Time) {
	c.mu.Lock()
	closed := c.closed
	c.mu.Unlock()
	switch {
	case closed && c.closeBy.IsZero():
		c.closeBy = now.Add(closeGrace)
		s.retry = append(s.retry, c)
	case closed && now.After(c.closeBy):
		c.finish()
	case !closed && now.Sub(c.unsentSince) >= s.cfg.WriteTimeout:
		c.Close(wire.CloseWriteTimeout, "write not taken within the write timeout")
		c.finish() // the close frame cannot get past what is stuck
	default:
		s.retry = append(s.retry, c)
	}
}

// fail closes a connection whose socket returned an error.
func (c *Conn) fail() {
	c.Close(wire.CloseWriteTimeout, "write failed")
	c.finish()
}

// finish closes c's socket and forgets c, once.
func (c *Conn) finish() {
	if !c.finished.CompareAndSwap(false, true) {
		return
	}
	_ = c.sock.Close()
	s := c.shard
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
	close(c.done)
}

// housekeep queues heartbeats and pings for connections that need them.
func (s *shard) housekeep(now time.Time) {
	s.mu.Lock()
	s.house = s.house[:0]
	for c := range s.conns {
		s.house = append(s.house, c)
	}
	s.mu.Unlock()
	for _, c := range s.house {
		if len(c.unsent) > 0 || c.finished.Load() {
			continue // a full socket is on the retry list, which checks its write timeout
		}
		ping := now.Sub(c.lastPing) >= s.cfg.PingInterval
		heartbeat := now.Sub(c.lastWrite) >= s.cfg.Heartbeat && c.hooks.Heartbeat != nil
		if !ping && !heartbeat {
			continue
		}
		c.mu.Lock()
		if c.closed {
			c.mu.Unlock()
			continue
		}
		if ping {
			c.lastPing = now
			c.control = appendControl(c.control, opPing, nil)
		}
		if heartbeat && len(c.pending) == 0 {
			hb := c.hooks.Heartbeat(c.json)
			c.pending = append(c.pending, item{b: hb, kind: Control})
			c.pendingSize += len(hb)
		}
		mark := !c.queued
		c.queued = true
		c.mu.Unlock()
		if mark {
			s.mu.Lock()
			s.dirty = append(s.dirty, c)
			s.mu.Unlock()
		}
	}
	clear(s.house)
}

// stop makes a last attempt to write every connection's pending frames (close frames, after
// Shutdown closed them), closes every socket, and refuses connections from now on.
func (s *shard) stop() {
	s.pass()
	s.mu.Lock()
	s.stopped = true
	conns := make([]*Conn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	for _, c := range conns {
		c.Close(wire.CloseGoingAway, "server shutting down")
		c.finish()
	}
}
