package fanout

import (
	"math/rand/v2"
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
	// Pings of connections made together would all fall due together, thousands of writes
	// in one pass: each connection starts at a random point of the interval instead.
	c.lastWrite = now
	c.lastPing = now.Add(-time.Duration(rand.Int64N(int64(w.cfg.PingInterval))))
	// Likewise heartbeats: connections idle since the same moment would beat together forever;
	// periods that differ a little drift apart.
	c.heartbeatEvery = w.cfg.Heartbeat - time.Duration(rand.Int64N(int64(w.cfg.Heartbeat/4)+1))
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
	urgent  []*Conn            // connections with a snapshot, reply or pong to write before anything else
	conns   map[*Conn]struct{} // every connection not finished
	stopped bool

	urgentPending atomic.Bool // urgent is not empty: checked between writes of a pass

	// owned by the shard goroutine:
	work       []*Conn // the dirty list being written
	urgentWork []*Conn // the urgent list being written
	retry      []*Conn // connections whose socket was full: visited on every pass
	retrying   []*Conn // the retry list being visited
	held       []*Conn // dirty connections written less than FlushInterval ago
	holding    []*Conn // the held list being visited
	house      []*Conn // scratch for housekeeping
	passes     uint64
	items      []item
	buf        []byte
	framer     framer
	lastHouse  time.Time
	draining   bool // stopping: nothing is held
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

// markUrgent puts c on the urgent list, even if it is on the dirty or held list already, and
// wakes the shard: what is urgent is written at the start of the next pass, or within a few
// writes of the pass under way.
func (s *shard) markUrgent(c *Conn) {
	s.mu.Lock()
	if s.stopped {
		s.mu.Unlock()
		c.finish()
		return
	}
	s.urgent = append(s.urgent, c)
	s.mu.Unlock()
	s.urgentPending.Store(true)
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// urgentEvery is how many connections a pass writes between looks at the urgent list.
const urgentEvery = 16

// flushUrgent writes the connections on the urgent list that still have something urgent (a
// normal flush since may have taken it).
func (s *shard) flushUrgent() {
	s.urgentPending.Store(false)
	s.mu.Lock()
	s.urgentWork, s.urgent = s.urgent, s.urgentWork[:0]
	s.mu.Unlock()
	if len(s.urgentWork) == 0 {
		return
	}
	now := time.Now()
	for _, c := range s.urgentWork {
		if c.finished.Load() || !c.urgent.Load() {
			continue
		}
		c.pass = s.passes // written in this pass: skipped if met again on another list
		s.flush(c, now)
	}
	clear(s.urgentWork)
}

func (s *shard) run(quit <-chan struct{}) {
	house := time.NewTicker(s.tick)
	defer house.Stop()
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	s.lastHouse = time.Now()
	for {
		select {
		case <-quit:
			s.stop()
			return
		case <-s.wake:
		case <-house.C:
		case <-timer.C:
		}
		start := time.Now()
		if next := s.pass(start); !next.IsZero() {
			// Passes on the timer come at most every quarter interval: connections falling
			// due meanwhile are written in the same pass.
			next = maxTime(next, start.Add(s.cfg.FlushInterval/4))
			timer.Reset(time.Until(next))
		}
	}
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// pass writes every dirty connection that is due, retries the ones whose socket was full, and
// does housekeeping when that is due. A connection written less than FlushInterval ago is held
// until the interval has passed, gathering what else comes for it meanwhile: a quiet
// connection is written at once, a busy one once per interval. Only deltas are held: a
// connection with a snapshot, a control message or a pong pending is written in this pass.
// pass returns when the next pass is needed for the connections held or retried (zero: only
// when woken).
func (s *shard) pass(now time.Time) (next time.Time) {
	if now.Sub(s.lastHouse) >= s.tick-s.tick/8 {
		s.lastHouse = now
		s.housekeep(now)
	}
	s.mu.Lock()
	s.work, s.dirty = s.dirty, s.work[:0]
	s.mu.Unlock()
	s.retrying, s.retry = s.retry, s.retrying[:0]
	s.holding, s.held = s.held, s.holding[:0]
	s.passes++
	s.flushUrgent()
	gap := s.cfg.FlushInterval
	written := 0
	for _, list := range [3][]*Conn{s.retrying, s.holding, s.work} {
		for _, c := range list {
			if written++; written%urgentEvery == 0 && s.urgentPending.Load() {
				s.flushUrgent()
			}
			if c.pass == s.passes || c.finished.Load() {
				continue // listed twice, or gone
			}
			c.pass = s.passes
			if gap > 0 && !s.draining && len(c.unsent) == 0 && !c.closing.Load() && !c.urgent.Load() {
				if due := c.lastFlush.Add(gap); now.Before(due) {
					s.held = append(s.held, c)
					if next.IsZero() || due.Before(next) {
						next = due
					}
					continue
				}
			}
			s.flush(c, now)
		}
	}
	if len(s.retry) > 0 {
		if retry := now.Add(max(gap, time.Millisecond)); next.IsZero() || retry.Before(next) {
			next = retry
		}
	}
	clear(s.retrying)
	clear(s.holding)
	clear(s.work)
	return next
}

// flush writes what c has: first what its socket refused before, then its control frames, its
// queued messages as frames and its close frame, in one write.
func (s *shard) flush(c *Conn, now time.Time) {
	if len(c.unsent) > 0 {
		n, err := c.sock.TryWrite(c.unsent)
		if err != nil {
			c.fail()
			return
		}
		c.unsent = c.unsent[n:]
		if len(c.unsent) > 0 {
			s.waitSocket(c, now)
			return
		}
		c.unsent = nil
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
	if !c.closed && now.Sub(c.lastPing) >= s.cfg.PingInterval-s.cfg.PingInterval/4 {
		// Due soon: ride along with this write rather than cost a write of its own later.
		buf = appendControl(buf, opPing, nil)
		c.lastPing = now
	}
	closeFrame := c.closeFrame
	c.closeFrame = nil
	closed := c.closed
	c.queued = false
	c.urgent.Store(false)
	c.mu.Unlock()

	buf = s.framer.appendFrames(buf, s.items, c.json, s.cfg.MaxFrame, now)
	buf = append(buf, closeFrame...)
	messages := len(s.items)
	clear(s.items)
	if len(buf) > 0 {
		n, err := c.sock.TryWrite(buf)
		if err != nil {
			s.keep(buf)
			c.fail()
			return
		}
		c.lastFlush = now
		if c.hooks.Wrote != nil && messages > 0 {
			c.hooks.Wrote(messages, len(buf))
		}
		if messages > 0 {
			c.lastWrite = now // a data frame: no heartbeat needed (a ping is invisible to apps)
		}
		if n < len(buf) {
			c.unsent = append([]byte(nil), buf[n:]...)
			c.unsentSince = now
			s.waitSocket(c, now)
		}
	}
	s.keep(buf)
	if closed && len(c.unsent) == 0 {
		c.finish()
	}
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
	closed := c.closing.Load()
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
		heartbeat := now.Sub(c.lastWrite) >= c.heartbeatEvery && c.hooks.Heartbeat != nil
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
		mark := c.queueLocked()
		c.mu.Unlock()
		if mark {
			s.mark(c) // taken by the pass that called housekeep
		}
	}
	clear(s.house)
}

// stop makes a last attempt to write every connection's pending frames (close frames, after
// Shutdown closed them), closes every socket, and refuses connections from now on.
func (s *shard) stop() {
	s.draining = true // everything held is due
	s.pass(time.Now())
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
