package replay

import (
	"slices"

	"google.golang.org/protobuf/proto"

	"github.com/tickwire/tickwire/pkg/market"
	tickwirev1 "github.com/tickwire/tickwire/pkg/proto/tickwire/v1"
)

// cursor is the pure core of a replay generation: it takes stored events in stream order,
// starting some time before the target, and yields the session's events. It does no I/O and
// keeps no clock; the runner paces what it yields. Not safe for concurrent use.
//
// Before the window opens, events only build each instrument's market.State (fast-forward).
// The window opens at the first event at or after target (or at the end of input): every
// instrument whose state is ready (reference data, and a whole book if it has a book) starts
// its chain with an InstrumentInfo and a full book snapshot at target. From then on each event
// is applied and, if its instrument's chain is running, re-stamped (session epoch, next seq)
// and yielded as is. An instrument that is not ready, or whose stored chain breaks (a new
// epoch or a gap), yields nothing until its state is ready again, then restarts its chain in
// place with InstrumentInfo and snapshot at that event's time, so every chain stays gapless.
// An instrument's first event after `to` ends it.
type cursor struct {
	target, to int64 // Unix ns
	epoch      uint64
	open       bool
	insts      map[string]*instCursor
	rejected   uint64 // events State.Apply refused
	lastTime   int64  // EventTime of the last event fed
	// statsAt, if not 0, is the window's start: the session statistics count from there
	// (states forget theirs at the first event at or after it), and each chain starts with
	// them. 0: the read did not cover the window's start; chains carry no statistics.
	statsAt int64
	forgot  bool // the states forgot their statistics at statsAt
}

type instCursor struct {
	st      *market.State
	started bool   // the chain has begun (history trades are sent once, at its beginning)
	sawBook bool   // a book event was applied in the state's current epoch
	seq     uint64 // last session seq yielded
	running bool   // the chain has started and follows the stored events
	done    bool   // passed `to`
}

func newCursor(target, to int64, epoch uint64) *cursor {
	return &cursor{target: target, to: to, epoch: epoch, insts: map[string]*instCursor{}}
}

// statsFrom makes the chains carry the session statistics counted from from (the window's
// start; the events fed must begin before it).
func (c *cursor) statsFrom(from int64) { c.statsAt = from }

// ready reports whether the instrument can start a chain: it has reference data and either a
// whole book or no book at all so far in this epoch.
func (ic *instCursor) ready() bool {
	return ic.st.Info() != nil && (ic.st.BookSynced() || !ic.sawBook)
}

// feed takes one stored event and appends the session events it yields to out.
func (c *cursor) feed(ev *tickwirev1.Event, out []*tickwirev1.Event) []*tickwirev1.Event {
	t := EventTime(ev)
	c.lastTime = t
	if c.statsAt != 0 && !c.forgot && t >= c.statsAt {
		// The window starts: statistics count from here, as for a session played from it.
		c.forgot = true
		for _, ic := range c.insts {
			ic.st.ForgetStats()
		}
	}
	if !c.open && t >= c.target {
		out = c.openWindow(out)
	}
	ic := c.insts[ev.GetInstrument()]
	if ic == nil {
		ic = &instCursor{st: market.NewState(ev.GetInstrument(), market.Config{})}
		c.insts[ev.GetInstrument()] = ic
	}
	if ic.done {
		return out
	}
	if c.open && t > c.to {
		ic.done, ic.running = true, false
		return out
	}
	res, err := ic.st.Apply(ev)
	if err != nil {
		c.rejected++
		return out
	}
	if res.NewEpoch {
		ic.sawBook = false
	}
	if ev.GetBook() != nil {
		ic.sawBook = true
	}
	if !c.open {
		return out
	}
	if ic.running && (res.NewEpoch || res.Gap) {
		ic.running = false // the stored chain broke: restart ours from the next whole state
	}
	if ic.running {
		ev.Epoch = c.epoch
		ic.seq++
		ev.Seq = ic.seq
		return append(out, ev)
	}
	if ic.ready() {
		out = c.start(ic, t, out)
	}
	return out
}

// finish is called at the end of input: it opens the window if no event reached it, so the
// state at the target is still published.
func (c *cursor) finish(out []*tickwirev1.Event) []*tickwirev1.Event {
	if !c.open {
		out = c.openWindow(out)
	}
	return out
}

// openWindow starts the chain of every ready instrument, in instrument order.
func (c *cursor) openWindow(out []*tickwirev1.Event) []*tickwirev1.Event {
	c.open = true
	ids := make([]string, 0, len(c.insts))
	for id := range c.insts {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids {
		if ic := c.insts[id]; ic.ready() {
			out = c.start(ic, c.target, out)
		}
	}
	return out
}

// start yields the instrument's InstrumentInfo and full book snapshot at time t and marks its
// chain running. The first time, it also yields the trades the state holds from before t (the
// lookback's, at most market.Config.TradeHistory) as history trades (Trade.history), so a page
// that joins the session, or watches it after a seek, has the tape and the last price at once;
// history trades do not count in candles or stats (PROTOCOL.md §8.3), which a page takes from
// /api/candles up to the replay clock. Then, when the read covered the window's start
// (statsFrom), the session statistics of what was replayed before t, which a feed adopts when
// it has none (a page joining mid-way).
func (c *cursor) start(ic *instCursor, t int64, out []*tickwirev1.Event) []*tickwirev1.Event {
	id := ic.st.ID()
	info := &tickwirev1.Event{Instrument: id, Epoch: c.epoch, Seq: ic.seq + 1, VenueTimeNs: t, IngestTimeNs: t,
		Body: &tickwirev1.Event_Info{Info: proto.CloneOf(ic.st.Info())}}
	bu := &tickwirev1.BookUpdate{Snapshot: true}
	b := ic.st.Book()
	bu.Bids = make([]*tickwirev1.Level, len(b.Bids()))
	for i, l := range b.Bids() {
		bu.Bids[i] = &tickwirev1.Level{Price: l.Price, Size: l.Size, Venues: l.Venues}
	}
	bu.Asks = make([]*tickwirev1.Level, len(b.Asks()))
	for i, l := range b.Asks() {
		bu.Asks[i] = &tickwirev1.Level{Price: l.Price, Size: l.Size, Venues: l.Venues}
	}
	snap := &tickwirev1.Event{Instrument: id, Epoch: c.epoch, Seq: ic.seq + 2, VenueTimeNs: t, IngestTimeNs: t,
		Body: &tickwirev1.Event_Book{Book: bu}}
	ic.seq += 2
	ic.running = true
	out = append(out, info, snap)
	if !ic.started {
		ic.started = true
		for _, r := range ic.st.Snapshot(tickwirev1.Channel_CHANNEL_TRADES, 0, 0).GetTrades().GetTrades() {
			tr := proto.CloneOf(r.GetTrade())
			tr.History = true
			ic.seq++
			out = append(out, &tickwirev1.Event{Instrument: id, Epoch: c.epoch, Seq: ic.seq, VenueTimeNs: r.GetVenueTimeNs(),
				IngestTimeNs: t, Body: &tickwirev1.Event_Trade{Trade: tr}})
		}
		if ss := ic.st.SessionStats(); ss != nil && c.forgot { // forgot: the read covered the window's start
			ic.seq++
			out = append(out, &tickwirev1.Event{Instrument: id, Epoch: c.epoch, Seq: ic.seq, VenueTimeNs: t, IngestTimeNs: t,
				Body: &tickwirev1.Event_Stats{Stats: ss}})
		}
	}
	return out
}
