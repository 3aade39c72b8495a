package feed

import (
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/tickwire/tickwire/internal/fanout"
	"github.com/tickwire/tickwire/pkg/market"
	pb "github.com/tickwire/tickwire/pkg/proto/tickwire/v1"
	"github.com/tickwire/tickwire/pkg/wire"
)

// sub is one session's subscription to one stream of one instrument. Owned by the owner
// goroutine of the instrument.
type sub struct {
	sess    *session
	ch      pb.Channel
	stream  int
	gen     uint64 // the connection generation at which the stream got its snapshot
	pending bool   // no snapshot yet: the book was not whole when the stream was subscribed
	idx     int    // position in instrument.streams[stream]
	// compact: quote deltas go as CompactQuote once based: the client holds this feed's latest
	// update of the stream (a snapshot or a Delta from here), the base a CompactQuote is
	// relative to. A stream resumed from another replica's position is not based until its
	// first Delta from here.
	compact, based bool
	// deferred: a snapshot the client asked for (Subscribe, Resync), with this reason, waits in
	// owner.deferred until the session's snapshot budget holds its need bytes; the stream gets no
	// deltas meanwhile, as when pending. 0: none waits.
	deferred pb.SnapshotReason
	need     int
	// interval: the stream is rate limited (the token's max_rate): no deltas, a RATE_LIMITED
	// snapshot of the latest state at most once per interval (see throttle). next: when the
	// next may go; dirty: the state changed since the last one went; listed: in owner.throttled.
	interval      time.Duration
	next          time.Time
	dirty, listed bool
}

// throttled is a rate-limited stream whose state changed before its interval was up.
type throttled struct {
	in *instrument
	s  *sub
}

// deferral is a snapshot waiting for its session's snapshot budget (see owner.request).
type deferral struct {
	in *instrument
	s  *sub
}

// instrument is an instrument's state and subscribers. Owned by its owner goroutine.
type instrument struct {
	st      *market.State
	hist    *deltaHistory
	handle  uint32
	streams [][]*sub
	bySess  map[*session][]*sub
	pending int       // subscribers waiting for their first snapshot
	askedAt time.Time // when a fresh snapshot of the book was last asked of ingest (see askSnapshot)
}

// command is a request from a session to an owner.
type command struct {
	kind       commandKind
	sess       *session
	reqID      uint32
	instrument string
	channels   []pb.Channel
	depthIndex int
	resume     map[pb.Channel]market.Position // Subscribe: positions to resume from
	waited     bool                           // Subscribe: held for its positions already (see parkFuture)
	compact    bool                           // Subscribe: compact quotes (binary connections only)
	interval   time.Duration                  // Subscribe: the token's rate tier (0: every update)
	done       chan struct{}                  // Barrier, Checkpoint, Restore: closed when handled
	ckpt       *ownerCheckpoint               // Checkpoint, Restore (checkpoint.go)
}

// parked is a Subscribe waiting for the instrument to reach the client's positions.
type parked struct {
	cmd   command
	until time.Time
}

type commandKind uint8

const (
	cmdSubscribe commandKind = iota
	cmdUnsubscribe
	cmdResync
	cmdConflated  // the session's queue was conflated: snapshot its stale streams
	cmdClosed     // the session is gone: drop its subscriptions
	cmdBarrier    // close done: every event dispatched before the command has been applied
	cmdCheckpoint // encode every instrument's state into ckpt.out, then close done (checkpoint.go)
	cmdRestore    // install ckpt.restore's states as instruments, then close done
)

// owner owns a shard of instruments: it alone applies their events and serves their
// subscriptions, so a snapshot at seq N is followed by exactly the deltas after N.
type owner struct {
	hub    *Hub
	events chan *pb.Event // bounded: a full queue holds back the NATS consumer

	// histBytes is the memory of this owner's instruments' resume histories, written by the
	// owner goroutine and read by metrics scrapes (Hub.resumeHistoryBytes): an atomic of its
	// own, so the owners share nothing per event.
	histBytes atomic.Int64

	mu sync.Mutex
	// guarded by mu:
	mailbox []command // commands from sessions; bounded by the sessions' command rate limits
	wake    chan struct{}

	// owned by the owner goroutine:
	instruments map[string]*instrument
	sessions    map[*session]map[*instrument]struct{}
	parked      []parked           // resumes from positions not reached yet (see parkFuture)
	deferred    []deferral         // snapshots waiting for their session's budget, oldest first (see request)
	throttled   []throttled        // rate-limited streams with a change waiting for their interval (see throttle)
	ticker      *time.Ticker       // runs while parked, deferred or throttled is not empty (an idle owner sleeps)
	snapCache   map[snapKey][]byte // per event or command: one encoding per stream, reason and format
	enc         [][]byte           // per event: each stream's delta, encoded (see remember)
	compact     pb.CompactQuote    // per event: scratch for the quote delta's compact form
	log         *slog.Logger
}

type snapKey struct {
	in     *instrument
	stream int
	reason pb.SnapshotReason
	json   bool
}

func newOwner(h *Hub, queue int) *owner {
	return &owner{
		hub:         h,
		events:      make(chan *pb.Event, queue),
		wake:        make(chan struct{}, 1),
		instruments: make(map[string]*instrument),
		sessions:    make(map[*session]map[*instrument]struct{}),
		snapCache:   make(map[snapKey][]byte),
		enc:         make([][]byte, h.cfg.Market.NumStreams()),
		log:         h.log,
	}
}

// tickInterval is how often an owner with parked resumes or deferred snapshots wakes for them:
// a parked resume is answered at most this late past its deadline, and a deferred snapshot at
// most this late after its budget holds it.
const tickInterval = 100 * time.Millisecond

// startTicker starts the ticker that wakes the owner for parked resumes and deferred snapshots,
// unless it runs; run stops it once neither waits.
func (o *owner) startTicker() {
	if o.ticker == nil {
		o.ticker = time.NewTicker(tickInterval)
	}
}

// post queues a command without blocking.
func (o *owner) post(c command) {
	o.mu.Lock()
	o.mailbox = append(o.mailbox, c)
	o.mu.Unlock()
	select {
	case o.wake <- struct{}{}:
	default:
	}
}

func (o *owner) run(quit <-chan struct{}) {
	var cmds []command
	defer func() {
		if o.ticker != nil {
			o.ticker.Stop()
		}
	}()
	for {
		var tick <-chan time.Time // nil, blocking, unless a resume is parked or a snapshot deferred
		if o.ticker != nil {
			if len(o.parked) == 0 && len(o.deferred) == 0 && len(o.throttled) == 0 {
				o.ticker.Stop()
				o.ticker = nil
			} else {
				tick = o.ticker.C
			}
		}
		select {
		case <-quit:
			return
		case <-tick:
			now := time.Now()
			o.releaseParked(now)
			o.releaseDeferred(now)
			o.releaseThrottled(now)
		case ev := <-o.events:
			o.apply(ev)
			if len(o.parked) > 0 {
				o.releaseParked(time.Now())
			}
		case <-o.wake:
			// Events already queued come first: a command (a subscribe, a resume) must be
			// answered from the state after every event the feed has taken in, or a feed that
			// just caught up with the store would answer from the past (a snapshot older than
			// a resuming client's position, then deltas it already had).
			for n := len(o.events); n > 0; n-- {
				o.apply(<-o.events)
			}
			o.mu.Lock()
			cmds, o.mailbox = o.mailbox, cmds[:0]
			o.mu.Unlock()
			for i := range cmds {
				o.handle(&cmds[i])
			}
			clear(cmds)
		}
	}
}

func (o *owner) apply(ev *pb.Event) {
	m := o.hub.metrics
	in := o.instruments[ev.Instrument]
	if in == nil {
		if err := wire.CheckInstrumentID(ev.Instrument); err != nil {
			m.eventsRejected.WithLabelValues("bad_instrument").Inc()
			return
		}
		in = o.addInstrument(ev.Instrument, market.NewState(ev.Instrument, o.hub.cfg.Market))
	}
	wasSynced := in.st.BookSynced()
	res, err := in.st.Apply(ev)
	if err != nil {
		reason := "bad_event"
		if errors.Is(err, market.ErrStaleEvent) {
			reason = "stale"
		}
		m.eventsRejected.WithLabelValues(reason).Inc()
		o.log.Debug("event not applied", "instrument", ev.Instrument, "err", err)
		return
	}
	m.events.Inc()
	if ev.IngestTimeNs > 0 {
		m.ingestToFeed.Observe(float64(time.Now().UnixNano()-ev.IngestTimeNs) / 1e9)
	}
	if res.Gap {
		m.gaps.WithLabelValues(m.gapLabels.of(ev.Instrument)).Inc()
	}
	if info, ok := ev.Body.(*pb.Event_Info); ok {
		// The first reference data goes to subscribers too: one that subscribed before it
		// (a wait, a venue wildcard, a feed starting mid-stream) holds an id-only InstrumentInfo.
		if first, changed := o.hub.setInfo(ev.Instrument, info.Info); first || changed {
			o.announceInfo(in, info.Info)
			o.announceListing(in, info.Info)
		}
	}
	clear(o.snapCache)
	enc := o.enc[:len(in.streams)]
	clear(enc)
	o.remember(in, res, enc)
	if res.NewEpoch {
		for stream, subs := range in.streams {
			for _, s := range subs {
				o.snapshot(in, s, stream, pb.SnapshotReason_SNAPSHOT_REASON_NEW_EPOCH)
			}
		}
		return
	}
	if in.pending > 0 {
		o.retryPending(in)
	}
	if !in.st.BookSynced() {
		if wasSynced {
			o.bookBroke(in) // the book stops: say so at once, rather than look live
		}
		o.askSnapshot(in)
	}
	o.deliver(in, market.StreamQuote, res.Quote, enc[market.StreamQuote], res)
	o.deliver(in, market.StreamTrades, res.Trades, enc[market.StreamTrades], nil)
	o.deliver(in, market.StreamCandles, res.Candles, enc[market.StreamCandles], nil)
	o.deliver(in, market.StreamStats, res.Stats, enc[market.StreamStats], nil)
	if res.BookReset {
		var now time.Time
		for i := range o.hub.cfg.Market.Depths {
			for _, s := range in.streams[market.StreamBook0+i] {
				if s.interval > 0 && !s.pending && s.deferred == 0 {
					if now.IsZero() {
						now = time.Now()
					}
					o.throttle(in, s, now) // a new book is a change like any other
					continue
				}
				reason := pb.SnapshotReason_SNAPSHOT_REASON_RESYNC
				switch {
				case s.pending:
					reason = pb.SnapshotReason_SNAPSHOT_REASON_SUBSCRIBE
				case s.deferred != 0:
					reason = s.deferred // answered now, free: the server sends it anyway
				}
				o.snapshot(in, s, market.StreamBook0+i, reason)
			}
		}
		return
	}
	for i, d := range res.Book {
		o.deliver(in, market.StreamBook0+i, d, enc[market.StreamBook0+i], nil)
	}
}

// announceInfo tells every session subscribed to in that its reference data changed: one
// InstrumentUpdate per session, encoded once per format, queued in order with the deltas.
func (o *owner) announceInfo(in *instrument, info *pb.InstrumentInfo) {
	update := controlMessage{m: &pb.ServerMessage{Kind: &pb.ServerMessage_InstrumentUpdate{InstrumentUpdate: &pb.InstrumentUpdate{
		Handle: in.handle, Info: info}}}}
	for sess, subs := range in.bySess {
		if len(subs) > 0 { // else unsubscribed from every channel
			update.queue(o.log, sess)
		}
	}
}

// announceListing tells the ListInstruments.watch connections entitled to the instrument of
// its first reference data (a new listing) or a change of it; one that holds the instrument
// already got it as a subscriber (announceInfo). Encoded once per format.
func (o *owner) announceListing(in *instrument, info *pb.InstrumentInfo) {
	listeners := o.hub.listening()
	if listeners == nil {
		return
	}
	update := controlMessage{m: &pb.ServerMessage{Kind: &pb.ServerMessage_InstrumentUpdate{InstrumentUpdate: &pb.InstrumentUpdate{
		Handle: in.handle, Info: info}}}}
	for _, sess := range listeners {
		if len(in.bySess[sess]) > 0 {
			continue
		}
		if c := sess.auth.live.Load(); c == nil || !c.ent.Instrument(info.Id) {
			continue // what a token may not see is not listed to it either
		}
		update.queue(o.log, sess)
	}
}

// controlMessage is one control message queued to many connections, encoded at most once per
// subprotocol.
type controlMessage struct {
	m   *pb.ServerMessage
	enc [2][]byte // binary, JSON
}

// queue queues the message to sess's connection, encoding it first for its subprotocol if no
// connection of that subprotocol had it yet. An unencodable message (a bug, logged) is skipped.
func (c *controlMessage) queue(log *slog.Logger, sess *session) {
	i := 0
	if sess.json {
		i = 1
	}
	if c.enc[i] == nil {
		if c.enc[i] = encode(log, c.m, sess.json); c.enc[i] == nil {
			return
		}
	}
	sess.out.Enqueue(c.enc[i], fanout.Control, 0)
}

// remember stamps the event's deltas with the instrument's handle, encodes each once and keeps
// them for resumes. enc[stream] is the encoding of the stream's delta, nil if it has none.
func (o *owner) remember(in *instrument, res *market.Result, enc [][]byte) {
	before := in.hist.bytes
	if res.NewEpoch {
		in.hist.reset()
	}
	keep := func(stream int, d *pb.Delta) {
		if d == nil {
			return
		}
		d.Handle = in.handle
		enc[stream] = encodeDelta(d)
		in.hist.push(stream, d, enc[stream])
	}
	for i, d := range [...]*pb.Delta{res.Quote, res.Trades, res.Candles, res.Stats} {
		keep(market.StreamQuote+i, d)
	}
	for i, d := range res.Book {
		keep(market.StreamBook0+i, d)
	}
	if d := in.hist.bytes - before; d != 0 {
		o.histBytes.Add(int64(d))
	}
}

// deliver sends one delta to every subscriber of a stream: bin, its binary encoding, to
// protobuf connections, and its JSON encoding, made once, to JSON ones. For the quote stream
// res is the event's result, whose compact form, made once, goes to the compact subscribers
// that hold this feed's previous update.
func (o *owner) deliver(in *instrument, stream int, d *pb.Delta, bin []byte, res *market.Result) {
	subs := in.streams[stream]
	if d == nil || len(subs) == 0 {
		return
	}
	var js, cq []byte
	var now time.Time
	for _, s := range subs {
		if s.pending || s.deferred != 0 {
			continue
		}
		if s.interval > 0 {
			if now.IsZero() {
				now = time.Now()
			}
			o.throttle(in, s, now)
			continue
		}
		out := s.sess.out
		b := bin
		switch {
		case out.JSON():
			if js == nil {
				js = o.encode(&pb.ServerMessage{Kind: &pb.ServerMessage_Delta{Delta: d}}, true)
			}
			b = js
		case s.compact && s.based && res != nil:
			if cq == nil && res.CompactQuote(&o.compact) {
				cq = wire.AppendCompactQuoteMessage(make([]byte, 0, 32), &o.compact)
			}
			if cq != nil {
				b = cq
			}
		}
		switch out.Enqueue(b, fanout.Delta, s.gen) {
		case fanout.Stale, fanout.Conflated:
			// The connection dropped what it had queued: this stream starts again from a
			// snapshot that already holds this delta.
			o.snapshot(in, s, stream, pb.SnapshotReason_SNAPSHOT_REASON_CONFLATED)
		case fanout.Queued:
			s.based = true
		case fanout.Closed:
		}
	}
}

// awaitingBook is why a book stream waits for a snapshot.
const awaitingBook = "the feed's copy of this book is not whole (it missed an event, or joined the stream midway): no deltas until a snapshot makes it whole"

// askSnapshotEvery bounds how often one owner asks ingest for a snapshot of one instrument.
const askSnapshotEvery = time.Second

func (o *owner) encode(m *pb.ServerMessage, json bool) []byte { return encode(o.log, m, json) }

// jsonOf re-encodes a binary server message kept in history for a JSON connection. The kept
// bytes are a ServerFrame messages entry (wire.AppendMessage), so they decode as a frame.
func (o *owner) jsonOf(bin []byte) []byte {
	var f pb.ServerFrame
	if err := proto.Unmarshal(bin, &f); err != nil || len(f.Messages) != 1 {
		o.log.Error("decode kept server message", "err", err, "messages", len(f.Messages))
		return nil
	}
	return o.encode(f.Messages[0], true)
}

// encode encodes a server message for a connection's subprotocol. Only a bug can make a generated
// message unencodable: it is logged loudly and nothing is sent.
func encode(log *slog.Logger, m *pb.ServerMessage, json bool) []byte {
	b, err := wire.EncodeMessage(m, json)
	if err != nil {
		log.Error("encode server message", "err", err)
		return nil
	}
	return b
}
