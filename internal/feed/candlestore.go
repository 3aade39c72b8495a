package feed

import (
	"slices"
	"sync"
	"sync/atomic"

	pb "github.com/tickwire/tickwire/pkg/proto/tickwire/v1"
	"github.com/tickwire/tickwire/pkg/wire"
)

// candleStore is the feed's precomputed candle store: every trade the feed takes in (live
// events, not replays) is folded into one bar of a fixed interval per instrument, kept for a
// span of event time back from the instrument's newest bar. GET /api/candles answers any
// interval that is a multiple of the store's from these bars, without reading the event store.
//
// It is complete because the feed reads every stored event when it starts (Service.Run) and
// every live one after: a period without a bar had no trade. Bars older than the span are
// dropped; the default span is the stream's default max age, so the store forgets what the
// event store forgets.
//
// Locks: mu guards the instrument map; each instrument's bars have their own lock, so a
// request copying one instrument's bars never holds up the trades of another. Lock order:
// mu, then an instrument's mu (observe takes them one after the other, never nested).
type candleStore struct {
	ivNs   int64 // bar length, ns
	ivS    int64 // bar length, s
	keep   int   // bars kept per instrument: span / interval
	held   atomic.Int64
	onHeld func(delta int) // bars gained or dropped, for the gauge; may be nil

	mu    sync.RWMutex
	insts map[string]*storedBars // guarded by mu; entries are never removed (instruments are few and stay)
}

// storedBars are one instrument's bars, oldest first.
type storedBars struct {
	mu   sync.Mutex
	bars []storedBar // guarded by mu; bars[head:] are live, in ascending start, one per period with trades
	head int         // guarded by mu
}

// storedBar is one bar of the store's interval. Times are event times (venue, else ingest).
type storedBar struct {
	startNs                int64
	open, high, low, close int64
	volume                 int64
	count                  uint32
	firstNs, lastNs        int64 // times of the earliest and latest trade folded in
}

func newCandleStore(intervalS int64, keep int, onHeld func(int)) *candleStore {
	return &candleStore{ivNs: intervalS * 1e9, ivS: intervalS, keep: keep, onHeld: onHeld,
		insts: make(map[string]*storedBars)}
}

// eventTime is the time candles file an event under: venue time, or ingest time when the venue
// gave none (as pkg/market does).
func eventTime(ev *pb.Event) int64 {
	if ev.VenueTimeNs > 0 {
		return ev.VenueTimeNs
	}
	return ev.IngestTimeNs
}

// validTrade reports whether a trade counts in candles: pkg/market rejects the others, and a
// history trade (one from before ingest saw the market) is on the tape but not counted.
func validTrade(t *pb.Trade) bool { return t != nil && t.Price > 0 && t.Size > 0 && !t.History }

// observe folds ev into its instrument's bars if it is a valid trade. Called for every event
// the feed takes in, in stream order (Server.Dispatch).
func (c *candleStore) observe(ev *pb.Event) {
	t := ev.GetTrade()
	if !validTrade(t) {
		return
	}
	c.mu.RLock()
	sb := c.insts[ev.Instrument]
	c.mu.RUnlock()
	if sb == nil {
		if wire.CheckInstrumentID(ev.Instrument) != nil {
			return // the owners reject it too (bad_instrument)
		}
		c.mu.Lock()
		if sb = c.insts[ev.Instrument]; sb == nil {
			sb = &storedBars{}
			c.insts[ev.Instrument] = sb
		}
		c.mu.Unlock()
	}
	sb.mu.Lock()
	delta := sb.addLocked(eventTime(ev), t.Price, t.Size, c.ivNs, c.keep)
	sb.mu.Unlock()
	if delta != 0 {
		c.held.Add(int64(delta))
		if c.onHeld != nil {
			c.onHeld(delta)
		}
	}
}

// addLocked folds one trade in and returns how many bars were gained (1, or 1 minus those
// dropped past the span). As pkg/market builds its bars: a trade for a period that has a bar
// joins it, however late; a late trade for a period without a bar, once a later one exists, is
// dropped (bars stay in order, and the live bars did the same).
func (s *storedBars) addLocked(ts, price, size, ivNs int64, keep int) int {
	start := floorDiv(ts, ivNs) * ivNs
	live := s.bars[s.head:]
	n := len(live)
	if n > 0 && live[n-1].startNs >= start {
		i, found := slices.BinarySearchFunc(live, start, cmpStart)
		if found {
			live[i].add(ts, price, size)
		}
		return 0
	}
	s.bars = append(s.bars, storedBar{startNs: start, open: price, high: price, low: price, close: price,
		volume: size, count: 1, firstNs: ts, lastNs: ts})
	gained := 1
	// Keep the periods within the span back from the newest bar.
	oldest := start - int64(keep-1)*ivNs
	for s.head < len(s.bars) && s.bars[s.head].startNs < oldest {
		s.head++
		gained--
	}
	if s.head > 64 && s.head*2 >= len(s.bars) { // reclaim the dropped prefix, amortised O(1)
		s.bars = append(s.bars[:0], s.bars[s.head:]...)
		s.head = 0
	}
	return gained
}

func (b *storedBar) add(ts, price, size int64) {
	if ts < b.firstNs {
		b.firstNs, b.open = ts, price
	}
	if ts >= b.lastNs {
		b.lastNs, b.close = ts, price
	}
	b.high, b.low = max(b.high, price), min(b.low, price)
	b.volume += size
	b.count++
}

// nsSpan is a half-open window [from, to) of event time in ns.
type nsSpan struct{ from, to int64 }

func (s nsSpan) empty() bool { return s.to <= s.from }

// storePlan is how a window is answered from the store: the trades of head, then the bars,
// then the trades of tail. head and tail (empty, or inside one period at either end of the
// window) are the parts that cut a stored bar in two: their trades must be read from the event
// store.
type storePlan struct {
	head nsSpan
	bars []storedBar // copies, oldest first
	tail nsSpan
}

func (p storePlan) reads() int {
	n := 0
	for _, s := range []nsSpan{p.head, p.tail} {
		if !s.empty() {
			n++
		}
	}
	return n
}

// query plans instrument's trades in w from the store. Bars older than the span are gone: w
// before them answers nothing.
func (c *candleStore) query(instrument string, w nsSpan) (p storePlan) {
	p, _ = c.queryInto(instrument, w, nil)
	return p
}

// queryInto plans w as query does. When no part of w must be read from the event store and b
// is not nil, it folds the bars into b under the instrument's lock instead of copying them
// (folded): an answer from the store allocates only its output.
func (c *candleStore) queryInto(instrument string, w nsSpan, b *barBuilder) (p storePlan, folded bool) {
	c.mu.RLock()
	sb := c.insts[instrument]
	c.mu.RUnlock()
	if sb == nil || w.empty() {
		return p, b != nil
	}
	sb.mu.Lock()
	defer sb.mu.Unlock()
	live := sb.bars[sb.head:]
	var lo, hi int
	p.head, p.tail, lo, hi = c.planLocked(live, w)
	use := live[lo:hi]
	if b != nil && p.reads() == 0 {
		for i := range use {
			b.addBar(&use[i])
		}
		return p, true
	}
	p.bars = append([]storedBar(nil), use...)
	return p, false
}

// planLocked splits w over live (an instrument's bars, under its lock): live[lo:hi] are the
// bars to use whole, and head and tail the parts at w's ends that cut a bar in two. The bars
// used whole are contiguous: the one cut by from is used whole only when all its trades are in
// w, and so is the one cut by to.
func (c *candleStore) planLocked(live []storedBar, w nsSpan) (head, tail nsSpan, lo, hi int) {
	// [a, b): the whole periods inside w.
	a := -floorDiv(-w.from, c.ivNs) * c.ivNs // ceil
	b := floorDiv(w.to, c.ivNs) * c.ivNs
	if a > b { // w lies inside one period: the bar starting at b, if any
		i, ok := slices.BinarySearchFunc(live, b, cmpStart)
		switch {
		case !ok:
			return head, tail, i, i
		case live[i].firstNs >= w.from && live[i].lastNs < w.to:
			return head, tail, i, i + 1
		}
		return w, tail, i, i
	}
	lo, _ = slices.BinarySearchFunc(live, a, cmpStart)
	hi, _ = slices.BinarySearchFunc(live, b, cmpStart)
	if w.from < a && lo > 0 && live[lo-1].startNs == a-c.ivNs { // the period cut by from has a bar
		if live[lo-1].firstNs >= w.from {
			lo--
		} else {
			head = nsSpan{w.from, a}
		}
	}
	if b < w.to && hi < len(live) && live[hi].startNs == b { // the period cut by to has a bar
		if live[hi].lastNs < w.to {
			hi++
		} else {
			tail = nsSpan{b, w.to}
		}
	}
	return head, tail, lo, hi
}

func cmpStart(b storedBar, start int64) int { return cmpInt64(b.startNs, start) }

func cmpInt64(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// floorDiv is a/b rounded towards negative infinity (b > 0).
func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}
