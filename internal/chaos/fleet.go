package chaos

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/tickwire/tickwire/pkg/book"
	sdk "github.com/tickwire/tickwire/pkg/client"
	pb "github.com/tickwire/tickwire/pkg/proto/tickwire/v1"
)

// FleetConfig is the clients under test.
type FleetConfig struct {
	URL         string // ws://host:port/ws (the load balancer)
	Token       func(ctx context.Context) (string, error)
	Clients     int      // default 20
	Instruments []string // what the clients share out, each client PerClient of them
	PerClient   int      // default 4
	Depth       int      // book depth each client subscribes (default 10)
	Logger      *slog.Logger
}

// Fleet is SDK clients connected through the load balancer. Each checks its book against the
// Reference at every position it reaches, and keeps the longest time it went without data.
type Fleet struct {
	ref    *Reference
	bots   []*bot
	cancel context.CancelFunc
	wg     sync.WaitGroup
	stop   sync.Once
}

// bot is one client's handler and its findings.
type bot struct {
	sdk.BaseHandler
	id    int
	ref   *Reference
	depth int
	c     *sdk.Client
	insts []string

	mu        sync.Mutex
	last      time.Time     // guarded by mu: last snapshot or delta
	maxGap    time.Duration // guarded by mu: longest silence in the window
	connects  int           // guarded by mu
	inWindow  windowFlags   // guarded by mu
	checked   uint64        // guarded by mu
	wrong     []string      // guarded by mu: the first few wrong books
	wrongN    uint64        // guarded by mu
	unknown   uint64        // guarded by mu: positions the stream never had
	pending   []observation // guarded by mu: ahead of the reference; checked again later
	unchecked uint64        // guarded by mu: pending dropped (bound) or never caught up
}

type windowFlags struct {
	reconnected bool
	snapshots   map[pb.SnapshotReason]int // snapshots after a reconnect or a break, by reason
	resumed     bool
}

type observation struct {
	inst           string
	epoch, seq, fp uint64
	at             time.Time
}

const maxPending = 200_000

// StartFleet connects the clients and subscribes them.
func StartFleet(cfg FleetConfig, ref *Reference) (*Fleet, error) {
	if cfg.Clients <= 0 {
		cfg.Clients = 20
	}
	if cfg.PerClient <= 0 {
		cfg.PerClient = 4
	}
	if cfg.Depth <= 0 {
		cfg.Depth = 10
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if len(cfg.Instruments) == 0 {
		return nil, fmt.Errorf("chaos: fleet: no instruments")
	}
	ctx, cancel := context.WithCancel(context.Background())
	f := &Fleet{ref: ref, cancel: cancel}
	for i := range cfg.Clients {
		b := &bot{id: i, ref: ref, depth: cfg.Depth, last: time.Now()}
		for k := range min(cfg.PerClient, len(cfg.Instruments)) {
			b.insts = append(b.insts, cfg.Instruments[(i*cfg.PerClient+k)%len(cfg.Instruments)])
		}
		c, err := sdk.New(sdk.Options{URL: cfg.URL, Handler: b, TokenSource: cfg.Token, Logger: cfg.Logger.With("client", i),
			BackoffMin: 100 * time.Millisecond, BackoffMax: time.Second})
		if err != nil {
			f.Stop()
			return nil, err
		}
		b.c = c
		if err := c.Subscribe(sdk.Subscription{Instruments: b.insts,
			Channels: []pb.Channel{pb.Channel_CHANNEL_BOOK, pb.Channel_CHANNEL_QUOTE, pb.Channel_CHANNEL_TRADES}, Depth: uint32(cfg.Depth)}); err != nil {
			f.Stop()
			return nil, err
		}
		f.bots = append(f.bots, b)
		f.wg.Go(func() {
			if err := c.Run(ctx); err != nil && ctx.Err() == nil {
				cfg.Logger.Error("chaos: client stopped", "client", i, "err", err)
			}
		})
	}
	f.wg.Go(func() { f.recheckLoop(ctx) })
	return f, nil
}

// Stop disconnects every client and waits for them (idempotent).
func (f *Fleet) Stop() {
	f.stop.Do(func() {
		f.cancel()
		f.wg.Wait()
	})
}

func (b *bot) OnStateChange(_ *sdk.Client, s sdk.ConnState, _ error) {
	if s != sdk.Connected {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.connects++
	if b.connects > 1 {
		b.inWindow.reconnected = true
	}
}

func (b *bot) OnSnapshot(_ *sdk.Client, u sdk.Update) {
	b.seen(u)
	if r := u.Snapshot.GetReason(); r != pb.SnapshotReason_SNAPSHOT_REASON_SUBSCRIBE || b.reconnected() {
		b.mu.Lock()
		if b.inWindow.snapshots == nil {
			b.inWindow.snapshots = map[pb.SnapshotReason]int{}
		}
		b.inWindow.snapshots[r]++
		b.mu.Unlock()
	}
}

func (b *bot) reconnected() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.connects > 1
}

func (b *bot) OnSubscribed(_ *sdk.Client, s *pb.Subscribed) {
	if len(s.GetResumed()) > 0 {
		b.mu.Lock()
		b.inWindow.resumed = true
		b.mu.Unlock()
	}
}

func (b *bot) OnUpdate(_ *sdk.Client, u sdk.Update) { b.seen(u) }

// seen records data and, for the book, checks it against the reference.
func (b *bot) seen(u sdk.Update) {
	now := time.Now()
	b.mu.Lock()
	if gap := now.Sub(b.last); gap > b.maxGap {
		b.maxGap = gap
	}
	b.last = now
	b.mu.Unlock()
	if u.Channel != pb.Channel_CHANNEL_BOOK || !u.Replica.Synced(pb.Channel_CHANNEL_BOOK) {
		return
	}
	pos := u.Replica.Position(pb.Channel_CHANNEL_BOOK)
	o := observation{inst: u.Instrument, epoch: pos.Epoch, seq: pos.Seq, fp: bookFingerprint(u.Replica.Book(), b.depth), at: now}
	b.check(o)
}

func (b *bot) check(o observation) {
	b.record(o, b.ref.Check(o.inst, o.epoch, o.seq, o.fp), 0)
}

// record counts verdict v of o; an observation still ahead of the reference is kept to be
// checked again, unless it is older than giveUp (when giveUp is not 0).
func (b *bot) record(o observation, v Verdict, giveUp time.Duration) {
	b.mu.Lock()
	defer b.mu.Unlock()
	switch v {
	case Match:
		b.checked++
	case Wrong:
		b.checked++
		b.wrongN++
		if len(b.wrong) < 5 {
			b.wrong = append(b.wrong, fmt.Sprintf("client %d %s at %d/%d", b.id, o.inst, o.epoch, o.seq))
		}
	case Unknown:
		b.unknown++
	case Ahead:
		if len(b.pending) >= maxPending || (giveUp > 0 && time.Since(o.at) > giveUp) {
			b.unchecked++
			return
		}
		b.pending = append(b.pending, o)
	}
}

// recheckLoop checks again, every 200 ms, what was ahead of the reference.
func (f *Fleet) recheckLoop(ctx context.Context) {
	t := time.NewTicker(200 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		f.recheck(30 * time.Second)
	}
}

// recheck checks pending observations again; those still ahead of the reference and older
// than giveUp count as unchecked.
func (f *Fleet) recheck(giveUp time.Duration) {
	for _, b := range f.bots {
		b.mu.Lock()
		pending := b.pending
		b.pending = nil
		b.mu.Unlock()
		for _, o := range pending {
			b.record(o, b.ref.Check(o.inst, o.epoch, o.seq, o.fp), giveUp)
		}
	}
}

func bookFingerprint(bk *book.Book, depth int) uint64 {
	pairs := func(ls []book.Level) [][2]int64 {
		out := make([][2]int64, len(ls))
		for i, l := range ls {
			out[i] = [2]int64{l.Price, l.Size}
		}
		return out
	}
	return Fingerprint(pairs(bk.Top(book.Bid, depth)), pairs(bk.Top(book.Ask, depth)))
}

// Window is what the clients went through between OpenWindow and CloseWindow (one fault).
type Window struct {
	// MaxSilence is the longest time any client went without a snapshot or delta.
	MaxSilence time.Duration `json:"max_silence_ns"`
	// Reconnected clients, of which Resumed got at least one stream resumed; Snapshots counts
	// the snapshots clients needed after a reconnect or a break, by reason.
	Reconnected int            `json:"reconnected"`
	Resumed     int            `json:"resumed"`
	Snapshots   map[string]int `json:"snapshots"`
	// ClientsWithSnapshot is how many clients needed a snapshot for some stream.
	ClientsWithSnapshot int `json:"clients_with_snapshot"`
}

// OpenWindow starts a fault's window: every client's silence and reconnects count from now.
func (f *Fleet) OpenWindow() {
	for _, b := range f.bots {
		b.mu.Lock()
		b.maxGap = 0
		b.inWindow = windowFlags{}
		b.mu.Unlock()
	}
}

// CloseWindow ends the window and returns what it saw.
func (f *Fleet) CloseWindow() Window {
	w := Window{Snapshots: map[string]int{}}
	now := time.Now()
	for _, b := range f.bots {
		b.mu.Lock()
		gap := max(b.maxGap, now.Sub(b.last))
		w.MaxSilence = max(w.MaxSilence, gap)
		if b.inWindow.reconnected {
			w.Reconnected++
			if b.inWindow.resumed {
				w.Resumed++
			}
		}
		if len(b.inWindow.snapshots) > 0 {
			w.ClientsWithSnapshot++
		}
		for r, n := range b.inWindow.snapshots {
			w.Snapshots[r.String()] += n
		}
		b.mu.Unlock()
	}
	return w
}

// Findings are the fleet's checks over the whole run.
type Findings struct {
	Checked       uint64   `json:"checked"`
	Wrong         uint64   `json:"wrong"`
	Unknown       uint64   `json:"unknown"`
	Unchecked     uint64   `json:"unchecked"`
	WrongExamples []string `json:"wrong_examples"`
}

// Findings returns the checks so far (pending ones checked once more first; those still
// ahead of the reference count as unchecked).
func (f *Fleet) Findings() Findings {
	f.recheck(time.Nanosecond)
	var out Findings
	for _, b := range f.bots {
		b.mu.Lock()
		out.Checked += b.checked
		out.Wrong += b.wrongN
		out.Unknown += b.unknown
		out.Unchecked += b.unchecked + uint64(len(b.pending))
		out.WrongExamples = append(out.WrongExamples, b.wrong...)
		b.mu.Unlock()
	}
	return out
}

// Unconverged returns the (client, instrument) streams whose book is not the reference's last
// one: not synced, in another epoch, or another book. After the load stops and the fleet has
// had time, any left are gaps not healed.
func (f *Fleet) Unconverged() []string {
	var out []string
	for _, b := range f.bots {
		for _, inst := range b.insts {
			epoch, _, fp, ok := f.ref.Head(inst)
			v, held := b.c.View(inst)
			st := v.Streams[pb.Channel_CHANNEL_BOOK]
			switch {
			case !ok:
				continue // nothing stored for it
			case !held || !st.Synced:
				out = append(out, fmt.Sprintf("client %d %s: not synced", b.id, inst))
			case st.Epoch != epoch:
				out = append(out, fmt.Sprintf("client %d %s: epoch %d, stream %d", b.id, inst, st.Epoch, epoch))
			case bookFingerprint(v.Book, b.depth) != fp:
				out = append(out, fmt.Sprintf("client %d %s: book differs from the stream's last at %d/%d", b.id, inst, st.Epoch, st.Seq))
			}
		}
	}
	return out
}

// Stats sums the clients' SDK counters.
func (f *Fleet) Stats() sdk.Stats {
	var s sdk.Stats
	for _, b := range f.bots {
		x := b.c.Stats()
		s.Connects += x.Connects
		s.Disconnects += x.Disconnects
		s.Resyncs += x.Resyncs
		s.Gaps += x.Gaps
		s.EpochChanges += x.EpochChanges
		s.ChecksumFailures += x.ChecksumFailures
		s.Resumed += x.Resumed
		s.Snapshots += x.Snapshots
		s.Deltas += x.Deltas
	}
	return s
}
