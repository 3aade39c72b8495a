// Package consolidated builds consolidated instruments: one asset's books from several venues
// merged into one stream ("consolidated:BTC-USD" from "coinbase:BTC-USD", "kraken:BTC/USD",
// ...), whose quote is the best bid and offer across the venues and whose every book level
// names the venues quoting at its price (docs/PROTOCOL.md section 5.4).
//
// It is an ingest source fed by the members' own normalized events (read back from NATS), so
// the consolidated stream is sequenced, validated, checksummed and stored like any other.
// Merge is a pure state machine; Source runs it on a member feed.
package consolidated

import (
	"cmp"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/tickwire/tickwire/internal/normalize"
	tickwirev1 "github.com/tickwire/tickwire/pkg/proto/tickwire/v1"
)

// Spec names a consolidated instrument and its members, in the order of the venue bits.
type Spec struct {
	ID      string   // "consolidated:BTC-USD"
	Members []string // "coinbase:BTC-USD", "kraken:BTC/USD", ...
}

// ErrSpec: an invalid Spec or --consolidate value.
var ErrSpec = errors.New("consolidated: invalid spec")

// ParseSpec parses "consolidated:SYMBOL=member,member,..." (the venue part may be left out:
// "BTC-USD=coinbase:BTC-USD,kraken:BTC/USD").
func ParseSpec(s string) (Spec, error) {
	id, list, ok := strings.Cut(s, "=")
	if !ok || list == "" {
		return Spec{}, fmt.Errorf("%w: %q: want consolidated:SYMBOL=member,member,...", ErrSpec, s)
	}
	if !strings.Contains(id, ":") {
		id = normalize.ConsolidatedVenue + ":" + id
	}
	sp := Spec{ID: id, Members: strings.Split(list, ",")}
	return sp, sp.Validate()
}

// Validate checks the id (venue "consolidated") and the members (2..normalize.MaxMembers
// distinct valid ids of other venues), as the reference data will be checked downstream.
func (s Spec) Validate() error {
	venue, symbol, err := normalize.ParseInstrumentID(s.ID)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrSpec, err)
	}
	if venue != normalize.ConsolidatedVenue {
		return fmt.Errorf("%w: %q: the venue must be %q", ErrSpec, s.ID, normalize.ConsolidatedVenue)
	}
	info := &tickwirev1.InstrumentInfo{Id: s.ID, Venue: venue, Symbol: symbol, Members: s.Members}
	if err := normalize.ValidateInfo(info); err != nil {
		return fmt.Errorf("%w: %w", ErrSpec, err)
	}
	return nil
}

// Drop reasons counted by Merge (tickwire_consolidated_dropped_total{reason}).
const (
	ReasonDuplicate  = "duplicate"       // a member event at or before the position already applied
	ReasonGap        = "member_gap"      // a member event after a gap: the member is reset
	ReasonUnsynced   = "member_unsynced" // a member book update before its snapshot
	ReasonScale      = "scale"           // a member price or size not exact at the merged scale
	ReasonNoInfo     = "no_info"         // a member event before its reference data
	ReasonNotStarted = "not_started"     // a member trade before the consolidated instrument started
)

// level is one merged level: the total size and which members quote there.
type level struct {
	size   int64
	venues uint32
}

type member struct {
	id     string
	bit    uint32
	info   *tickwirev1.InstrumentInfo
	epoch  uint64
	seq    uint64
	synced bool
	stale  bool // no event for longer than the source's StaleAfter: out of the merge
	// 10^(merged scale - member's), price and size; set at Start and with new reference data
	mulP, mulS int64
	bids       map[int64]int64 // the member's book at its own scale
	asks       map[int64]int64
}

// Merge is one consolidated instrument: its members' books and the merged book, at the
// finest price and size scale of the members. It is not safe for concurrent use.
//
// Continuity: a member event whose (epoch, seq) does not follow the last one applied resets
// the member: its levels leave the merged book until its next book snapshot (NeedSnapshot
// names it). A member's stale flag does the same for a member that went silent.
type Merge struct {
	spec    Spec
	members []*member
	byID    map[string]*member

	info    *tickwirev1.InstrumentInfo // nil until Start
	bids    map[int64]level            // merged book, at the merged scale
	asks    map[int64]level
	changed [2]map[int64]struct{} // merged prices changed since the last event emitted

	dropped func(reason string) // counts a dropped member event
}

// NewMerge returns the Merge of spec (validated). dropped, if not nil, counts each member
// event not merged, by reason.
func NewMerge(spec Spec, dropped func(reason string)) (*Merge, error) {
	if err := spec.Validate(); err != nil {
		return nil, err
	}
	if dropped == nil {
		dropped = func(string) {}
	}
	m := &Merge{spec: spec, byID: map[string]*member{}, bids: map[int64]level{}, asks: map[int64]level{},
		changed: [2]map[int64]struct{}{{}, {}}, dropped: dropped}
	for i, id := range spec.Members {
		mb := &member{id: id, bit: 1 << i, bids: map[int64]int64{}, asks: map[int64]int64{}}
		m.members = append(m.members, mb)
		m.byID[id] = mb
	}
	return m, nil
}

// ID returns the consolidated instrument's id.
func (m *Merge) ID() string { return m.spec.ID }

// Members returns the member ids, in bit order.
func (m *Merge) Members() []string { return m.spec.Members }

// Started reports whether Start has emitted the instrument's reference data.
func (m *Merge) Started() bool { return m.info != nil }

// Known reports how many members' reference data has arrived.
func (m *Merge) Known() int {
	n := 0
	for _, mb := range m.members {
		if mb.info != nil {
			n++
		}
	}
	return n
}

// NeedSnapshot returns the members whose books wait for a snapshot (to ask their ingest for
// one).
func (m *Merge) NeedSnapshot() []string {
	var out []string
	for _, mb := range m.members {
		if !mb.synced {
			out = append(out, mb.id)
		}
	}
	return out
}

// scales returns the merged reference data from the members known now: the finest price
// and size scales, tick and lot as the greatest common divisor of the members' at that scale
// (0, not known, if any known member's is not known), and trading if any member trades.
func (m *Merge) scales() *tickwirev1.InstrumentInfo {
	_, symbol, _ := strings.Cut(m.spec.ID, ":")
	info := &tickwirev1.InstrumentInfo{Id: m.spec.ID, Venue: normalize.ConsolidatedVenue, Symbol: symbol,
		Members: slices.Clone(m.spec.Members), Status: tickwirev1.InstrumentStatus_INSTRUMENT_STATUS_HALTED}
	first := true
	for _, mb := range m.members {
		if mb.info == nil {
			continue
		}
		if first {
			info.Base, info.Quote = mb.info.GetBase(), mb.info.GetQuote()
			first = false
		}
		info.PriceScale = max(info.PriceScale, mb.info.GetPriceScale())
		info.SizeScale = max(info.SizeScale, mb.info.GetSizeScale())
		if mb.info.GetStatus() == tickwirev1.InstrumentStatus_INSTRUMENT_STATUS_TRADING {
			info.Status = tickwirev1.InstrumentStatus_INSTRUMENT_STATUS_TRADING
		}
	}
	tick, lot, tickKnown, lotKnown := int64(0), int64(0), true, true
	for _, mb := range m.members {
		if mb.info == nil {
			continue
		}
		t, okT := rescale(mb.info.GetTickSize(), pow10(info.PriceScale-mb.info.GetPriceScale()))
		l, okL := rescale(mb.info.GetLotSize(), pow10(info.SizeScale-mb.info.GetSizeScale()))
		tickKnown = tickKnown && okT && t > 0
		lotKnown = lotKnown && okL && l > 0
		tick, lot = gcd(tick, t), gcd(lot, l)
	}
	if tickKnown {
		info.TickSize = tick
	}
	if lotKnown {
		info.LotSize = lot
	}
	return info
}

// Start fixes the merged scales from the members known now and emits the instrument's
// reference data and a book snapshot of the synced members. It is called once enough
// members are known (Source waits for all, or a while); a member whose reference data comes
// later at a finer scale restarts the instrument (Apply reports it).
func (m *Merge) Start(nowNs int64, emit func(*tickwirev1.Event) error) error {
	m.info = m.scales()
	clear(m.bids)
	clear(m.asks)
	for _, mb := range m.members {
		if mb.info == nil {
			continue
		}
		mb.mulP = pow10(m.info.PriceScale - mb.info.GetPriceScale())
		mb.mulS = pow10(m.info.SizeScale - mb.info.GetSizeScale())
		if mb.synced && !mb.stale {
			if !m.addMember(mb) {
				m.resetMember(mb, ReasonScale)
			}
		}
	}
	m.clearChanged()
	return m.Snapshot(nowNs, emit)
}

// Snapshot emits the reference data and a full book snapshot (after Start).
func (m *Merge) Snapshot(nowNs int64, emit func(*tickwirev1.Event) error) error {
	if m.info == nil {
		return nil
	}
	if err := emit(&tickwirev1.Event{Instrument: m.spec.ID, VenueTimeNs: nowNs, Body: &tickwirev1.Event_Info{Info: m.info}}); err != nil {
		return err
	}
	bu := &tickwirev1.BookUpdate{Snapshot: true, Bids: sorted(m.bids, true, nil), Asks: sorted(m.asks, false, nil)}
	return emit(&tickwirev1.Event{Instrument: m.spec.ID, VenueTimeNs: nowNs, Body: &tickwirev1.Event_Book{Book: bu}})
}

// errRestart: Apply needs the instrument restarted, since a member's reference data now needs
// a finer scale than the merged one. The caller starts a new epoch and calls Start again.
var errRestart = errors.New("consolidated: restart at a finer scale")

// Apply merges one member event and emits what it changes in the consolidated instrument: a
// book update with the merged levels whose size or venues changed, a trade (at the merged
// scale, its id prefixed with the member's venue), or new reference data. Quotes are not
// merged: the consolidated quote is the merged book's top. It returns an error only from emit,
// or errRestart (see Start); before Start it only keeps the member's state.
func (m *Merge) Apply(ev *tickwirev1.Event, emit func(*tickwirev1.Event) error) error {
	mb := m.byID[ev.GetInstrument()]
	if mb == nil {
		return nil
	}
	switch {
	case ev.GetEpoch() != mb.epoch:
		// A new epoch (or the first event seen): what came before is void; it starts with
		// reference data or a book snapshot.
		m.resetMember(mb, "")
	case ev.GetSeq() <= mb.seq:
		m.dropped(ReasonDuplicate)
		return nil
	case ev.GetSeq() != mb.seq+1:
		m.resetMember(mb, ReasonGap)
	}
	mb.epoch, mb.seq = ev.GetEpoch(), ev.GetSeq()
	mb.stale = false // it speaks again: it rejoins with its next snapshot
	// A reset's removals go out before what the event itself changes.
	if err := m.emitChanges(ev.GetVenueTimeNs(), emit); err != nil {
		return err
	}
	switch b := ev.GetBody().(type) {
	case *tickwirev1.Event_Info:
		return m.applyInfo(mb, b.Info, ev.GetVenueTimeNs(), emit)
	case *tickwirev1.Event_Book:
		if mb.info == nil {
			m.dropped(ReasonNoInfo)
			return nil
		}
		if !b.Book.GetSnapshot() && !mb.synced {
			m.dropped(ReasonUnsynced)
			return nil
		}
		if b.Book.GetSnapshot() {
			if m.info != nil && mb.synced {
				m.removeMember(mb)
			}
			clear(mb.bids)
			clear(mb.asks)
			mb.synced = true
		}
		if !m.applyLevels(mb, b.Book) {
			m.resetMember(mb, ReasonScale)
		}
		return m.emitChanges(ev.GetVenueTimeNs(), emit)
	case *tickwirev1.Event_Trade:
		switch {
		case mb.info == nil:
			m.dropped(ReasonNoInfo)
			return nil
		case m.info == nil:
			m.dropped(ReasonNotStarted) // before the instrument exists, a trade has nowhere to go
			return nil
		}
		t := b.Trade
		p, okP := rescale(t.GetPrice(), mb.mulP)
		s, okS := rescale(t.GetSize(), mb.mulS)
		if !okP || !okS {
			m.dropped(ReasonScale)
			return nil
		}
		venue, _, _ := strings.Cut(mb.id, ":")
		id := ""
		if t.GetTradeId() != "" {
			id = venue + ":" + t.GetTradeId()
		}
		return emit(&tickwirev1.Event{Instrument: m.spec.ID, VenueTimeNs: ev.GetVenueTimeNs(), Body: &tickwirev1.Event_Trade{
			Trade: &tickwirev1.Trade{Price: p, Size: s, Side: t.GetSide(), TradeId: id, History: t.GetHistory()}}})
	}
	return nil
}

func (m *Merge) applyInfo(mb *member, info *tickwirev1.InstrumentInfo, nowNs int64, emit func(*tickwirev1.Event) error) error {
	old := mb.info
	mb.info = info
	if m.info == nil {
		return nil
	}
	if info.GetPriceScale() > m.info.GetPriceScale() || info.GetSizeScale() > m.info.GetSizeScale() {
		return errRestart
	}
	if old != nil && (old.GetPriceScale() != info.GetPriceScale() || old.GetSizeScale() != info.GetSizeScale()) {
		// The member's book is at its old scale: out until its next snapshot.
		m.resetMember(mb, "")
	}
	mb.mulP = pow10(m.info.PriceScale - info.GetPriceScale())
	mb.mulS = pow10(m.info.SizeScale - info.GetSizeScale())
	next := m.scales()
	next.PriceScale, next.SizeScale = m.info.PriceScale, m.info.SizeScale
	if err := m.emitChanges(nowNs, emit); err != nil {
		return err
	}
	if equalInfo(next, m.info) {
		return nil
	}
	m.info = next
	return emit(&tickwirev1.Event{Instrument: m.spec.ID, VenueTimeNs: nowNs, Body: &tickwirev1.Event_Info{Info: next}})
}

// Stale takes a silent member out of the merged book (its levels leave it) until it speaks
// again and sends a snapshot; it emits the change.
func (m *Merge) Stale(id string, nowNs int64, emit func(*tickwirev1.Event) error) error {
	mb := m.byID[id]
	if mb == nil || mb.stale {
		return nil
	}
	m.resetMember(mb, "")
	mb.stale = true
	return m.emitChanges(nowNs, emit)
}

// resetMember forgets a member's book (its levels leave the merged book, to be emitted with
// the next change) and counts why, if reason is set.
func (m *Merge) resetMember(mb *member, reason string) {
	if reason != "" {
		m.dropped(reason)
	}
	if mb.synced && m.info != nil {
		m.removeMember(mb)
	}
	clear(mb.bids)
	clear(mb.asks)
	mb.synced = false
}

// removeMember takes the member's levels out of the merged book.
func (m *Merge) removeMember(mb *member) {
	for side, book := range [2]map[int64]int64{mb.bids, mb.asks} {
		for p, s := range book {
			m.merge(mb, side, p, s, 0) // cannot fail: the level was merged
		}
	}
}

// addMember merges the member's whole book (at Start); if a level does not fit the merged
// scale it takes back what it merged and reports false.
func (m *Merge) addMember(mb *member) bool {
	type lv struct {
		side        int
		price, size int64
	}
	var done []lv
	for side, book := range [2]map[int64]int64{mb.bids, mb.asks} {
		for p, s := range book {
			if !m.merge(mb, side, p, 0, s) {
				for _, d := range done {
					m.merge(mb, d.side, d.price, d.size, 0)
				}
				return false
			}
			done = append(done, lv{side, p, s})
		}
	}
	return true
}

func (m *Merge) applyLevels(mb *member, bu *tickwirev1.BookUpdate) bool {
	for side, levels := range [2][]*tickwirev1.Level{bu.GetBids(), bu.GetAsks()} {
		for _, l := range levels {
			if !m.setMember(mb, side, l.GetPrice(), max(l.GetSize(), 0)) {
				return false
			}
		}
	}
	return true
}

// setMember sets the member's size at price (its own scale) and, after Start, the merged level
// with it. It changes nothing and reports false when the value does not fit the merged scale.
func (m *Merge) setMember(mb *member, side int, price, size int64) bool {
	book := mb.bids
	if side == 1 {
		book = mb.asks
	}
	old := book[price]
	if m.info != nil && !m.merge(mb, side, price, old, size) {
		return false
	}
	if size == 0 {
		delete(book, price)
	} else {
		book[price] = size
	}
	return true
}

// merge changes the member's contribution to the merged level at price (its own scale) from
// old to size, recording the change. It changes nothing and reports false when a value does
// not fit the merged scale or the total would overflow.
func (m *Merge) merge(mb *member, side int, price, old, size int64) bool {
	p, ok := rescale(price, mb.mulP)
	o, ok2 := rescale(old, mb.mulS)
	s, ok3 := rescale(size, mb.mulS)
	if !ok || !ok2 || !ok3 {
		return false
	}
	book := m.bids
	if side == 1 {
		book = m.asks
	}
	l := book[p]
	if l.size-o > math.MaxInt64-s {
		return false
	}
	l.size += s - o
	if s > 0 {
		l.venues |= mb.bit
	} else {
		l.venues &^= mb.bit
	}
	if l.size <= 0 || l.venues == 0 {
		delete(book, p)
	} else {
		book[p] = l
	}
	m.changed[side][p] = struct{}{}
	return true
}

func (m *Merge) clearChanged() {
	clear(m.changed[0])
	clear(m.changed[1])
}

// emitChanges emits the merged levels changed since the last call as one book update.
func (m *Merge) emitChanges(nowNs int64, emit func(*tickwirev1.Event) error) error {
	if m.info == nil || len(m.changed[0])+len(m.changed[1]) == 0 {
		m.clearChanged()
		return nil
	}
	bu := &tickwirev1.BookUpdate{Bids: m.changes(0), Asks: m.changes(1)}
	m.clearChanged()
	return emit(&tickwirev1.Event{Instrument: m.spec.ID, VenueTimeNs: nowNs, Body: &tickwirev1.Event_Book{Book: bu}})
}

func (m *Merge) changes(side int) []*tickwirev1.Level {
	book := m.bids
	if side == 1 {
		book = m.asks
	}
	out := make([]*tickwirev1.Level, 0, len(m.changed[side]))
	for p := range m.changed[side] {
		l := book[p] // zero (a removal) when gone
		out = append(out, &tickwirev1.Level{Price: p, Size: l.size, Venues: l.venues})
	}
	sortLevels(out, side == 0)
	return out
}

// Book returns the merged book, best first (for tests and the source's checks).
func (m *Merge) Book() (bids, asks []*tickwirev1.Level) {
	return sorted(m.bids, true, nil), sorted(m.asks, false, nil)
}

func sorted(book map[int64]level, desc bool, dst []*tickwirev1.Level) []*tickwirev1.Level {
	for p, l := range book {
		dst = append(dst, &tickwirev1.Level{Price: p, Size: l.size, Venues: l.venues})
	}
	sortLevels(dst, desc)
	return dst
}

func sortLevels(levels []*tickwirev1.Level, desc bool) {
	slices.SortFunc(levels, func(a, b *tickwirev1.Level) int {
		if desc {
			return cmp.Compare(b.Price, a.Price)
		}
		return cmp.Compare(a.Price, b.Price)
	})
}

func equalInfo(a, b *tickwirev1.InstrumentInfo) bool {
	return a.GetTickSize() == b.GetTickSize() && a.GetLotSize() == b.GetLotSize() && a.GetStatus() == b.GetStatus() &&
		a.GetBase() == b.GetBase() && a.GetQuote() == b.GetQuote()
}

// rescale multiplies v by mul (a power of ten), reporting false on overflow or a zero mul.
func rescale(v, mul int64) (int64, bool) {
	if mul <= 0 {
		return 0, false
	}
	if v > math.MaxInt64/mul || v < math.MinInt64/mul {
		return 0, false
	}
	return v * mul, true
}

// pow10 returns 10^n for n in 0..18, and 0 (invalid) otherwise.
func pow10(n int32) int64 {
	if n < 0 || n > 18 {
		return 0
	}
	p := int64(1)
	for range n {
		p *= 10
	}
	return p
}

func gcd(a, b int64) int64 {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}
