package normalize

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	tickwirev1 "github.com/tickwire/tickwire/pkg/proto/tickwire/v1"
)

const inst = "test:ABC"

func info() *tickwirev1.InstrumentInfo {
	return &tickwirev1.InstrumentInfo{Id: inst, Venue: "test", Symbol: "ABC", PriceScale: 2, SizeScale: 4, TickSize: 5, LotSize: 10}
}

func infoEvent(i *tickwirev1.InstrumentInfo) *tickwirev1.Event {
	return &tickwirev1.Event{Instrument: i.GetId(), Body: &tickwirev1.Event_Info{Info: i}}
}

func book(snapshot bool, bids, asks [][2]int64) *tickwirev1.Event {
	bu := &tickwirev1.BookUpdate{Snapshot: snapshot}
	for _, l := range bids {
		bu.Bids = append(bu.Bids, &tickwirev1.Level{Price: l[0], Size: l[1]})
	}
	for _, l := range asks {
		bu.Asks = append(bu.Asks, &tickwirev1.Level{Price: l[0], Size: l[1]})
	}
	return &tickwirev1.Event{Instrument: inst, Body: &tickwirev1.Event_Book{Book: bu}}
}

func trade(p, s int64) *tickwirev1.Event {
	return &tickwirev1.Event{Instrument: inst, Body: &tickwirev1.Event_Trade{Trade: &tickwirev1.Trade{Price: p, Size: s, Side: tickwirev1.Side_SIDE_BUY}}}
}

func TestValidatorRejects(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	bad := info()
	bad.TickSize = -1 // 0 is "not known", valid
	tests := []struct {
		name   string
		ev     *tickwirev1.Event
		err    error
		reason string
	}{
		{"unknown instrument", &tickwirev1.Event{Instrument: "test:XYZ", Body: trade(100, 10).Body}, ErrUnknownInstrument, ReasonUnknownInstrument},
		{"bad id", &tickwirev1.Event{Instrument: "Test:XYZ", Body: trade(100, 10).Body}, ErrInstrumentID, ReasonOther},
		{"bad info", infoEvent(bad), ErrBadInfo, ReasonBadInfo},
		{"no body", &tickwirev1.Event{Instrument: inst}, ErrNoBody, ReasonNoBody},
		{"trade zero price", trade(0, 10), ErrPrice, ReasonPrice},
		{"trade negative price", trade(-5, 10), ErrPrice, ReasonPrice},
		{"trade zero size", trade(100, 0), ErrSize, ReasonSize},
		{"trade off tick", trade(101, 10), ErrTick, ReasonTick},
		{"trade off lot", trade(100, 15), ErrLot, ReasonLot},
		{"book negative size", book(false, [][2]int64{{100, -10}}, nil), ErrSize, ReasonSize},
		{"snapshot zero size", book(true, [][2]int64{{100, 0}}, nil), ErrSize, ReasonSize},
		{"book off tick", book(false, nil, [][2]int64{{103, 10}}), ErrTick, ReasonTick},
		{"book off lot", book(false, nil, [][2]int64{{105, 11}}), ErrLot, ReasonLot},
		{"book zero price", book(false, [][2]int64{{0, 10}}, nil), ErrPrice, ReasonPrice},
		{"duplicate level", book(true, [][2]int64{{100, 10}, {95, 10}, {100, 20}}, nil), ErrDuplicateLevel, ReasonDuplicateLevel},
		{"future time", func() *tickwirev1.Event {
			e := trade(100, 10)
			e.VenueTimeNs = now.Add(6 * time.Second).UnixNano()
			return e
		}(), ErrFutureTime, ReasonFutureTime},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reg := prometheus.NewRegistry()
			v, err := NewValidator(nil, reg)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := v.Validate(infoEvent(info()), now); err != nil {
				t.Fatal(err)
			}
			_, err = v.Validate(tt.ev, now)
			if !errors.Is(err, tt.err) {
				t.Fatalf("err = %v, want %v", err, tt.err)
			}
			var re *RejectError
			if !errors.As(err, &re) || re.Reason != tt.reason {
				t.Fatalf("reason of %v = %+v, want %s", err, re, tt.reason)
			}
			if got := testutil.ToFloat64(v.rejected.WithLabelValues(tt.ev.GetInstrument(), tt.reason)); got != 1 {
				t.Fatalf("counter = %v, want 1", got)
			}
		})
	}
}

func TestValidatorAcceptsAndFlagsCrossed(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	v, err := NewValidator(nil, prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		ev      *tickwirev1.Event
		crossed bool
	}{
		{infoEvent(info()), false},
		{book(true, [][2]int64{{100, 10}, {95, 20}}, [][2]int64{{105, 10}, {110, 30}}), false},
		{trade(105, 10), false},
		{book(false, nil, [][2]int64{{105, 0}}), false},          // remove best ask
		{book(false, [][2]int64{{110, 10}}, nil), true},          // bid at the ask: crossed, kept
		{book(false, [][2]int64{{110, 0}}, nil), false},          // uncrossed again
		{book(false, [][2]int64{{100, 0}, {95, 0}}, nil), false}, // empty bid side
	}
	for i, s := range steps {
		crossed, err := v.Validate(s.ev, now)
		if err != nil || crossed != s.crossed {
			t.Fatalf("step %d: crossed=%t err=%v, want %t", i, crossed, err, s.crossed)
		}
	}
	if got := testutil.ToFloat64(v.rejected.WithLabelValues(inst, ReasonCrossed)); got != 1 {
		t.Fatalf("crossed counter = %v", got)
	}
}

func TestParseInstrumentID(t *testing.T) {
	tests := []struct {
		id, venue, symbol string
		ok                bool
	}{
		{"coinbase:BTC-USD", "coinbase", "BTC-USD", true},
		{"kraken:XBT/USD", "kraken", "XBT/USD", true},
		{"x:a:b", "x", "a:b", true},
		{"Coinbase:BTC", "", "", false},
		{"coinbase", "", "", false},
		{":BTC", "", "", false},
		{"coinbase:", "", "", false},
		{"coinbase:BTC USD", "", "", false},
		{"coinbase:BTC\x00", "", "", false},
		{"x:é", "", "", false}, // feed and clients take printable ASCII only
		{"coinbase:" + strings.Repeat("A", 65), "", "", false},
		{"coinbase:" + strings.Repeat("A", 64), "coinbase", strings.Repeat("A", 64), true},
	}
	for _, tt := range tests {
		v, s, err := ParseInstrumentID(tt.id)
		if (err == nil) != tt.ok || v != tt.venue || s != tt.symbol {
			t.Errorf("ParseInstrumentID(%q) = %q, %q, %v", tt.id, v, s, err)
		}
		if err != nil && !errors.Is(err, ErrInstrumentID) {
			t.Errorf("error %v does not wrap ErrInstrumentID", err)
		}
	}
}

type fakeStore map[string][2]uint64

func (f fakeStore) LastPosition(_ context.Context, inst string) (uint64, uint64, bool, error) {
	p, ok := f[inst]
	return p[0], p[1], ok, nil
}

func TestSequencer(t *testing.T) {
	ctx := context.Background()
	clock := time.Unix(1_700_000_000, 0)
	s := NewSequencer(fakeStore{"a:X": {1_600_000_000, 41}}, func() time.Time { return clock })
	check := func(inst string, wantEpoch, wantSeq uint64) {
		t.Helper()
		e, q, err := s.Next(ctx, inst)
		if err != nil || e != wantEpoch || q != wantSeq {
			t.Fatalf("Next(%s) = %d/%d %v, want %d/%d", inst, e, q, err, wantEpoch, wantSeq)
		}
	}
	check("a:X", 1_600_000_000, 42) // continues from the store
	check("a:X", 1_600_000_000, 43)
	check("a:Y", 1_700_000_000, 1) // unknown: new epoch = now
	check("a:Y", 1_700_000_000, 2)
	// New epoch in the same second must still grow.
	if e, err := s.NewEpoch(ctx, "a:Y"); err != nil || e != 1_700_000_001 {
		t.Fatalf("NewEpoch = %d, %v", e, err)
	}
	check("a:Y", 1_700_000_001, 1)
	clock = clock.Add(time.Hour)
	if e, _ := s.NewEpoch(ctx, "a:X"); e != uint64(clock.Unix()) {
		t.Fatalf("NewEpoch = %d", e)
	}
	check("a:X", uint64(clock.Unix()), 1)
	if s.Len() != 2 {
		t.Fatalf("Len = %d", s.Len())
	}
}

// TestValidatorConsolidated: members only on a consolidated instrument, 2..MaxMembers distinct
// ones; venues only on its levels, within its members; its crossed book is not a fault.
func TestValidatorConsolidated(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	const cid = "consolidated:ABC"
	cinfo := func(members ...string) *tickwirev1.InstrumentInfo {
		return &tickwirev1.InstrumentInfo{Id: cid, Venue: ConsolidatedVenue, Symbol: "ABC", PriceScale: 2, SizeScale: 4, Members: members}
	}
	lv := func(p, s int64, v uint32) *tickwirev1.Level { return &tickwirev1.Level{Price: p, Size: s, Venues: v} }
	cbook := func(snapshot bool, bids []*tickwirev1.Level, asks ...*tickwirev1.Level) *tickwirev1.Event {
		return &tickwirev1.Event{Instrument: cid, Body: &tickwirev1.Event_Book{Book: &tickwirev1.BookUpdate{Snapshot: snapshot, Bids: bids, Asks: asks}}}
	}
	many := make([]string, MaxMembers+1)
	for i := range many {
		many[i] = "v" + strings.Repeat("x", i) + ":ABC"
	}
	plain := book(false, nil, nil)
	plain.GetBook().Bids = []*tickwirev1.Level{lv(100, 10, 1)}
	tests := []struct {
		name string
		ev   *tickwirev1.Event
		err  error // nil: accepted
	}{
		{"two members", infoEvent(cinfo("a:ABC", "b:ABC")), nil},
		{"thirty-two members", infoEvent(cinfo(many[:MaxMembers]...)), nil},
		{"thirty-three members", infoEvent(cinfo(many...)), ErrBadInfo},
		{"one member", infoEvent(cinfo("a:ABC")), ErrBadInfo},
		{"member twice", infoEvent(cinfo("a:ABC", "a:ABC")), ErrBadInfo},
		{"consolidated member", infoEvent(cinfo("a:ABC", "consolidated:XYZ")), ErrBadInfo},
		{"bad member id", infoEvent(cinfo("a:ABC", "nocolon")), ErrBadInfo},
		{"members on a plain instrument", infoEvent(func() *tickwirev1.InstrumentInfo { i := info(); i.Members = []string{"a:ABC", "b:ABC"}; return i }()), ErrBadInfo},
		{"venues on a plain book", plain, ErrVenues},
		{"levels with venues", cbook(true, []*tickwirev1.Level{lv(100, 10, 1), lv(99, 5, 3)}), nil},
		{"last member's bit", cbook(false, []*tickwirev1.Level{lv(100, 10, 2)}), nil},
		{"bit beyond the members", cbook(false, []*tickwirev1.Level{lv(100, 10, 4)}), ErrVenues},
		{"level without a venue", cbook(false, []*tickwirev1.Level{lv(100, 10, 0)}), ErrVenues},
		{"venues on a removal", cbook(false, []*tickwirev1.Level{lv(100, 0, 1)}), ErrVenues},
		{"removal", cbook(false, []*tickwirev1.Level{lv(100, 0, 0)}), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, err := NewValidator(nil, prometheus.NewRegistry())
			if err != nil {
				t.Fatal(err)
			}
			for _, setup := range []*tickwirev1.Event{infoEvent(info()), infoEvent(cinfo("a:ABC", "b:ABC"))} {
				if _, err := v.Validate(setup, now); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := v.Validate(tt.ev, now); !errors.Is(err, tt.err) || (tt.err == nil) != (err == nil) {
				t.Fatalf("err = %v, want %v", err, tt.err)
			}
		})
	}
	// Venues' books cross each other: counted for a single venue's book, not for a consolidated one.
	v, _ := NewValidator(nil, prometheus.NewRegistry())
	for _, ev := range []*tickwirev1.Event{infoEvent(cinfo("a:ABC", "b:ABC")),
		cbook(true, []*tickwirev1.Level{lv(105, 10, 1)}, lv(100, 10, 2))} {
		crossed, err := v.Validate(ev, now)
		if err != nil || crossed {
			t.Fatalf("crossed=%t err=%v on a consolidated book", crossed, err)
		}
	}
}
