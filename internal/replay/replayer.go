package replay

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/tickwire/tickwire/internal/bus"
	pb "github.com/tickwire/tickwire/pkg/proto/tickwire/v1"
	"github.com/tickwire/tickwire/pkg/wire"
)

// Defaults of Config.
const (
	// MaxStatsCatchUp bounds how far into the window a generation (a seek, a rebase) may start
	// and still read from the window's start, to carry the session statistics of what was
	// replayed before it (cursor.statsFrom); further in, its statistics start at the target.
	MaxStatsCatchUp = 30 * time.Minute
	// DefaultLookback is how far before the window start (or a seek target) reading starts, to
	// rebuild each instrument's state from its last checkpoint: twice the synthetic source's
	// default checkpoint interval (30 s), so a checkpoint is always inside it. Sources with
	// rarer snapshots need a longer one; an instrument without a snapshot inside it starts its
	// chain at its first snapshot in the window.
	DefaultLookback = 2 * 30 * time.Second
	// DefaultStatusInterval: ReplayStatus is published this often, and after every change.
	DefaultStatusInterval = time.Second
	// DefaultFlushEvery: at full speed the replayer waits for a NATS round trip after this many
	// events, so it can never be more than that far ahead of the server (core NATS has no
	// other backpressure). 1024 costs one round trip (~0.1 ms locally) per ~1 ms of publishing.
	DefaultFlushEvery = 1024
	// controlTimeout bounds how long a control request waits for the replay loop.
	controlTimeout = 5 * time.Second
	// paceGranularity: an event due within this long is published at once rather than after
	// a timer. Sleeping for every event of a fast replay (10k events/s at 10x of a busy feed)
	// costs more in wake-ups and timer slack than it gains; 1 ms early is invisible to a
	// dashboard and far below NATS and WebSocket jitter.
	paceGranularity = time.Millisecond
	// readAhead bounds stored events read ahead of the replay loop.
	readAhead = 1024
)

// Config configures a replay session.
type Config struct {
	// Session id ([a-z0-9][a-z0-9-]{0,63}); empty: NewSessionID().
	Session string
	// Window to replay: From, To, Instruments (empty: all), Slack, ScanAll.
	Window Window
	// Speed: 1 is the original timing, N is N times faster, 0 as fast as possible (at most
	// wire.MaxReplaySpeed).
	Speed float64
	// Lookback: see DefaultLookback (0: the default).
	Lookback time.Duration
	// StatusInterval: see DefaultStatusInterval (0: the default).
	StatusInterval time.Duration
	// FlushEvery: see DefaultFlushEvery (0: the default).
	FlushEvery int
	// Controllers: token subjects a feed lets control the session (ReplayStatus.controllers);
	// at most MaxControllers, each 1..256 bytes.
	Controllers []string
}

// MaxControllers bounds Config.Controllers: the list travels in every status.
const MaxControllers = 16

func (c *Config) check() error {
	if c.Session == "" {
		c.Session = NewSessionID()
	}
	if err := bus.ValidSessionID(c.Session); err != nil {
		return fmt.Errorf("%w: %w", ErrConfig, err)
	}
	if err := c.Window.check(); err != nil {
		return err
	}
	if !(c.Speed >= 0 && c.Speed <= wire.MaxReplaySpeed) {
		return fmt.Errorf("%w: speed %v outside 0..%v", ErrConfig, c.Speed, wire.MaxReplaySpeed)
	}
	if len(c.Controllers) > MaxControllers {
		return fmt.Errorf("%w: %d controllers, at most %d", ErrConfig, len(c.Controllers), MaxControllers)
	}
	for _, sub := range c.Controllers {
		if sub == "" || len(sub) > 256 {
			return fmt.Errorf("%w: controller subject of %d bytes, want 1..256", ErrConfig, len(sub))
		}
	}
	if c.Lookback < 0 || c.StatusInterval < 0 || c.FlushEvery < 0 {
		return fmt.Errorf("%w: negative lookback, status interval or flush interval", ErrConfig)
	}
	if c.Lookback == 0 {
		c.Lookback = DefaultLookback
	}
	if c.StatusInterval == 0 {
		c.StatusInterval = DefaultStatusInterval
	}
	if c.FlushEvery == 0 {
		c.FlushEvery = DefaultFlushEvery
	}
	return nil
}

// NewSessionID returns a random session id, "r-" and 8 hex digits.
func NewSessionID() string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return "r-" + hex.EncodeToString(b[:])
}

// Publisher is the NATS side of a replay session; bus.Bus implements it.
type Publisher interface {
	PublishReplayEvent(session string, ev *pb.Event) error
	PublishReplayStatus(session string, st *pb.ReplayStatus) error
	FlushReplay(ctx context.Context) error
	ServeReplayControl(session string, handle func(*pb.ReplayControl) *pb.ReplayStatus) (stop func(), err error)
	RequestReplayControl(ctx context.Context, session string, c *pb.ReplayControl) (*pb.ReplayStatus, error)
}

var _ Publisher = (*bus.Bus)(nil)

// Replayer runs one replay session.
type Replayer struct {
	cfg    Config
	src    Source
	pub    Publisher
	logger *slog.Logger

	ctl    chan ctlReq
	done   chan struct{} // closed when Run returns
	status atomic.Pointer[pb.ReplayStatus]
}

type ctlReq struct {
	c     *pb.ReplayControl
	reply chan *pb.ReplayStatus // buffered 1
}

// New checks cfg and returns a Replayer; Run starts it.
func New(cfg Config, src Source, pub Publisher, logger *slog.Logger) (*Replayer, error) {
	if err := cfg.check(); err != nil {
		return nil, err
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Replayer{cfg: cfg, src: src, pub: pub, logger: logger.With("component", "replay", "session", cfg.Session),
		ctl: make(chan ctlReq), done: make(chan struct{})}, nil
}

// Session returns the session id.
func (r *Replayer) Session() string { return r.cfg.Session }

// Status returns the last status published (nil before Run publishes one). Safe from any
// goroutine.
func (r *Replayer) Status() *pb.ReplayStatus { return r.status.Load() }

// Run replays the window into the session and answers control requests until ctx ends, then
// returns nil (or the first error that stopped it: the session id is taken, reading or
// publishing failed). After the window's end the session is FINISHED and keeps answering, so a
// client can seek back. Run may be called once.
func (r *Replayer) Run(ctx context.Context) error {
	closeDone := sync.OnceFunc(func() { close(r.done) })
	defer closeDone()
	pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	_, err := r.pub.RequestReplayControl(pctx, r.cfg.Session, &pb.ReplayControl{})
	cancel()
	switch {
	case err == nil:
		return fmt.Errorf("%w: %s", ErrSessionExists, r.cfg.Session)
	case !errors.Is(err, bus.ErrNoReplay):
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("replay: check session %s: %w", r.cfg.Session, err)
	}
	stop, err := r.pub.ServeReplayControl(r.cfg.Session, r.handleControl)
	if err != nil {
		return err
	}
	defer stop()

	now := time.Now()
	l := &loop{r: r, base: uint64(now.Unix()) * 1000, speed: r.cfg.Speed, state: pb.ReplayState_REPLAY_STATE_RUNNING}
	r.logger.Info("replay session started", "from", r.cfg.Window.From, "to", r.cfg.Window.To,
		"instruments", r.cfg.Window.Instruments, "speed", r.cfg.Speed)
	err = l.run(ctx)
	closeDone() // a control request waiting for the loop gives up now, so stop does not wait
	stop()
	l.stopReader()
	if err != nil {
		r.logger.Error("replay session failed", "err", err)
		return err
	}
	r.logger.Info("replay session stopped")
	return nil
}

// handleControl passes a control request to the loop and waits for its answer. It runs on the
// control subscription's goroutine; nil means no answer (the requester gets an error).
func (r *Replayer) handleControl(c *pb.ReplayControl) *pb.ReplayStatus {
	req := ctlReq{c: c, reply: make(chan *pb.ReplayStatus, 1)}
	t := time.NewTimer(controlTimeout)
	defer t.Stop()
	select {
	case r.ctl <- req:
	case <-r.done:
		return nil
	case <-t.C:
		return nil
	}
	select {
	case st := <-req.reply:
		return st
	case <-r.done:
		return nil
	case <-t.C:
		return nil
	}
}

// reader reads one generation's stored events into events, then closes it.
type reader struct {
	cancel context.CancelFunc
	events chan *pb.Event
	done   chan struct{}
	err    error // set before events is closed
}

// loop is the state of a running session; only Run's goroutine touches it.
type loop struct {
	r     *Replayer
	base  uint64 // epoch of generation 0
	gen   uint32
	state pb.ReplayState
	speed float64

	cur       *cursor
	rd        *reader
	readEnded bool
	endClock  int64 // where the generation ends, once readEnded
	pending   []*pb.Event
	head      int

	clock  int64  // EventTime of the last event published (the target before any)
	events uint64 // published in this generation

	// Pacing: an event at time t is due at anchorWall + (t - anchorClock) / speed. Anchored at
	// the first publish of a generation, and again on resume and speed changes.
	anchored    bool
	anchorWall  time.Time
	anchorClock int64
	pausedPos   int64 // replay position frozen by pause

	ticker     *time.Ticker // status every StatusInterval
	sinceFlush int
	seen       []string // sorted instruments of the generation, for the status when none were asked
	seenN      int
}

func (l *loop) run(ctx context.Context) error {
	l.startGeneration(ctx, l.r.cfg.Window.From.UnixNano())
	l.publishStatus()
	l.ticker = time.NewTicker(l.r.cfg.StatusInterval)
	defer l.ticker.Stop()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	wait := func(d time.Duration) (bool, error) {
		var tc <-chan time.Time
		if d >= 0 {
			timer.Reset(d)
			defer timer.Stop()
			tc = timer.C
		}
		for {
			select {
			case <-tc:
				return true, nil
			case req := <-l.r.ctl:
				req.reply <- l.control(ctx, req.c)
				return false, nil
			case <-l.ticker.C:
				l.publishStatus()
			case <-ctx.Done():
				return false, ctx.Err()
			}
		}
	}

	for {
		if ctx.Err() != nil {
			return nil
		}
		var err error
		switch {
		case l.head < len(l.pending):
			err = l.publishNext(ctx, wait)
		case !l.readEnded:
			err = l.readNext(ctx)
		case l.state != pb.ReplayState_REPLAY_STATE_FINISHED:
			err = l.finish(ctx, wait)
		default: // finished: serve control and status until stopped
			_, err = wait(-1)
		}
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
	}
}

// waitFunc blocks until d passes (true), or a control request or ctx ends it (false: the
// caller re-evaluates). d < 0 waits for a control request only.
type waitFunc func(d time.Duration) (bool, error)

// reach waits until the replay may pass venue time t: not paused before t and, at a finite
// speed, t due (within slack). ok false: a control request came meanwhile (or ctx ended, err):
// the caller re-evaluates.
func (l *loop) reach(t int64, slack time.Duration, wait waitFunc) (ok bool, err error) {
	now := time.Now()
	if !l.anchored {
		l.anchor(now, l.cur.target)
	}
	if l.state == pb.ReplayState_REPLAY_STATE_PAUSED && t > l.pausedPos {
		_, err := wait(-1)
		return false, err
	}
	if l.speed > 0 {
		if d := l.due(t).Sub(now); d > slack {
			return wait(d)
		}
	}
	return true, nil
}

// publishNext publishes the next pending event once it is due.
func (l *loop) publishNext(ctx context.Context, wait waitFunc) error {
	ev := l.pending[l.head]
	t := EventTime(ev)
	if ok, err := l.reach(t, paceGranularity, wait); !ok || err != nil {
		return err
	}
	if err := l.r.pub.PublishReplayEvent(l.r.cfg.Session, ev); err != nil {
		return err
	}
	l.pending[l.head] = nil
	l.head++
	if l.head == len(l.pending) {
		l.pending, l.head = l.pending[:0], 0
	}
	l.clock = max(l.clock, t)
	l.events++
	if l.sinceFlush++; l.sinceFlush >= l.r.cfg.FlushEvery {
		l.sinceFlush = 0
		return l.r.pub.FlushReplay(ctx)
	}
	return nil
}

// readNext takes the next stored event into the cursor (or the end of the generation's
// reading), serving control requests and status meanwhile.
func (l *loop) readNext(ctx context.Context) error {
	select {
	case ev, ok := <-l.rd.events:
		if !ok {
			if err := l.rd.err; err != nil && ctx.Err() == nil {
				return fmt.Errorf("replay: read: %w", err)
			}
			l.readEnded = true
			l.pending = l.cur.finish(l.pending)
			l.endClock = l.cur.to
			if now := time.Now().UnixNano(); l.cur.to > now {
				// The window reaches into the future: end with what is stored.
				l.endClock = max(l.cur.target, l.cur.lastTime)
			}
			return nil
		}
		l.pending = l.cur.feed(ev, l.pending)
	case req := <-l.r.ctl:
		req.reply <- l.control(ctx, req.c)
	case <-l.ticker.C:
		l.publishStatus()
	case <-ctx.Done():
	}
	return nil
}

// finish ends the generation once the replay clock reaches the window's end: FINISHED.
func (l *loop) finish(ctx context.Context, wait waitFunc) error {
	if ok, err := l.reach(l.endClock, 0, wait); !ok || err != nil {
		return err
	}
	if err := l.r.pub.FlushReplay(ctx); err != nil {
		return err
	}
	l.clock = max(l.clock, l.endClock)
	l.state = pb.ReplayState_REPLAY_STATE_FINISHED
	l.r.logger.Info("replay window finished", "generation", l.gen, "events", l.events,
		"rejected", l.cur.rejected)
	l.publishStatus()
	return nil
}

func (l *loop) anchor(now time.Time, clock int64) {
	l.anchored, l.anchorWall, l.anchorClock = true, now, clock
}

// due returns when an event at time t is due at the current speed (> 0).
func (l *loop) due(t int64) time.Time {
	return l.anchorWall.Add(time.Duration(float64(t-l.anchorClock) / l.speed))
}

// position returns the replay position at now: where the replay clock would be.
func (l *loop) position(now time.Time) int64 {
	switch {
	case l.state == pb.ReplayState_REPLAY_STATE_PAUSED:
		return l.pausedPos
	case !l.anchored:
		return l.cur.target
	case l.speed == 0 || l.state == pb.ReplayState_REPLAY_STATE_FINISHED:
		return l.clock
	}
	p := float64(l.anchorClock) + float64(now.Sub(l.anchorWall))*l.speed
	if p > math.MaxInt64/2 {
		return math.MaxInt64 / 2
	}
	return max(int64(p), l.clock)
}

// startGeneration starts reading for a new generation at target.
func (l *loop) startGeneration(ctx context.Context, target int64) {
	l.stopReader()
	win := &l.r.cfg.Window
	l.cur = newCursor(target, win.To.UnixNano(), l.base+uint64(l.gen))
	start := time.Unix(0, target).Add(-l.r.cfg.Lookback)
	if from := win.From.UnixNano(); target-from <= int64(MaxStatsCatchUp) {
		// Read from the window's start, so that the chain can carry the session statistics of
		// what was replayed before target (a page joining mid-way shows them too).
		l.cur.statsFrom(from)
		if fromStart := win.From.Add(-l.r.cfg.Lookback); fromStart.Before(start) {
			start = fromStart
		}
	}
	l.pending, l.head = l.pending[:0], 0
	l.readEnded = false
	l.clock, l.events, l.anchored = target, 0, false
	l.pausedPos = target
	l.seen, l.seenN = nil, 0

	gctx, cancel := context.WithCancel(ctx)
	rd := &reader{cancel: cancel, events: make(chan *pb.Event, readAhead), done: make(chan struct{})}
	l.rd = rd
	go func() {
		defer close(rd.done)
		rd.err = l.r.src.Scan(gctx, start, win.Instruments, func(ev *pb.Event) error {
			if win.pastEnd(ev) {
				return ErrStop
			}
			select {
			case rd.events <- ev:
				return nil
			case <-gctx.Done():
				return gctx.Err()
			}
		})
		if gctx.Err() != nil {
			rd.err = nil // cancelled on purpose (seek, stop)
		}
		close(rd.events)
	}()
}

// stopReader stops the current generation's reader and waits for it.
func (l *loop) stopReader() {
	if l.rd == nil {
		return
	}
	l.rd.cancel()
	<-l.rd.done
	l.rd = nil
}

// control applies one control request and returns the status after it.
func (l *loop) control(ctx context.Context, c *pb.ReplayControl) *pb.ReplayStatus {
	now := time.Now()
	changed := true
	switch a := c.GetAction().(type) {
	case *pb.ReplayControl_Pause:
		if l.state == pb.ReplayState_REPLAY_STATE_RUNNING {
			l.pausedPos = l.position(now)
			l.state = pb.ReplayState_REPLAY_STATE_PAUSED
		}
	case *pb.ReplayControl_Resume:
		if l.state == pb.ReplayState_REPLAY_STATE_PAUSED {
			l.state = pb.ReplayState_REPLAY_STATE_RUNNING
			l.anchor(now, l.pausedPos)
		}
	case *pb.ReplayControl_Speed:
		s := a.Speed
		if !(s >= 0 && s <= wire.MaxReplaySpeed) {
			l.r.logger.Warn("replay speed refused", "speed", s)
			changed = false
			break
		}
		p := l.position(now)
		l.speed = s
		if l.state != pb.ReplayState_REPLAY_STATE_PAUSED {
			l.anchor(now, p)
		}
	case *pb.ReplayControl_Rebase:
		t := l.position(now)
		l.gen++
		paused := l.state == pb.ReplayState_REPLAY_STATE_PAUSED
		if l.state == pb.ReplayState_REPLAY_STATE_FINISHED {
			l.state = pb.ReplayState_REPLAY_STATE_RUNNING // the end's state is sent again, then it finishes
		}
		l.startGeneration(ctx, t)
		if paused {
			l.pausedPos = t
		}
		l.r.logger.Info("replay rebase", "at", time.Unix(0, t).UTC(), "generation", l.gen)
	case *pb.ReplayControl_SeekTimeNs:
		win := &l.r.cfg.Window
		t := min(max(a.SeekTimeNs, win.From.UnixNano()), win.To.UnixNano())
		l.gen++
		if l.state == pb.ReplayState_REPLAY_STATE_FINISHED {
			l.state = pb.ReplayState_REPLAY_STATE_RUNNING
		}
		l.startGeneration(ctx, t)
		l.r.logger.Info("replay seek", "to", time.Unix(0, t).UTC(), "generation", l.gen)
	default: // no action: a status query
		changed = false
	}
	st := l.buildStatus()
	if changed {
		l.publish(st)
	}
	return st
}

func (l *loop) buildStatus() *pb.ReplayStatus {
	win := &l.r.cfg.Window
	insts := win.Instruments
	if len(insts) == 0 && l.cur != nil {
		if len(l.cur.insts) != l.seenN {
			l.seen = l.seen[:0]
			for id := range l.cur.insts {
				l.seen = append(l.seen, id)
			}
			slices.Sort(l.seen)
			l.seenN = len(l.cur.insts)
		}
		insts = l.seen
	}
	return &pb.ReplayStatus{
		Session:     l.r.cfg.Session,
		State:       l.state,
		ClockNs:     l.clock,
		Speed:       l.speed,
		FromNs:      win.From.UnixNano(),
		ToNs:        win.To.UnixNano(),
		Instruments: slices.Clone(insts),
		Events:      l.events,
		Generation:  l.gen,
		Controllers: l.r.cfg.Controllers,
	}
}

func (l *loop) publishStatus() { l.publish(l.buildStatus()) }

func (l *loop) publish(st *pb.ReplayStatus) {
	l.r.status.Store(proto.CloneOf(st))
	if err := l.r.pub.PublishReplayStatus(l.r.cfg.Session, st); err != nil {
		l.r.logger.Warn("publish replay status", "err", err)
	}
}
