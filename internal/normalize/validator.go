package normalize

import (
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	tickwirev1 "github.com/tickwire/tickwire/pkg/proto/tickwire/v1"
)

// MaxFutureSkew is how far ahead of the ingest clock a venue time may be. Venue clocks drift
// and NTP is not perfect, but an event stamped more than this ahead is a bug at the source
// (wrong unit, wrong timezone) and would poison latency metrics and candles.
const MaxFutureSkew = 5 * time.Second

// Reject reasons, the "reason" label of tickwire_ingest_rejected_total.
const (
	ReasonUnknownInstrument = "unknown_instrument"
	ReasonBadInfo           = "bad_info"
	ReasonNoBody            = "no_body"
	ReasonPrice             = "price"
	ReasonSize              = "size"
	ReasonTick              = "tick"
	ReasonLot               = "lot"
	ReasonDuplicateLevel    = "duplicate_level"
	ReasonFutureTime        = "future_time"
	// ReasonCrossed is counted but the event is kept (flagged), not rejected.
	ReasonCrossed = "crossed"
	// ReasonInexact, ReasonOverflow, ReasonSyntax: a decimal that does not fit the
	// instrument's scale exactly, does not fit an int64 mantissa, or is not a decimal (sources).
	ReasonInexact  = "inexact"
	ReasonOverflow = "overflow"
	ReasonSyntax   = "syntax"
	ReasonOther    = "other"
	ReasonVenues   = "venues"
)

// RejectError is the error the Validator returns for a rejected event. It unwraps to one of
// the sentinels in errors.go (errors.Is) and names the metric reason.
type RejectError struct {
	Instrument string
	Reason     string
	Err        error // wraps a sentinel with detail
}

func (e *RejectError) Error() string {
	return fmt.Sprintf("reject %s (%s): %v", e.Instrument, e.Reason, e.Err)
}

func (e *RejectError) Unwrap() error { return e.Err }

var reasonOf = []struct {
	err    error
	reason string
}{
	{ErrUnknownInstrument, ReasonUnknownInstrument},
	{ErrBadInfo, ReasonBadInfo},
	{ErrNoBody, ReasonNoBody},
	{ErrPrice, ReasonPrice},
	{ErrSize, ReasonSize},
	{ErrTick, ReasonTick},
	{ErrLot, ReasonLot},
	{ErrDuplicateLevel, ReasonDuplicateLevel},
	{ErrVenues, ReasonVenues},
	{ErrFutureTime, ReasonFutureTime},
	{ErrInexact, ReasonInexact},
	{ErrOverflow, ReasonOverflow},
	{ErrSyntax, ReasonSyntax},
}

// Reason maps an error to its metric reason label (ReasonOther if it wraps no known sentinel).
func Reason(err error) string {
	var re *RejectError
	if errors.As(err, &re) {
		return re.Reason
	}
	for _, r := range reasonOf {
		if errors.Is(err, r.err) {
			return r.reason
		}
	}
	return ReasonOther
}

// Validator checks events against their instrument's reference data and tracks a minimal
// book per instrument to detect crossed books. An InstrumentInfo event registers (or replaces)
// an instrument's reference data; other events for an unregistered instrument are rejected.
//
// A Validator is safe for concurrent use, but events of one instrument must be validated in
// order (the crossed-book check applies each accepted book update).
type Validator struct {
	logger   *slog.Logger
	rejected *prometheus.CounterVec

	mu    sync.Mutex
	insts map[string]*instState // guarded by mu
}

type instState struct {
	info *tickwirev1.InstrumentInfo
	bids map[int64]int64
	asks map[int64]int64
	// Cached best prices (0: unknown, rescan); kept so the crossed check is O(1) per update.
	bestBid, bestAsk int64
}

// NewValidator returns a Validator that registers tickwire_ingest_rejected_total on reg
// (reg may be nil: no metrics are registered).
func NewValidator(logger *slog.Logger, reg prometheus.Registerer) (*Validator, error) {
	v := &Validator{
		logger: logger,
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tickwire_ingest_rejected_total",
			Help: "Events rejected (or, for reason=crossed, flagged) by validation, per instrument and reason.",
		}, []string{"instrument", "reason"}),
		insts: make(map[string]*instState),
	}
	if reg != nil {
		if err := reg.Register(v.rejected); err != nil {
			return nil, fmt.Errorf("normalize: register metrics: %w", err)
		}
	}
	return v, nil
}

// Info returns the reference data registered for instrument, or nil.
func (v *Validator) Info(instrument string) *tickwirev1.InstrumentInfo {
	v.mu.Lock()
	defer v.mu.Unlock()
	if st := v.insts[instrument]; st != nil {
		return st.info
	}
	return nil
}

// Instruments returns the number of registered instruments.
func (v *Validator) Instruments() int {
	v.mu.Lock()
	defer v.mu.Unlock()
	return len(v.insts)
}

// Validate checks ev, with now as the ingest clock. It returns a *RejectError (counted per
// instrument and reason) when the event must be dropped. crossed reports that a book update
// left the book crossed: such an event is counted (reason "crossed") and logged, but it is
// not rejected, since the venue's data is what it is and feed must see it.
func (v *Validator) Validate(ev *tickwirev1.Event, now time.Time) (crossed bool, err error) {
	crossed, err = v.validate(ev, now)
	if err != nil {
		re := &RejectError{Instrument: ev.GetInstrument(), Reason: Reason(err), Err: err}
		v.rejected.WithLabelValues(re.Instrument, re.Reason).Inc()
		return false, re
	}
	if crossed {
		v.rejected.WithLabelValues(ev.GetInstrument(), ReasonCrossed).Inc()
		if v.logger != nil {
			v.logger.Warn("crossed book", "instrument", ev.GetInstrument(), "venue_time_ns", ev.GetVenueTimeNs())
		}
	}
	return crossed, nil
}

func (v *Validator) validate(ev *tickwirev1.Event, now time.Time) (bool, error) {
	id := ev.GetInstrument()
	if ev.GetVenueTimeNs() > now.Add(MaxFutureSkew).UnixNano() {
		return false, fmt.Errorf("%w: venue time %s is %s ahead", ErrFutureTime,
			time.Unix(0, ev.GetVenueTimeNs()).UTC().Format(time.RFC3339Nano),
			time.Unix(0, ev.GetVenueTimeNs()).Sub(now))
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if info := ev.GetInfo(); info != nil {
		if err := ValidateInfo(info); err != nil {
			return false, err
		}
		if info.GetId() != id {
			return false, fmt.Errorf("%w: info id %q on event of %q", ErrBadInfo, info.GetId(), id)
		}
		st := v.insts[id]
		if st == nil {
			st = &instState{bids: make(map[int64]int64), asks: make(map[int64]int64)}
			v.insts[id] = st
		}
		st.info = info
		return false, nil
	}
	st := v.insts[id]
	if st == nil {
		if _, _, err := ParseInstrumentID(id); err != nil {
			return false, err
		}
		return false, fmt.Errorf("%w: %q (no InstrumentInfo seen)", ErrUnknownInstrument, id)
	}
	info := st.info
	switch b := ev.GetBody().(type) {
	case *tickwirev1.Event_Trade:
		t := b.Trade
		if err := checkPrice(info, t.GetPrice()); err != nil {
			return false, fmt.Errorf("trade: %w", err)
		}
		if t.GetSize() <= 0 {
			return false, fmt.Errorf("%w: trade size %d", ErrSize, t.GetSize())
		}
		if err := checkLot(info, t.GetSize()); err != nil {
			return false, fmt.Errorf("trade: %w", err)
		}
		return false, nil
	case *tickwirev1.Event_Quote:
		q := b.Quote
		for _, l := range [][2]int64{{q.GetBidPrice(), q.GetBidSize()}, {q.GetAskPrice(), q.GetAskSize()}} {
			if l[1] < 0 {
				return false, fmt.Errorf("%w: quote size %d", ErrSize, l[1])
			}
			if l[1] == 0 {
				continue // side empty
			}
			if err := checkPrice(info, l[0]); err != nil {
				return false, fmt.Errorf("quote: %w", err)
			}
			if err := checkLot(info, l[1]); err != nil {
				return false, fmt.Errorf("quote: %w", err)
			}
		}
		return false, nil
	case *tickwirev1.Event_Book:
		bu := b.Book
		if err := checkLevels(info, "bid", bu.GetBids(), bu.GetSnapshot()); err != nil {
			return false, err
		}
		if err := checkLevels(info, "ask", bu.GetAsks(), bu.GetSnapshot()); err != nil {
			return false, err
		}
		st.apply(bu)
		// Venues' books cross each other (an arbitrage the market closes): not a fault of a
		// consolidated book.
		return len(info.GetMembers()) == 0 && st.crossed(), nil
	default:
		return false, ErrNoBody
	}
}

func checkPrice(info *tickwirev1.InstrumentInfo, p int64) error {
	if p <= 0 {
		return fmt.Errorf("%w: %d", ErrPrice, p)
	}
	return CheckTick(info.GetTickSize(), p)
}

func checkLot(info *tickwirev1.InstrumentInfo, s int64) error {
	return CheckLot(info.GetLotSize(), s)
}

// CheckTick returns an error wrapping ErrTick if price p is off the grid of tick (a mantissa
// at the same scale). A tick of 0 is not known: every price is on the grid.
func CheckTick(tick, p int64) error {
	if tick > 0 && p%tick != 0 {
		return fmt.Errorf("%w: %d not a multiple of tick %d", ErrTick, p, tick)
	}
	return nil
}

// CheckLot returns an error wrapping ErrLot if size s is off the grid of lot (0: not known,
// every size is on the grid). A size of 0 (a deleted level) is on every grid.
func CheckLot(lot, s int64) error {
	if lot > 0 && s%lot != 0 {
		return fmt.Errorf("%w: %d not a multiple of lot %d", ErrLot, s, lot)
	}
	return nil
}

// dupCheckLinear is the level count up to which duplicates are found by a quadratic scan,
// which beats allocating a map for the usual handful of levels in an update.
const dupCheckLinear = 32

func checkLevels(info *tickwirev1.InstrumentInfo, side string, levels []*tickwirev1.Level, snapshot bool) error {
	var seen map[int64]struct{}
	if len(levels) > dupCheckLinear {
		seen = make(map[int64]struct{}, len(levels))
	}
	for i, l := range levels {
		if err := checkPrice(info, l.GetPrice()); err != nil {
			return fmt.Errorf("%s level %d: %w", side, i, err)
		}
		if l.GetSize() < 0 || (snapshot && l.GetSize() == 0) {
			return fmt.Errorf("%w: %s level %d size %d (snapshot=%t)", ErrSize, side, i, l.GetSize(), snapshot)
		}
		if err := checkLot(info, l.GetSize()); err != nil {
			return fmt.Errorf("%s level %d: %w", side, i, err)
		}
		if err := checkVenues(info, l); err != nil {
			return fmt.Errorf("%s level %d: %w", side, i, err)
		}
		if seen != nil {
			if _, dup := seen[l.GetPrice()]; dup {
				return fmt.Errorf("%w: %s price %d", ErrDuplicateLevel, side, l.GetPrice())
			}
			seen[l.GetPrice()] = struct{}{}
			continue
		}
		for _, p := range levels[:i] {
			if p.GetPrice() == l.GetPrice() {
				return fmt.Errorf("%w: %s price %d", ErrDuplicateLevel, side, l.GetPrice())
			}
		}
	}
	return nil
}

// checkVenues checks a level's venues against its instrument: only a consolidated instrument's
// levels carry them, every level it holds names at least one member, and no bit names a venue
// beyond its members.
func checkVenues(info *tickwirev1.InstrumentInfo, l *tickwirev1.Level) error {
	v, n := l.GetVenues(), len(info.GetMembers())
	switch {
	case n == 0 && v != 0:
		return fmt.Errorf("%w: venues %#x on %s, which is not consolidated", ErrVenues, v, info.GetId())
	case n == 0:
		return nil
	case l.GetSize() == 0 && v != 0:
		return fmt.Errorf("%w: venues %#x on a removed level", ErrVenues, v)
	case l.GetSize() > 0 && v == 0:
		return fmt.Errorf("%w: no venue on a level of %s", ErrVenues, info.GetId())
	case n < 32 && v>>n != 0:
		return fmt.Errorf("%w: venues %#x beyond the %d members", ErrVenues, v, n)
	}
	return nil
}

func (st *instState) apply(bu *tickwirev1.BookUpdate) {
	if bu.GetSnapshot() {
		clear(st.bids)
		clear(st.asks)
		st.bestBid, st.bestAsk = 0, 0
	}
	for _, l := range bu.GetBids() {
		p := l.GetPrice()
		if l.GetSize() == 0 {
			delete(st.bids, p)
			if p == st.bestBid {
				st.bestBid = 0 // rescan when needed
			}
			continue
		}
		st.bids[p] = l.GetSize()
		if st.bestBid != 0 && p > st.bestBid {
			st.bestBid = p
		}
	}
	for _, l := range bu.GetAsks() {
		p := l.GetPrice()
		if l.GetSize() == 0 {
			delete(st.asks, p)
			if p == st.bestAsk {
				st.bestAsk = 0
			}
			continue
		}
		st.asks[p] = l.GetSize()
		if st.bestAsk != 0 && p < st.bestAsk {
			st.bestAsk = p
		}
	}
}

// crossed reports best bid >= best ask. A best price removed by an update is found again by
// scanning its side (books here are tens to hundreds of levels).
func (st *instState) crossed() bool {
	if len(st.bids) == 0 || len(st.asks) == 0 {
		return false
	}
	if st.bestBid == 0 {
		for p := range st.bids {
			st.bestBid = max(st.bestBid, p)
		}
	}
	if st.bestAsk == 0 {
		for p := range st.asks {
			if st.bestAsk == 0 || p < st.bestAsk {
				st.bestAsk = p
			}
		}
	}
	return st.bestBid >= st.bestAsk
}
