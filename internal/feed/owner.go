package feed

import (
	"errors"
	"log/slog"
	"sync"
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
	done       chan struct{}                  // Barrier: closed when handled
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
	cmdConflated // the session's queue was conflated: snapshot its stale streams
	cmdClosed    // the session is gone: drop its subscriptions
	cmdBarrier   // close done: every event dispatched before the command has been applied
)

// owner owns a shard of instruments: it alone applies their events and serves their
// subscriptions, so a snapshot at seq N is followed by exactly the deltas after N.
type owner struct {
	hub    *Hub
	events chan *pb.Event // bounded: a full queue holds back the NATS consumer

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
		in = &instrument{st: market.NewState(ev.Instrument, o.hub.cfg.Market), bySess: make(map[*session][]*sub),
			hist: newDeltaHistory(o.hub.cfg.ResumeHistory)}
		in.streams = make([][]*sub, o.hub.cfg.Market.NumStreams())
		in.handle = o.hub.register(ev.Instrument)
		o.instruments[ev.Instrument] = in
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
		first, changed := o.hub.setInfo(ev.Instrument, info.Info)
		if changed {
			o.announceInfo(in, info.Info)
		}
		if first || changed {
			o.announceListing(in, info.Info, changed)
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
// already got the change as a subscriber (announceInfo). Encoded once per format.
func (o *owner) announceListing(in *instrument, info *pb.InstrumentInfo, changed bool) {
	listeners := o.hub.listening()
	if listeners == nil {
		return
	}
	update := controlMessage{m: &pb.ServerMessage{Kind: &pb.ServerMessage_InstrumentUpdate{InstrumentUpdate: &pb.InstrumentUpdate{
		Handle: in.handle, Info: info}}}}
	for _, sess := range listeners {
		if changed && len(in.bySess[sess]) > 0 {
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

// retryPending sends a first snapshot to subscribers that had none because the instrument had
// no state yet (its first event was rejected, say). Book subscribers wait for BookReset instead.
func (o *owner) retryPending(in *instrument) {
	var now time.Time
	for stream, subs := range in.streams {
		if stream >= market.StreamBook0 {
			continue
		}
		for _, s := range subs {
			if s.pending {
				if now.IsZero() {
					now = time.Now()
				}
				o.request(in, s, pb.SnapshotReason_SNAPSHOT_REASON_SUBSCRIBE, now)
			}
		}
	}
}

// remember stamps the event's deltas with the instrument's handle, encodes each once and keeps
// them for resumes. enc[stream] is the encoding of the stream's delta, nil if it has none.
func (o *owner) remember(in *instrument, res *market.Result, enc [][]byte) {
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

// snapshot queues a fresh snapshot of one stream for one subscriber, at the connection's
// current generation, outside its snapshot budget: for snapshots the server sends on its own. A
// book that is not whole leaves the subscriber pending.
func (o *owner) snapshot(in *instrument, s *sub, stream int, reason pb.SnapshotReason) {
	if b := o.snapshotBytes(in, s, stream, reason); b != nil {
		o.queueSnapshot(in, s, b, reason)
	}
}

// snapshotBytes returns a stream's snapshot encoded for s's connection, encoded once per
// stream, reason and format between two changes of the state; nil if there is none: a book
// that is not whole leaves the subscriber pending.
func (o *owner) snapshotBytes(in *instrument, s *sub, stream int, reason pb.SnapshotReason) []byte {
	key := snapKey{in: in, stream: stream, reason: reason, json: s.sess.out.JSON()}
	if b, ok := o.snapCache[key]; ok {
		return b
	}
	snap := in.st.Snapshot(s.ch, max(stream-market.StreamBook0, 0), reason)
	if snap == nil {
		if !s.pending {
			s.pending = true
			in.pending++
		}
		return nil
	}
	snap.Handle = in.handle
	b := o.encode(&pb.ServerMessage{Kind: &pb.ServerMessage_Snapshot{Snapshot: snap}}, key.json)
	o.snapCache[key] = b
	return b
}

// queueSnapshot queues an encoded snapshot of s's stream at the connection's current generation.
func (o *owner) queueSnapshot(in *instrument, s *sub, b []byte, reason pb.SnapshotReason) {
	out := s.sess.out
	gen := out.Gen()
	if out.Enqueue(b, fanout.Snapshot, gen) == fanout.Queued {
		s.gen = gen
		s.based = true
		if s.interval > 0 { // whatever the reason, the stream's next update waits its interval
			s.next = time.Now().Add(s.interval)
			s.dirty = false
		}
		s.deferred = 0 // a deferred one has nothing left to add
		if s.pending {
			s.pending = false
			in.pending--
		}
		o.hub.metrics.snapshots.WithLabelValues(reasonLabel(reason)).Inc()
	}
	// Otherwise the generation moved on again (a cmdConflated follows) or the connection
	// closed (a cmdClosed follows).
}

// request answers a client's ask for a stream's snapshot (Subscribe, Resync) within its
// connection's snapshot budget (Config.SnapshotRate): the snapshot is queued now if the budget
// holds its encoded bytes, which are charged, or else deferred until it does (releaseDeferred).
// A stream whose snapshot waits already keeps that one: asking again adds nothing, and it will
// carry the state of when it goes. So a client asking in a loop gets the budget's rate in
// snapshots, and costs an encoding per stream per deferral, not one per command.
func (o *owner) request(in *instrument, s *sub, reason pb.SnapshotReason, now time.Time) {
	if s.deferred != 0 {
		return
	}
	if s.interval > 0 && reason == pb.SnapshotReason_SNAPSHOT_REASON_RESYNC && now.Before(s.next) {
		// A resync does not beat the rate tier: the latest state goes when the interval is up.
		o.markDirty(in, s)
		return
	}
	b := o.snapshotBytes(in, s, s.stream, reason)
	if b == nil {
		return // pending (or unencodable, logged): a book's snapshot comes when it is whole
	}
	if !s.sess.snaps.take(now, len(b), o.hub.cfg.snapshotLimits()) {
		s.deferred, s.need = reason, len(b)
		o.deferred = append(o.deferred, deferral{in: in, s: s})
		o.hub.metrics.snapsDeferred.WithLabelValues(askedBy(reason)).Inc()
		o.startTicker()
		return
	}
	o.queueSnapshot(in, s, b, reason)
}

// askedBy labels a requested snapshot by the command that asked for it.
func askedBy(reason pb.SnapshotReason) string {
	if reason == pb.SnapshotReason_SNAPSHOT_REASON_RESYNC {
		return "resync"
	}
	return "subscribe" // SUBSCRIBE, or HISTORY_GONE or NEW_EPOCH for a resume
}

// releaseDeferred queues the deferred snapshots whose session's budget now holds them, oldest
// first, and forgets those answered meanwhile (by a snapshot the server sent on its own) or
// unsubscribed. The snapshot cache is current: it is cleared at every change of the state.
func (o *owner) releaseDeferred(now time.Time) {
	if len(o.deferred) == 0 {
		return
	}
	limits := o.hub.cfg.snapshotLimits()
	kept := o.deferred[:0]
	for _, d := range o.deferred {
		s := d.s
		if s.deferred == 0 {
			continue
		}
		if !s.sess.snaps.holds(now, s.need, limits) {
			kept = append(kept, d)
			continue
		}
		reason := s.deferred
		b := o.snapshotBytes(d.in, s, s.stream, reason)
		if b != nil && !s.sess.snaps.take(now, len(b), limits) {
			s.need = len(b) // it grew since
			kept = append(kept, d)
			continue
		}
		// Answered whatever becomes of it: pending (sent when the book is whole), queued, or
		// refused as stale by the connection (the cmdConflated that follows sends it).
		s.deferred = 0
		if b != nil {
			o.queueSnapshot(d.in, s, b, reason)
		}
	}
	clear(o.deferred[len(kept):])
	o.deferred = kept
}

// awaitingBook is why a book stream waits for a snapshot.
const awaitingBook = "the feed's copy of this book is not whole (it missed an event, or joined the stream midway): no deltas until a snapshot makes it whole"

// bookBroke tells the instrument's book subscribers that their stream stopped: the feed's copy of
// the book broke (it missed an event), and no delta comes until the RESYNC snapshot that heals it.
func (o *owner) bookBroke(in *instrument) {
	var subs []*sub
	for i := range o.hub.cfg.Market.Depths {
		for _, s := range in.streams[market.StreamBook0+i] {
			if !s.pending {
				subs = append(subs, s)
			}
		}
	}
	o.sendStatus(in, subs, awaitingBook)
}

// sendStatus sends AWAITING_SNAPSHOT for the book to subs, encoded once per format.
func (o *owner) sendStatus(in *instrument, subs []*sub, reason string) {
	if len(subs) == 0 {
		return
	}
	o.hub.metrics.bookWaits.Inc()
	status := controlMessage{m: &pb.ServerMessage{Kind: &pb.ServerMessage_StreamStatus{StreamStatus: &pb.StreamStatus{Handle: in.handle,
		Channel: pb.Channel_CHANNEL_BOOK, State: pb.StreamState_STREAM_STATE_AWAITING_SNAPSHOT, Reason: reason}}}}
	for _, s := range subs {
		status.queue(o.log, s.sess)
	}
}

// askSnapshotEvery bounds how often one owner asks ingest for a snapshot of one instrument.
const askSnapshotEvery = time.Second

// askSnapshot asks ingest for a fresh snapshot of the instrument's book, when someone is
// subscribed to it and it was not asked within askSnapshotEvery (a request may be lost, or
// ingest down: it is asked again on a later event). Without a snapshot source (tests,
// embedding) nothing is asked and the book heals at the source's next snapshot.
func (o *owner) askSnapshot(in *instrument) {
	ask := o.hub.snapshots.Load()
	if ask == nil || !o.hasBookSubscribers(in) {
		return
	}
	now := time.Now()
	if now.Sub(in.askedAt) < askSnapshotEvery {
		return
	}
	in.askedAt = now
	if err := (*ask)(in.st.ID()); err != nil {
		o.log.Debug("snapshot request not sent", "instrument", in.st.ID(), "err", err)
	}
}

func (o *owner) hasBookSubscribers(in *instrument) bool {
	for i := range o.hub.cfg.Market.Depths {
		if len(in.streams[market.StreamBook0+i]) > 0 {
			return true
		}
	}
	return false
}

// throttle serves a change of a rate-limited stream (sub.interval): a RATE_LIMITED snapshot of
// the latest state now if the interval since the last one is up, else the stream is marked and
// the snapshot goes when it is (releaseThrottled). Never a queue of deltas: however many changes
// come within an interval, one snapshot of the state at its end carries them.
func (o *owner) throttle(in *instrument, s *sub, now time.Time) {
	if now.Before(s.next) {
		o.markDirty(in, s)
		return
	}
	s.dirty = false
	o.snapshot(in, s, s.stream, pb.SnapshotReason_SNAPSHOT_REASON_RATE_LIMITED)
}

// markDirty notes that a rate-limited stream has a change waiting for its interval.
func (o *owner) markDirty(in *instrument, s *sub) {
	s.dirty = true
	if !s.listed {
		s.listed = true
		o.throttled = append(o.throttled, throttled{in: in, s: s})
		o.startTicker()
	}
}

// releaseThrottled sends the waiting changes of rate-limited streams whose interval is up (at
// most a tick late), and forgets the streams answered meanwhile or unsubscribed.
func (o *owner) releaseThrottled(now time.Time) {
	if len(o.throttled) == 0 {
		return
	}
	kept := o.throttled[:0]
	for _, t := range o.throttled {
		s := t.s
		switch {
		case !s.dirty, s.pending, s.deferred != 0:
			// Answered meanwhile, unsubscribed, or waiting for a snapshot that will carry the
			// latest state when it goes.
			s.listed, s.dirty = false, false
		case now.Before(s.next):
			kept = append(kept, t)
		default:
			s.listed, s.dirty = false, false
			o.snapshot(t.in, s, s.stream, pb.SnapshotReason_SNAPSHOT_REASON_RATE_LIMITED)
		}
	}
	clear(o.throttled[len(kept):])
	o.throttled = kept
}

func reasonLabel(r pb.SnapshotReason) string {
	switch r {
	case pb.SnapshotReason_SNAPSHOT_REASON_SUBSCRIBE:
		return "subscribe"
	case pb.SnapshotReason_SNAPSHOT_REASON_RESYNC:
		return "resync"
	case pb.SnapshotReason_SNAPSHOT_REASON_CONFLATED:
		return "conflated"
	case pb.SnapshotReason_SNAPSHOT_REASON_NEW_EPOCH:
		return "new_epoch"
	case pb.SnapshotReason_SNAPSHOT_REASON_RATE_LIMITED:
		return "rate_limited"
	case pb.SnapshotReason_SNAPSHOT_REASON_HISTORY_GONE:
		return "history_gone"
	}
	return "unspecified"
}

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

func (o *owner) handle(c *command) {
	clear(o.snapCache) // snapshots now reflect the state after the last event
	switch c.kind {
	case cmdSubscribe:
		o.subscribe(c)
	case cmdUnsubscribe:
		o.unsubscribe(c)
	case cmdResync:
		in := o.instruments[c.instrument]
		if in == nil {
			return
		}
		now := time.Now()
		for _, s := range in.bySess[c.sess] {
			if len(c.channels) == 0 || containsChannel(c.channels, s.ch) {
				o.request(in, s, pb.SnapshotReason_SNAPSHOT_REASON_RESYNC, now)
			}
		}
	case cmdConflated:
		gen := c.sess.out.Gen()
		for in := range o.sessions[c.sess] {
			for _, s := range in.bySess[c.sess] {
				if s.gen != gen && !s.pending && s.deferred == 0 { // a deferred one goes at its gen
					o.snapshot(in, s, s.stream, pb.SnapshotReason_SNAPSHOT_REASON_CONFLATED)
				}
			}
		}
	case cmdBarrier:
		close(c.done) // the events queued before it were applied first (see run)
	case cmdClosed:
		o.unpark(c.sess, "", nil)
		for in := range o.sessions[c.sess] {
			o.removeSubs(in, c.sess, nil)
		}
		delete(o.sessions, c.sess)
	}
}

func containsChannel(chans []pb.Channel, ch pb.Channel) bool {
	for _, c := range chans {
		if c == ch {
			return true
		}
	}
	return false
}

func (o *owner) subscribe(c *command) {
	in := o.instruments[c.instrument]
	if in == nil {
		c.sess.sendError(c.reqID, pb.ErrorCode_ERROR_CODE_UNKNOWN_INSTRUMENT, "unknown instrument", c.instrument)
		return
	}
	o.unpark(c.sess, c.instrument, nil) // a repeated subscribe replaces one still waiting
	if o.parkFuture(in, c) {
		return
	}
	o.removeSubs(in, c.sess, c.channels) // a repeated subscribe replaces (a new depth, say)
	depth := uint32(0)
	var subs []*sub
	for _, ch := range c.channels {
		s := &sub{sess: c.sess, ch: ch, stream: market.StreamOf(ch, c.depthIndex),
			compact: c.compact && ch == pb.Channel_CHANNEL_QUOTE && c.interval == 0, interval: c.interval}
		if ch == pb.Channel_CHANNEL_BOOK {
			depth = o.hub.cfg.Market.Depths[c.depthIndex]
		}
		s.idx = len(in.streams[s.stream])
		in.streams[s.stream] = append(in.streams[s.stream], s)
		in.bySess[c.sess] = append(in.bySess[c.sess], s)
		subs = append(subs, s)
	}
	if o.sessions[c.sess] == nil {
		o.sessions[c.sess] = make(map[*instrument]struct{})
	}
	o.sessions[c.sess][in] = struct{}{}
	info := in.st.Info()
	if info == nil { // no reference data yet (feed started between checkpoints): the id at least
		info = &pb.InstrumentInfo{Id: c.instrument}
	}
	// Work out which streams resume from the client's position before saying anything.
	type resumed struct {
		s      *sub
		deltas [][]byte // binary ServerMessages
	}
	var resumes []resumed
	var resumedChans []pb.Channel
	reasons := make(map[*sub]pb.SnapshotReason, len(subs))
	epoch, seq := in.st.Position()
	for _, s := range subs {
		reasons[s] = pb.SnapshotReason_SNAPSHOT_REASON_SUBSCRIBE
		pos, asked := c.resume[s.ch]
		if !asked {
			continue
		}
		switch {
		case pos.Epoch != epoch:
			reasons[s] = pb.SnapshotReason_SNAPSHOT_REASON_NEW_EPOCH
		case pos.Seq > seq, s.ch == pb.Channel_CHANNEL_BOOK && !in.st.BookSynced():
			// A position from the future is from another history; an unsynced book has no deltas.
			reasons[s] = pb.SnapshotReason_SNAPSHOT_REASON_HISTORY_GONE
		default:
			deltas, ok := in.hist.since(s.stream, pos.Seq, in.st.LastDeltaSeq(s.stream))
			if !ok {
				reasons[s] = pb.SnapshotReason_SNAPSHOT_REASON_HISTORY_GONE
				break
			}
			delete(reasons, s)
			resumes = append(resumes, resumed{s, deltas})
			resumedChans = append(resumedChans, s.ch)
		}
		if _, gone := reasons[s]; gone {
			o.hub.metrics.resumes.WithLabelValues("snapshot").Inc()
		} else {
			o.hub.metrics.resumes.WithLabelValues("resumed").Inc()
		}
	}
	c.sess.sendControl(&pb.ServerMessage{Kind: &pb.ServerMessage_Subscribed{Subscribed: &pb.Subscribed{
		RequestId: c.reqID, Handle: in.handle, Info: info, Channels: c.channels, Depth: depth,
		TradeHistory: uint32(o.hub.cfg.Market.TradeHistory), CandleHistory: uint32(o.hub.cfg.Market.CandleHistory),
		Resumed: resumedChans, UpdateIntervalMs: uint32(c.interval / time.Millisecond),
		DelayMs: uint64(o.hub.delay / time.Millisecond)}}})
	now := time.Now()
	for _, s := range subs {
		if reason, ok := reasons[s]; ok {
			o.request(in, s, reason, now)
		}
		if s.pending && s.ch == pb.Channel_CHANNEL_BOOK {
			o.sendStatus(in, []*sub{s}, awaitingBook)
			o.askSnapshot(in)
		}
	}
	for _, r := range resumes {
		out := r.s.sess.out
		r.s.gen = out.Gen()
		for _, b := range r.deltas {
			if r.s.sess.json {
				if b = o.jsonOf(b); b == nil {
					continue // logged; the client sees the gap and resyncs
				}
			}
			switch out.Enqueue(b, fanout.Delta, r.s.gen) {
			case fanout.Stale, fanout.Conflated:
				o.snapshot(in, r.s, r.s.stream, pb.SnapshotReason_SNAPSHOT_REASON_CONFLATED)
			case fanout.Queued:
				r.s.based = true // this feed's latest delta of the stream is the last one here
				continue
			case fanout.Closed:
			}
			break
		}
	}
}

// parkFuture holds a resume from positions of the instrument's current epoch that this feed
// has not reached yet: the client comes from a replica that is ahead. Answered now it would get a
// HISTORY_GONE snapshot older than what it holds, then deltas it already had; held, it is
// answered (resumed, no snapshot) once the instrument gets there, or after ResumeWait as before.
func (o *owner) parkFuture(in *instrument, c *command) bool {
	if c.waited || o.hub.cfg.ResumeWait < 0 || !aheadOf(in, c) {
		return false
	}
	o.parked = append(o.parked, parked{cmd: *c, until: time.Now().Add(o.hub.cfg.ResumeWait)})
	o.startTicker() // for the deadline
	return true
}

// aheadOf reports whether any of c's resume positions is in in's current epoch but past its
// position.
func aheadOf(in *instrument, c *command) bool {
	epoch, seq := in.st.Position()
	for _, ch := range c.channels {
		if pos, ok := c.resume[ch]; ok && pos.Epoch == epoch && pos.Seq > seq {
			return true
		}
	}
	return false
}

// releaseParked answers the parked resumes whose instrument reached their positions (or left
// their epoch), and those that waited long enough.
func (o *owner) releaseParked(now time.Time) {
	kept := o.parked[:0]
	var due []command
	for _, p := range o.parked {
		in := o.instruments[p.cmd.instrument]
		if in == nil || now.After(p.until) || !aheadOf(in, &p.cmd) {
			p.cmd.waited = true
			due = append(due, p.cmd)
		} else {
			kept = append(kept, p)
		}
	}
	clear(o.parked[len(kept):])
	o.parked = kept
	for i := range due {
		o.handle(&due[i])
	}
}

// unpark drops the given channels (all if chans is nil) from sess's parked resumes of
// instrument (every instrument if instrument is ""), and a resume left without channels.
func (o *owner) unpark(sess *session, instrument string, chans []pb.Channel) {
	if len(o.parked) == 0 {
		return
	}
	kept := o.parked[:0]
	for _, p := range o.parked {
		if p.cmd.sess == sess && (instrument == "" || p.cmd.instrument == instrument) {
			if chans == nil {
				continue
			}
			var left []pb.Channel
			for _, ch := range p.cmd.channels {
				if !containsChannel(chans, ch) {
					left = append(left, ch)
				}
			}
			if len(left) == 0 {
				continue
			}
			p.cmd.channels = left
		}
		kept = append(kept, p)
	}
	clear(o.parked[len(kept):])
	o.parked = kept
}

func (o *owner) unsubscribe(c *command) {
	o.unpark(c.sess, c.instrument, c.channels)
	in := o.instruments[c.instrument]
	if in == nil {
		return
	}
	removed := o.removeSubs(in, c.sess, c.channels)
	if len(in.bySess[c.sess]) == 0 {
		delete(o.sessions[c.sess], in)
	}
	c.sess.sendControl(&pb.ServerMessage{Kind: &pb.ServerMessage_Unsubscribed{Unsubscribed: &pb.Unsubscribed{
		RequestId: c.reqID, Handle: in.handle, Channels: removed}}})
}

// removeSubs removes the session's subscriptions to the given channels of in (all if chans is
// nil) and returns the channels removed.
func (o *owner) removeSubs(in *instrument, sess *session, chans []pb.Channel) []pb.Channel {
	var removed []pb.Channel
	kept := in.bySess[sess][:0]
	for _, s := range in.bySess[sess] {
		if chans != nil && !containsChannel(chans, s.ch) {
			kept = append(kept, s)
			continue
		}
		if s.pending {
			in.pending--
		}
		s.deferred = 0  // its entry in owner.deferred is dropped at the next release
		s.dirty = false // and its entry in owner.throttled
		list := in.streams[s.stream]
		last := list[len(list)-1]
		list[s.idx] = last
		last.idx = s.idx
		list[len(list)-1] = nil
		in.streams[s.stream] = list[:len(list)-1]
		removed = append(removed, s.ch)
	}
	if len(kept) == 0 {
		delete(in.bySess, sess)
	} else {
		in.bySess[sess] = kept
	}
	return removed
}
