package feed

import (
	"fmt"
	"math"
	"net/http"
	"net/url"
	"reflect"
	"testing"
	"time"

	"golang.org/x/time/rate"

	pb "github.com/tickwire/tickwire/pkg/proto/tickwire/v1"
)

func tradeEv(id string, tsNs, price, size int64) *pb.Event {
	return &pb.Event{Instrument: id, VenueTimeNs: tsNs, Body: &pb.Event_Trade{Trade: &pb.Trade{Price: price, Size: size}}}
}

// TestCandleStoreFold: trades fold into one bar per period with trades, open and close by
// event time; invalid trades, malformed ids and other events are ignored; a late trade joins its period's bar
// if there is one and is dropped otherwise (as pkg/market's bars).
func TestCandleStoreFold(t *testing.T) {
	const s = int64(1e9)
	c := newCandleStore(60, 100, nil)
	for _, ev := range []*pb.Event{
		tradeEv("x:A", 60*s+5*s, 100, 1),
		tradeEv("x:A", 60*s+1*s, 90, 2), // late within the bar, earliest: the new open
		tradeEv("x:A", 60*s+59*s, 110, 3),
		tradeEv("x:A", 60*s+30*s, 80, 1), // late, mid bar: low only
		tradeEv("x:A", 180*s, 120, 1),    // a bar at 180; none at 120
		tradeEv("x:A", 121*s, 1, 1),      // late for 120, which has no bar: dropped
		tradeEv("x:A", 61*s, 200, 1),     // late for 60, which has one: joins it
		tradeEv("x:A", 181*s, 0, 1),      // invalid price
		tradeEv("x:A", 182*s, 10, 0),     // invalid size
		{Instrument: "x:A", VenueTimeNs: 183 * s, Body: &pb.Event_Quote{Quote: &pb.Quote{BidPrice: 1}}},
		{Instrument: "x:A", IngestTimeNs: 184 * s, Body: &pb.Event_Trade{Trade: &pb.Trade{Price: 121, Size: 1}}}, // no venue time: ingest time
	} {
		c.observe(ev)
	}
	c.observe(tradeEv("not an id", 60*s, 100, 1))
	if len(c.insts) != 1 {
		t.Fatalf("%d instruments: a trade under a malformed id was kept", len(c.insts))
	}
	got := c.insts["x:A"].bars
	want := []storedBar{
		{startNs: 60 * s, open: 90, high: 200, low: 80, close: 110, volume: 8, count: 5, firstNs: 61 * s, lastNs: 119 * s},
		{startNs: 180 * s, open: 120, high: 121, low: 120, close: 121, volume: 2, count: 2, firstNs: 180 * s, lastNs: 184 * s},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("bars\n%+v\nwant\n%+v", got, want)
	}
	if c.held.Load() != 2 {
		t.Errorf("held %d, want 2", c.held.Load())
	}
}

// TestCandleStoreSpan: the store keeps the bars of the last keep periods back from the newest
// bar, whatever the gaps between them, and counts what it holds.
func TestCandleStoreSpan(t *testing.T) {
	const s = int64(1e9)
	var gauge int
	c := newCandleStore(60, 3, func(d int) { gauge += d })
	starts := func() []int64 {
		var out []int64
		sb := c.insts["x:A"]
		for _, b := range sb.bars[sb.head:] {
			out = append(out, b.startNs/s)
		}
		return out
	}
	for _, tc := range []struct {
		at   int64 // trade time, s
		want []int64
	}{
		{0, []int64{0}},
		{60, []int64{0, 60}},
		{120, []int64{0, 60, 120}}, // at the limit: 3 periods
		{180, []int64{60, 120, 180}},
		{420, []int64{420}}, // 300 and 360 had no trade: 240.. kept, nothing there
		{480, []int64{420, 480}},
	} {
		c.observe(tradeEv("x:A", tc.at*s, 10, 1))
		if got := starts(); !reflect.DeepEqual(got, tc.want) {
			t.Fatalf("after a trade at %d: bars %v, want %v", tc.at, got, tc.want)
		}
		if gauge != len(tc.want) || c.held.Load() != int64(len(tc.want)) {
			t.Fatalf("after a trade at %d: gauge %d held %d, want %d", tc.at, gauge, c.held.Load(), len(tc.want))
		}
	}
	// A long run reclaims the dropped prefix: the slice stays near keep.
	for i := range int64(10_000) {
		c.observe(tradeEv("x:A", (600+60*i)*s, 10, 1))
	}
	if sb := c.insts["x:A"]; len(sb.bars) > 3*2+64+1 {
		t.Errorf("%d bars in the slice for 3 kept", len(sb.bars))
	}
}

// TestCandleStoreQuery: a window is planned as whole stored bars, plus reads of the event store
// for the ends that cut a bar in two, and nothing else.
func TestCandleStoreQuery(t *testing.T) {
	const s = int64(1e9)
	c := newCandleStore(60, 1000, nil)
	// Bars at 60 (trades at 70..100 s), 120 (130..170), 240 (250..290).
	for _, ts := range []int64{70, 100, 130, 170, 250, 290} {
		c.observe(tradeEv("x:A", ts*s, 10, 1))
	}
	sp := func(a, b int64) nsSpan { return nsSpan{a * s, b * s} }
	for _, tc := range []struct {
		name       string
		w          nsSpan
		bars       []int64 // starts, s
		head, tail nsSpan
	}{
		{"aligned", sp(60, 300), []int64{60, 120, 240}, nsSpan{}, nsSpan{}},
		{"aligned, inner", sp(120, 240), []int64{120}, nsSpan{}, nsSpan{}},
		{"from cuts no trade", sp(65, 300), []int64{60, 120, 240}, nsSpan{}, nsSpan{}},
		{"from cuts trades", sp(80, 300), []int64{120, 240}, sp(80, 120), nsSpan{}},
		{"to cuts no trade", sp(60, 295), []int64{60, 120, 240}, nsSpan{}, nsSpan{}},
		{"to cuts trades", sp(60, 280), []int64{60, 120}, nsSpan{}, sp(240, 280)},
		{"both cut", sp(80, 280), []int64{120}, sp(80, 120), sp(240, 280)},
		{"cut in a period without a bar", sp(190, 230), nil, nsSpan{}, nsSpan{}},
		{"inside one bar, holding all", sp(125, 175), []int64{120}, nsSpan{}, nsSpan{}},
		{"inside one bar, cutting it", sp(125, 150), nil, sp(125, 150), nsSpan{}},
		{"before every bar", sp(0, 60), nil, nsSpan{}, nsSpan{}},
		{"after every bar", sp(300, 900), nil, nsSpan{}, nsSpan{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := c.query("x:A", tc.w)
			var starts []int64
			for _, b := range p.bars {
				starts = append(starts, b.startNs/s)
			}
			if !reflect.DeepEqual(starts, tc.bars) || p.head != tc.head || p.tail != tc.tail {
				t.Fatalf("bars %v head %v tail %v, want %v %v %v", starts, p.head, p.tail, tc.bars, tc.head, tc.tail)
			}
			// Folded under the lock when nothing is to be read: the same bars as the copies.
			fold, want := &barBuilder{ivS: 60}, &barBuilder{ivS: 60}
			for i := range p.bars {
				want.addBar(&p.bars[i])
			}
			_, folded := c.queryInto("x:A", tc.w, fold)
			if folded != (p.reads() == 0) {
				t.Fatalf("folded %v with %d reads", folded, p.reads())
			}
			if folded {
				sameCandles(t, "folded", fold.out, want.out)
			}
		})
	}
	if p := c.query("x:B", sp(0, 900)); p.bars != nil || p.reads() != 0 {
		t.Errorf("unknown instrument: %+v", p)
	}
}

// TestBarBuilder: pieces fold into bars of the interval; a piece older than the latest bar is
// dropped.
func TestBarBuilder(t *testing.T) {
	const s = int64(1e9)
	b := &barBuilder{ivS: 300}
	b.add(60*s, 10, 12, 9, 11, 5, 2)
	b.add(120*s, 11, 15, 11, 14, 1, 1)
	b.add(300*s, 14, 14, 13, 13, 2, 1)
	b.add(299*s, 1, 1, 1, 1, 1, 1) // late: dropped
	b.addTrades([]trade{{ts: 310 * s, price: 16, size: 3}})
	want := []*pb.Candle{
		{IntervalS: 300, StartS: 0, Open: 10, High: 15, Low: 9, Close: 14, Volume: 6, TradeCount: 3},
		{IntervalS: 300, StartS: 300, Open: 14, High: 16, Low: 13, Close: 16, Volume: 5, TradeCount: 2},
	}
	sameCandles(t, "builder", b.out, want)
}

// TestParseCandleRequest: what a request may ask, and the code of each refusal.
func TestParseCandleRequest(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	for _, tc := range []struct {
		query    string
		code     string
		from, to int64 // s, when accepted
	}{
		{"instrument=x:A&interval=60&from=1699999000&to=1700000000", "", 1699999000, 1700000000},
		{"instrument=x:A&interval=60", "", 1700000000 - 300*60, 1700000000}, // defaults: 300 bars up to now
		{"instrument=x:A&interval=60&to=2023-11-14T22:13:20Z", "", 1700000000 - 300*60, 1700000000},
		{"instrument=x:A&interval=1&from=1699990000&to=1700000000", "", 1699990000, 1700000000},  // 10,000 bars: at the limit
		{"instrument=x:A&interval=1&from=1699989999&to=1700000000", refTooManyBars, 0, 0},        // 10,001
		{"instrument=x:A&interval=60&from=1699400000&to=1700000000", "", 1699400000, 1700000000}, // 10,000 bars of 60 s
		{"instrument=x:A&interval=60&from=1699399999&to=1700000000", refTooManyBars, 0, 0},       // a part of a 10,001st
		{"instrument=x:A&interval=60&from=0&to=60", "", 0, 60},
		{"instrument=x:A&interval=60&from=-1&to=60", refBadRequest, 0, 0},
		{"instrument=x:A&interval=60&from=1900-01-01T00:00:00Z&to=60", refBadRequest, 0, 0},
		{"instrument=nope&interval=60", refBadRequest, 0, 0},
		{"interval=60", refBadRequest, 0, 0},
		{"instrument=x:A&interval=7", refBadRequest, 0, 0},
		{"instrument=x:A&interval=0", refBadRequest, 0, 0},
		{"instrument=x:A&interval=x", refBadRequest, 0, 0},
		{"instrument=x:A&interval=172800", refBadRequest, 0, 0},
		{"instrument=x:A&interval=60&from=1700000000&to=1700000000", refBadRequest, 0, 0},
		{"instrument=x:A&interval=60&from=yesterday", refBadRequest, 0, 0},
		{"instrument=x:A&interval=60&to=9999999999999", refBadRequest, 0, 0},
		{"instrument=x:A&interval=60&to=2300-01-01T00:00:00Z", refBadRequest, 0, 0},
		{"instrument=x:A&interval=60&from=-9223372036854775808&to=60", refBadRequest, 0, 0},
	} {
		t.Run(tc.query, func(t *testing.T) {
			q, err := url.ParseQuery(tc.query)
			if err != nil {
				t.Fatal(err)
			}
			req, cerr := parseCandleRequest(q, now, 10_000)
			switch {
			case tc.code == "" && cerr != nil:
				t.Fatalf("refused: %v", cerr)
			case tc.code != "" && (cerr == nil || cerr.code != tc.code || cerr.status != http.StatusBadRequest):
				t.Fatalf("got %v, want 400 %s", cerr, tc.code)
			case tc.code == "" && (req.w != nsSpan{tc.from * 1e9, tc.to * 1e9}):
				t.Fatalf("window %v, want [%d, %d)", req.w, tc.from, tc.to)
			}
		})
	}
}

// TestClientRates: each address has its own bucket: Burst requests at once, then one per
// 1/Rate, with the wait said; past maxRateClients addresses, idle ones make room, and active
// ones are not forgotten.
func TestClientRates(t *testing.T) {
	t0 := time.Unix(1_700_000_000, 0)
	c := newClientRates(rate.Limit(2), 3)
	for i := range 3 {
		if ok, _ := c.allow("a", t0); !ok {
			t.Fatalf("request %d of the burst refused", i+1)
		}
	}
	ok, wait := c.allow("a", t0)
	if ok || wait != 500*time.Millisecond {
		t.Fatalf("past the burst: %v, wait %v; want refused, 500ms", ok, wait)
	}
	if ok, _ := c.allow("b", t0); !ok {
		t.Fatal("another address shares the bucket")
	}
	if ok, _ := c.allow("a", t0.Add(499*time.Millisecond)); ok {
		t.Fatal("a token before its time")
	}
	if ok, _ := c.allow("a", t0.Add(500*time.Millisecond)); !ok {
		t.Fatal("no token after 1/rate")
	}

	// Fill the table: "a" is active (empty bucket), the rest idle once a second has passed.
	for i := len(c.buckets); i < maxRateClients; i++ {
		c.allow(fmt.Sprint("idle", i), t0)
	}
	if ok, _ := c.allow("new", t0.Add(time.Millisecond)); ok {
		t.Fatal("a new address admitted past maxRateClients while none is idle")
	}
	later := t0.Add(2 * time.Second)
	c.allow("a", later) // a stays active
	c.allow("a", later)
	c.allow("a", later)
	if ok, _ := c.allow("new", later); !ok {
		t.Fatal("idle addresses not swept for a new one")
	}
	if _, kept := c.buckets["a"]; !kept {
		t.Fatal("an active address was forgotten: it would get a fresh burst")
	}
	if len(c.buckets) != 2 {
		t.Errorf("%d addresses after the sweep, want 2 (a, new)", len(c.buckets))
	}
}

// TestCandlesConfigDefaults: the documented defaults, and the settings refused at start.
func TestCandlesConfigDefaults(t *testing.T) {
	d := CandlesConfig{}.withDefaults()
	want := CandlesConfig{StoreInterval: 60, StoreSpan: 24 * time.Hour, MaxBars: 10_000, MaxScanWindow: 5 * time.Minute,
		MaxScanEvents: 50_000, ScanRate: 10_000, MaxScans: 1, MaxInFlight: 4, Rate: 5, Burst: 20, GlobalRate: 50, GlobalBurst: 50,
		ScanTimeout: 5 * time.Second}
	if d != want {
		t.Fatalf("defaults %+v\nwant %+v", d, want)
	}
	if d.storeBars() != 1440 {
		t.Errorf("%d bars kept per instrument, want 1440", d.storeBars())
	}
	for _, tc := range []struct {
		cfg CandlesConfig
		ok  bool
	}{
		{CandlesConfig{}, true},
		{CandlesConfig{StoreInterval: -1}, true},
		{CandlesConfig{StoreInterval: 7}, false},
		{CandlesConfig{StoreInterval: 3600, StoreSpan: time.Minute}, false},
		{CandlesConfig{StoreInterval: 1, StoreSpan: 1_000_000 * time.Second}, true}, // at the limit
		{CandlesConfig{StoreInterval: 1, StoreSpan: 1_000_001 * time.Second}, false},
		{CandlesConfig{ScanRate: math.Inf(1)}, false},
		{CandlesConfig{GlobalRate: math.NaN()}, false},
	} {
		if err := tc.cfg.validate(); (err == nil) != tc.ok {
			t.Errorf("%+v: %v", tc.cfg, err)
		}
	}
}

// TestScanBudget: reads are charged what they read when they end; a read may start while the
// bucket holds at least one event, and is told how long until it does otherwise.
func TestScanBudget(t *testing.T) {
	t0 := time.Unix(1_700_000_000, 0)
	b := &scanBudget{lim: rate.NewLimiter(10, 100)} // 10 events/s, at most 100 in one read
	if ok, _ := b.admit(t0); !ok {
		t.Fatal("a full bucket refused a read")
	}
	b.charge(t0, 99)
	if ok, _ := b.admit(t0); !ok {
		t.Fatal("one event left (at the limit): refused")
	}
	b.charge(t0, 1)
	ok, wait := b.admit(t0)
	if ok || wait != 100*time.Millisecond {
		t.Fatalf("empty bucket: %v, wait %v; want refused, 100ms (one event at 10/s)", ok, wait)
	}
	b.charge(t0, 100) // a read admitted before, ending now: into debt
	if ok, wait := b.admit(t0); ok || wait != 10100*time.Millisecond {
		t.Fatalf("in debt of 100: %v, wait %v; want refused, 10.1s", ok, wait)
	}
	if ok, _ := b.admit(t0.Add(10100 * time.Millisecond)); !ok {
		t.Fatal("debt repaid: refused")
	}
}
