// Package synthetic is a deterministic synthetic market: a pure generator (Market) of
// normalized events for many instruments, and a Source that paces it in real time.
package synthetic

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"time"

	"github.com/tickwire/tickwire/internal/normalize"
	tickwirev1 "github.com/tickwire/tickwire/pkg/proto/tickwire/v1"
)

// ErrConfig: an invalid Config.
var ErrConfig = errors.New("synthetic: invalid config")

// Venue is the default venue of synthetic instruments ("synthetic:ACME").
const Venue = "synthetic"

// MaxVenues bounds Config.Venues.
const MaxVenues = 8

// Defaults and bounds.
const (
	DefaultInstruments = 50
	MaxInstruments     = 100_000
	DefaultRate        = 2000
	DefaultDepth       = 25
	MinDepth           = 20
	MaxDepth           = 1000
	// DefaultCheckpointInterval: a consumer that starts mid-stream waits at most this long
	// for a full snapshot, and a stream replayed from any point holds one this recent.
	DefaultCheckpointInterval = 30 * time.Second
	PriceScale                = 2
	// MinuteMove is the typical move of an instrument's fair value in a minute, relative to it
	// (each instrument gets 0.5 to 1.5 times it): 0.15 %.
	MinuteMove = 0.0015
	SizeScale  = 4
	TickSize   = 1
	LotSize    = 1
)

// Config configures the synthetic market. Zero fields take the defaults.
type Config struct {
	Instruments        int           // number of instruments; default 50
	Seed               uint64        // same seed (and same clock sequence) -> same events
	Rate               int           // total events per second (Source pacing); default 2000
	Depth              int           // book levels per side; default 25, at least 20
	CheckpointInterval time.Duration // InstrumentInfo + snapshot of every instrument; default 30 s
	// Venues the market's instruments trade on; default [Venue]. The first venue lists every
	// ticker; the others list the first CrossListed ones, each with its own book and trades
	// around the same fair value, as one asset quoted on several exchanges (the demo of
	// consolidated instruments).
	Venues      []string
	CrossListed int // tickers listed on every venue; default all
}

// WithDefaults returns c with zero fields set to the defaults.
func (c Config) WithDefaults() Config {
	if c.Instruments == 0 {
		c.Instruments = DefaultInstruments
	}
	if c.Rate == 0 {
		c.Rate = DefaultRate
	}
	if c.Depth == 0 {
		c.Depth = DefaultDepth
	}
	if c.CheckpointInterval == 0 {
		c.CheckpointInterval = DefaultCheckpointInterval
	}
	if len(c.Venues) == 0 {
		c.Venues = []string{Venue}
	}
	if c.CrossListed == 0 {
		c.CrossListed = c.Instruments
	}
	return c
}

// Validate checks a Config after WithDefaults.
func (c Config) Validate() error {
	switch {
	case c.Instruments < 1 || c.Instruments > MaxInstruments:
		return fmt.Errorf("%w: instruments %d not in 1..%d", ErrConfig, c.Instruments, MaxInstruments)
	case c.Rate < 1:
		return fmt.Errorf("%w: rate %d < 1", ErrConfig, c.Rate)
	case c.Depth < MinDepth || c.Depth > MaxDepth:
		return fmt.Errorf("%w: depth %d not in %d..%d", ErrConfig, c.Depth, MinDepth, MaxDepth)
	case c.CheckpointInterval < 0:
		return fmt.Errorf("%w: checkpoint interval %s < 0", ErrConfig, c.CheckpointInterval)
	case len(c.Venues) > MaxVenues:
		return fmt.Errorf("%w: %d venues, at most %d", ErrConfig, len(c.Venues), MaxVenues)
	case c.CrossListed < 0 || c.CrossListed > c.Instruments:
		return fmt.Errorf("%w: cross-listed %d not in 0..%d", ErrConfig, c.CrossListed, c.Instruments)
	}
	for i, v := range c.Venues {
		if err := normalize.ValidateVenue(v); err != nil {
			return fmt.Errorf("%w: %w", ErrConfig, err)
		}
		if v == normalize.ConsolidatedVenue {
			return fmt.Errorf("%w: venue %q is reserved for consolidated instruments", ErrConfig, v)
		}
		if slices.Contains(c.Venues[:i], v) {
			return fmt.Errorf("%w: venue %q twice", ErrConfig, v)
		}
	}
	return nil
}

type level struct{ price, size int64 }

type instrument struct {
	info     *tickwirev1.InstrumentInfo
	fair     *float64 // fair value in price mantissa units, one per ticker; each venue's book mid chases it
	vol      float64  // per-step standard deviation of fair, in ticks
	sizeBase int64    // typical level size in lots
	bids     []level  // best (highest) first
	asks     []level  // best (lowest) first
	tradeID  uint64
}

// Market generates events for its instruments. It is a pure state machine: no goroutines, no
// clock (the caller passes the time), so it is deterministic for a seed and a sequence of
// times. Not safe for concurrent use.
//
// Invariants of every instrument's book, after every event: each side has at most Depth
// levels, strictly sorted best first, sizes > 0, prices > 0 and on the tick grid, and best bid
// < best ask. Trades happen at the touch and are followed by the book update they cause.
type Market struct {
	cfg   Config
	rng   *rand.Rand
	insts []*instrument
	byID  map[string]*instrument

	queue []*tickwirev1.Event // events due before any new step (checkpoints, book after trade)
	head  int

	checkpointed bool
	nextCkpt     int64
}

// NewMarket returns a Market for cfg (defaults applied, validated).
func NewMarket(cfg Config) (*Market, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	m := &Market{cfg: cfg, rng: rand.New(rand.NewPCG(cfg.Seed, 0x73796e74)), byID: make(map[string]*instrument, cfg.Instruments)}
	// An instrument's steps a minute at the configured rate (each event steps one instrument).
	listings := cfg.Instruments + (len(cfg.Venues)-1)*cfg.CrossListed
	stepsPerMinute := math.Max(1, float64(cfg.Rate)*60/float64(listings))
	// Lowest start price: the deepest bid must stay above zero.
	minStart := math.Max(500, float64(10*cfg.Depth))
	for ti, t := range Tickers(cfg.Instruments) {
		// Start prices 5.00 .. 5000.00, log-uniform.
		fair := new(float64)
		*fair = math.Round(math.Exp(m.rng.Float64()*math.Log(500_000/minStart)) * minStart)
		// Volatility relative to the price, so that every instrument moves by a realistic
		// fraction a minute whatever its price (a tick-based walk moved a 5.00 instrument 8-11 %
		// a minute and a 5000.00 one not at all): MinuteMove x 0.5..1.5 per minute at the
		// configured rate, spread over that minute's steps.
		vol := MinuteMove * (0.5 + m.rng.Float64()) / math.Sqrt(stepsPerMinute)
		for vi, venue := range cfg.Venues {
			if vi > 0 && ti >= cfg.CrossListed {
				break
			}
			in := &instrument{info: &tickwirev1.InstrumentInfo{
				Id: venue + ":" + t, Venue: venue, Symbol: t, Base: t, Quote: "USD",
				PriceScale: PriceScale, SizeScale: SizeScale, TickSize: TickSize, LotSize: LotSize,
				Status: tickwirev1.InstrumentStatus_INSTRUMENT_STATUS_TRADING,
			}, fair: fair, vol: vol}
			in.sizeBase = 100 + m.rng.Int64N(20_000)
			spread := int64(1 + m.rng.IntN(3))
			bid := int64(*fair) - spread/2
			for i := range int64(cfg.Depth) {
				in.bids = append(in.bids, level{bid - i*TickSize, m.size(in)})
				in.asks = append(in.asks, level{bid + spread + i*TickSize, m.size(in)})
			}
			m.insts = append(m.insts, in)
			m.byID[in.info.Id] = in
		}
	}
	return m, nil
}

// Instruments returns the reference data of every instrument, in a fixed order.
func (m *Market) Instruments() []*tickwirev1.InstrumentInfo {
	out := make([]*tickwirev1.InstrumentInfo, len(m.insts))
	for i, in := range m.insts {
		out[i] = in.info
	}
	return out
}

// Next returns the next event, stamped with venue time nowNs (the generator's clock, which
// should not go backwards). The first call, and the first call at or after each checkpoint
// interval, queue every instrument's InstrumentInfo and full book snapshot first.
func (m *Market) Next(nowNs int64) *tickwirev1.Event {
	if !m.checkpointed || (m.cfg.CheckpointInterval > 0 && nowNs >= m.nextCkpt) {
		m.checkpointed = true
		m.nextCkpt = nowNs + int64(m.cfg.CheckpointInterval)
		for _, in := range m.insts {
			m.push(m.infoEvent(in, nowNs), m.snapshotEvent(in, nowNs))
		}
	}
	if ev := m.pop(); ev != nil {
		ev.VenueTimeNs = nowNs // queued events happen when they are emitted
		return ev
	}
	in := m.insts[m.rng.IntN(len(m.insts))]
	first, second := m.step(in, nowNs)
	if second != nil {
		m.push(second)
	}
	return first
}

// Resnapshot queues InstrumentInfo and a full book snapshot of instrument (after a new epoch
// started, for example). It reports false for an unknown instrument.
func (m *Market) Resnapshot(instrument string, nowNs int64) bool {
	in := m.byID[instrument]
	if in == nil {
		return false
	}
	m.push(m.infoEvent(in, nowNs), m.snapshotEvent(in, nowNs))
	return true
}

func (m *Market) push(evs ...*tickwirev1.Event) { m.queue = append(m.queue, evs...) }

func (m *Market) pop() *tickwirev1.Event {
	if m.head == len(m.queue) {
		return nil
	}
	ev := m.queue[m.head]
	m.queue[m.head] = nil
	m.head++
	if m.head == len(m.queue) {
		m.queue, m.head = m.queue[:0], 0
	}
	return ev
}

func (m *Market) size(in *instrument) int64 {
	return (1 + m.rng.Int64N(2*in.sizeBase)) * LotSize
}

func (m *Market) infoEvent(in *instrument, nowNs int64) *tickwirev1.Event {
	return &tickwirev1.Event{Instrument: in.info.Id, VenueTimeNs: nowNs, Body: &tickwirev1.Event_Info{Info: in.info}}
}

func (m *Market) snapshotEvent(in *instrument, nowNs int64) *tickwirev1.Event {
	bu := &tickwirev1.BookUpdate{Snapshot: true,
		Bids: make([]*tickwirev1.Level, len(in.bids)), Asks: make([]*tickwirev1.Level, len(in.asks))}
	for i, l := range in.bids {
		bu.Bids[i] = &tickwirev1.Level{Price: l.price, Size: l.size}
	}
	for i, l := range in.asks {
		bu.Asks[i] = &tickwirev1.Level{Price: l.price, Size: l.size}
	}
	return bookEvent(in, nowNs, bu)
}

func bookEvent(in *instrument, nowNs int64, bu *tickwirev1.BookUpdate) *tickwirev1.Event {
	return &tickwirev1.Event{Instrument: in.info.Id, VenueTimeNs: nowNs, Body: &tickwirev1.Event_Book{Book: bu}}
}

// side is one side of the book being changed, with the levels of the update being built.
type side struct {
	levels *[]level
	better func(a, b int64) bool // a is better (closer to the touch) than b
	dir    int64                 // -1 for bids (worse = lower), +1 for asks
	out    *[]*tickwirev1.Level
	far    int64 // farthest price touched by this update: refills go beyond it
}

func (s *side) set(price, size int64) {
	*s.out = append(*s.out, &tickwirev1.Level{Price: price, Size: size})
	if s.far == 0 || s.better(s.far, price) {
		s.far = price
	}
}

// remove deletes level i.
func (s *side) remove(i int) {
	l := *s.levels
	s.set(l[i].price, 0)
	*s.levels = append(l[:i], l[i+1:]...)
}

// insert adds a level at its sorted position (the price must be absent).
func (s *side) insert(price, size int64) {
	l := *s.levels
	i := 0
	for i < len(l) && s.better(l[i].price, price) {
		i++
	}
	l = append(l, level{})
	copy(l[i+1:], l[i:])
	l[i] = level{price, size}
	*s.levels = l
	s.set(price, size)
}

// refill adds levels until the side has depth levels, keeping prices > 0: each in the hole
// nearest the touch (a missing tick between two levels), else beyond the worst level; never at
// or inside a price this update already touched (an update names a price once). Filling holes
// first keeps the book dense where a tick-thin market is quiet; refilling only at the far end
// let cancels spread a slow instrument's 25 levels over 20 % of its price.
func (m *Market) refill(in *instrument, s *side) {
	for len(*s.levels) < m.cfg.Depth {
		l := *s.levels
		pos, p := len(l), int64(0)
		for i := 1; i < len(l); i++ {
			q := l[i-1].price + s.dir*TickSize
			if q != l[i].price && (s.far == 0 || s.better(s.far, q)) {
				pos, p = i, q
				break
			}
		}
		if pos == len(l) {
			p = s.far
			if len(l) > 0 && (p == 0 || s.better(p, l[len(l)-1].price)) {
				p = l[len(l)-1].price
			}
			p += s.dir * TickSize
		}
		if p <= 0 {
			return
		}
		l = append(l, level{})
		copy(l[pos+1:], l[pos:])
		l[pos] = level{p, m.size(in)}
		*s.levels = l
		s.set(p, l[pos].size)
	}
}

// trim removes the worst levels beyond depth.
func (m *Market) trim(s *side) {
	for len(*s.levels) > m.cfg.Depth {
		s.remove(len(*s.levels) - 1)
	}
}

func (m *Market) sides(in *instrument, bu *tickwirev1.BookUpdate) (bids, asks *side) {
	bids = &side{levels: &in.bids, better: func(a, b int64) bool { return a > b }, dir: -1, out: &bu.Bids}
	asks = &side{levels: &in.asks, better: func(a, b int64) bool { return a < b }, dir: +1, out: &bu.Asks}
	return bids, asks
}

// step advances one instrument by one action and returns its event(s): a trade is followed by
// the book update it causes.
func (m *Market) step(in *instrument, nowNs int64) (*tickwirev1.Event, *tickwirev1.Event) {
	// Fair value: a random walk relative to the price, kept well above the book's depth.
	*in.fair += *in.fair * in.vol * m.rng.NormFloat64()
	*in.fair = math.Max(*in.fair, float64(5*m.cfg.Depth*TickSize))
	fair := *in.fair

	bu := &tickwirev1.BookUpdate{}
	bids, asks := m.sides(in, bu)
	bestBid, bestAsk := in.bids[0].price, in.asks[0].price
	mid := float64(bestBid+bestAsk) / 2
	r := m.rng.IntN(100)
	switch {
	case r < 12: // trade at the touch
		buy := m.rng.Float64() < 0.5+math.Max(-0.3, math.Min(0.3, (fair-mid)/(20*TickSize)))
		s, sideEnum := bids, tickwirev1.Side_SIDE_SELL
		if buy {
			s, sideEnum = asks, tickwirev1.Side_SIDE_BUY
		}
		touch := &(*s.levels)[0]
		qty := touch.size
		if m.rng.IntN(3) > 0 { // two in three trades leave size at the level
			qty = 1 + m.rng.Int64N(touch.size)
		}
		in.tradeID++
		trade := &tickwirev1.Event{Instrument: in.info.Id, VenueTimeNs: nowNs, Body: &tickwirev1.Event_Trade{Trade: &tickwirev1.Trade{
			Price: touch.price, Size: qty, Side: sideEnum, TradeId: strconv.FormatUint(in.tradeID, 10)}}}
		if qty == touch.size {
			s.remove(0)
			m.refill(in, s)
		} else {
			touch.size -= qty
			s.set(touch.price, touch.size)
		}
		return trade, bookEvent(in, nowNs, bu)

	case r < 45 && math.Abs(fair-mid) >= TickSize: // the book moves one tick toward fair
		// Up: a better bid comes, and if the spread is one tick the best ask goes first.
		// Down: the mirror image. A wide spread thus narrows before the book shifts.
		if fair > mid {
			if bestAsk-bestBid == TickSize {
				asks.remove(0)
			}
			bids.insert(bestBid+TickSize, m.size(in))
		} else {
			if bestAsk-bestBid == TickSize {
				bids.remove(0)
			}
			asks.insert(bestAsk-TickSize, m.size(in))
		}
		m.trim(bids)
		m.trim(asks)
		m.refill(in, bids)
		m.refill(in, asks)

	case r < 50: // a level away from the touch is cancelled
		s := m.pick(bids, asks)
		if len(*s.levels) > 1 {
			s.remove(1 + m.rng.IntN(len(*s.levels)-1))
		}
		m.refill(in, s)

	case r < 65: // a new level appears inside the spread or in a hole behind the touch
		s := m.pick(bids, asks)
		l := *s.levels
		var price int64
		if inside := (bestAsk-bestBid)/TickSize - 1; inside > 0 && m.rng.IntN(3) == 0 {
			price = l[0].price - s.dir*(1+m.rng.Int64N(inside))*TickSize
		} else if holes := abs(l[len(l)-1].price-l[0].price)/TickSize + 1 - int64(len(l)); holes > 0 {
			k := m.rng.Int64N(holes) // the k-th missing price from the touch
			for i := 1; i < len(l); i++ {
				gap := abs(l[i].price-l[i-1].price)/TickSize - 1
				if k < gap {
					price = l[i-1].price + s.dir*(k+1)*TickSize
					break
				}
				k -= gap
			}
		}
		if price <= 0 {
			m.resize(in, s)
			break
		}
		s.insert(price, m.size(in))
		m.trim(s)

	default:
		m.resize(in, m.pick(bids, asks))
	}
	return bookEvent(in, nowNs, bu), nil
}

func (m *Market) pick(bids, asks *side) *side {
	if m.rng.IntN(2) == 0 {
		return bids
	}
	return asks
}

// resize changes the size of one level, most often near the touch.
func (m *Market) resize(in *instrument, s *side) {
	l := *s.levels
	i := min(m.rng.IntN(len(l)), m.rng.IntN(len(l)))
	sz := m.size(in)
	if sz == l[i].size {
		sz += LotSize
	}
	l[i].size = sz
	s.set(l[i].price, sz)
}

func has(l []level, price int64) bool {
	for _, x := range l {
		if x.price == price {
			return true
		}
	}
	return false
}

func abs(x int64) int64 {
	if x < 0 {
		return -x
	}
	return x
}
