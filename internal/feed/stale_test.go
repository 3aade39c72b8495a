package feed

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/tickwire/tickwire/internal/bus/bustest"
	"github.com/tickwire/tickwire/internal/source/synthetic"
	"github.com/tickwire/tickwire/internal/testwait"
	pb "github.com/tickwire/tickwire/pkg/proto/tickwire/v1"
)

func TestParseStaleRule(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want StaleRule
		bad  bool
	}{
		{in: "kraken:*=5m", want: StaleRule{"kraken:*", 5 * time.Minute}},
		{in: "binance:BTCUSDT=10s", want: StaleRule{"binance:BTCUSDT", 10 * time.Second}},
		{in: " lobster:* = 0 ", want: StaleRule{"lobster:*", 0}},
		{in: "*=2m", want: StaleRule{"*", 2 * time.Minute}},
		{in: "kraken:*", bad: true},
		{in: "=5m", bad: true},
		{in: "k*x=5m", bad: true},
		{in: "kraken:*=soon", bad: true},
	} {
		got, err := ParseStaleRule(tc.in)
		if (err != nil) != tc.bad || !tc.bad && got != tc.want {
			t.Errorf("ParseStaleRule(%q) = %+v, %v; want %+v (error %t)", tc.in, got, err, tc.want, tc.bad)
		}
	}
}

func TestStaleAfterLongestMatch(t *testing.T) {
	rules := []StaleRule{{"*", 2 * time.Minute}, {"kraken:*", 5 * time.Minute}, {"kraken:XBT/USD", 10 * time.Second},
		{"kraken:XBT/USD*", time.Hour}, {"lobster:*", 0}}
	for id, want := range map[string]time.Duration{
		"coinbase:BTC-USD":   2 * time.Minute,
		"kraken:ETH/USD":     5 * time.Minute,
		"kraken:XBT/USD":     10 * time.Second, // exact beats the prefix of the same length
		"kraken:XBT/USDT":    time.Hour,
		"lobster:AMZN":       0,
		"synthetic:whatever": 2 * time.Minute,
	} {
		if got := staleAfter(rules, time.Minute, id); got != want {
			t.Errorf("%s: %v, want %v", id, got, want)
		}
	}
	if got := staleAfter(nil, time.Minute, "x:A"); got != time.Minute {
		t.Errorf("no rules: %v", got)
	}
}

// fakeClock is a settable clock.
type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time          { return c.t }
func (c *fakeClock) advance(d time.Duration) { c.t = c.t.Add(d) }

func info(id string, status pb.InstrumentStatus) *pb.Event {
	return &pb.Event{Instrument: id, Body: &pb.Event_Info{Info: &pb.InstrumentInfo{Id: id, Status: status}}}
}

func tick(id string, ingestNs int64) *pb.Event {
	return &pb.Event{Instrument: id, IngestTimeNs: ingestNs, Body: &pb.Event_Trade{Trade: &pb.Trade{Price: 1, Size: 1}}}
}

// TestStalenessStates: which instruments are live and stale as the clock moves, without sockets.
func TestStalenessStates(t *testing.T) {
	clock := &fakeClock{t: time.Unix(1_800_000_000, 0)}
	reg := prometheus.NewRegistry()
	cfg := Config{StaleAfter: 10 * time.Second, StaleRules: []StaleRule{{"slow:*", time.Minute}, {"file:*", 0}}}.withDefaults()
	st := newStaleness(cfg, clock.now, slog.New(slog.DiscardHandler), reg)
	stale := func(id string) float64 { return testutil.ToFloat64(st.gauge.WithLabelValues(id)) }

	// Catching up: stored events count at their ingest time. x:OLD was last ingested an hour ago.
	st.observe(tick("x:OLD", clock.t.Add(-time.Hour).UnixNano()), false)
	st.observe(tick("x:NEW", clock.t.Add(-time.Second).UnixNano()), false)
	st.observe(tick("x:NEW", clock.t.Add(-time.Hour).UnixNano()), false) // an older one does not rewind
	st.observe(info("x:HALT", pb.InstrumentStatus_INSTRUMENT_STATUS_HALTED), false)
	st.observe(tick("file:F", 1), false)
	st.observe(tick("slow:S", 0), false) // no ingest time: counts now
	st.check()
	rep := st.report.Load()
	if rep.live != 3 || rep.nStale != 1 || len(rep.stale) != 1 || rep.stale[0] != "x:OLD" || rep.allStale() {
		t.Fatalf("after catch-up: %+v; want live x:OLD (stale), x:NEW, slow:S; x:HALT and file:F not live", rep)
	}
	if stale("x:OLD") != 1 || stale("x:NEW") != 0 || testutil.ToFloat64(st.nStale) != 1 || testutil.ToFloat64(st.nLive) != 3 {
		t.Fatal("metrics after catch-up")
	}

	// Live: events count at arrival, whatever their ingest time.
	st.observe(tick("x:OLD", 1), true)
	clock.advance(11 * time.Second)
	st.check()
	rep = st.report.Load()
	if rep.nStale != 2 || !equal(rep.stale, []string{"x:NEW", "x:OLD"}) {
		t.Fatalf("after 11 s: %+v; want x:NEW and x:OLD stale, slow:S (1 m) not", rep)
	}
	clock.advance(time.Minute)
	st.check()
	rep = st.report.Load()
	if !rep.allStale() || testutil.ToFloat64(st.allGone) != 1 || stale("slow:S") != 1 {
		t.Fatalf("after 71 s: %+v; want every live instrument stale", rep)
	}

	// One event of one instrument: not every live instrument is stale any more.
	st.observe(tick("slow:S", 0), true)
	st.check()
	if rep = st.report.Load(); rep.allStale() || rep.nStale != 2 || stale("slow:S") != 0 || testutil.ToFloat64(st.allGone) != 0 {
		t.Fatalf("after slow:S ticked: %+v", rep)
	}
	// Halted: not expected to tick, so not stale; trading again: live again.
	st.observe(info("x:NEW", pb.InstrumentStatus_INSTRUMENT_STATUS_CLOSED), true)
	st.check()
	if rep = st.report.Load(); rep.live != 2 || rep.nStale != 1 || stale("x:NEW") != 0 {
		t.Fatalf("after x:NEW closed: %+v", rep)
	}
}

func equal(a, b []string) bool { return strings.Join(a, ",") == strings.Join(b, ",") }

// TestStaleSeriesBounded: beyond maxStaleSeries instruments, no more label values.
func TestStaleSeriesBounded(t *testing.T) {
	reg := prometheus.NewRegistry()
	st := newStaleness(Config{}.withDefaults(), nil, slog.New(slog.DiscardHandler), reg)
	for i := range maxStaleSeries + 10 {
		st.observe(tick("x:I"+strings.Repeat("a", i%7)+time.Duration(i).String(), 0), true)
	}
	if n := testutil.CollectAndCount(st.gauge); n != maxStaleSeries {
		t.Fatalf("%d series; want %d", n, maxStaleSeries)
	}
	st.check()
	if rep := st.report.Load(); rep.live != maxStaleSeries+10 || len(rep.stale) != 0 {
		t.Fatalf("report %+v: every instrument is counted", rep)
	}
}

func getReadyz(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// TestReadyzStaleWhenPipelineStops: a feed whose events stop arriving (ingest down, the store
// refusing writes) reports 503 "stale" on /readyz once every live instrument is past its
// bound, and ready again when events arrive.
func TestReadyzStaleWhenPipelineStops(t *testing.T) {
	e := startEnv(t, Config{StaleAfter: 300 * time.Millisecond})
	p := newPublisher(t, e.bus, 3)
	p.publish(100)
	e.waitApplied(p)
	if code, body := getReadyz(t, e.http+"/readyz"); code != 200 || body != "ready\n" {
		t.Fatalf("/readyz with events flowing: %d %q", code, body)
	}

	// Nothing arrives any more.
	testwait.For(t, 5*time.Second, "/readyz to report stale", func() bool {
		code, _ := getReadyz(t, e.http+"/readyz")
		return code == http.StatusServiceUnavailable
	})
	if _, body := getReadyz(t, e.http+"/readyz"); !strings.HasPrefix(body, "stale: no event from any of 3 live instruments") {
		t.Fatalf("/readyz body %q", body)
	}
	// The public listener tells counts, not which instruments exist; the admin one names them.
	code, body := getReadyz(t, e.http+"/readyz?verbose")
	var st StaleStatus
	if err := json.Unmarshal([]byte(body), &st); err != nil || code != 503 || st.Ready || !st.CaughtUp || !st.Stale ||
		st.LiveInstruments != 3 || st.StaleInstruments != 3 || len(st.StaleIDs) != 0 || st.LongestSilenceSeconds < 0.3 {
		t.Fatalf("/readyz?verbose: %d %s (%v)", code, body, err)
	}
	admin := httptest.NewServer(e.srv.ReadyzDetail())
	defer admin.Close()
	code, body = getReadyz(t, admin.URL+"/readyz?verbose")
	if err := json.Unmarshal([]byte(body), &st); err != nil || code != 503 || len(st.StaleIDs) != 3 {
		t.Fatalf("admin /readyz?verbose: %d %s (%v)", code, body, err)
	}
	if v := testutil.ToFloat64(e.srv.stale.allGone); v != 1 {
		t.Fatalf("tickwire_feed_stale %v", v)
	}
	if v := testutil.ToFloat64(e.srv.stale.gauge.WithLabelValues(st.StaleIDs[0])); v != 1 {
		t.Fatalf("tickwire_feed_instrument_stale{%s} %v", st.StaleIDs[0], v)
	}

	// Events again: ready again.
	p.publish(50)
	testwait.For(t, 5*time.Second, "/readyz to report ready", func() bool {
		code, _ := getReadyz(t, e.http+"/readyz")
		return code == http.StatusOK
	})
}

// TestReadyzStaleAfterRestartIntoStoppedPipeline: a feed started while nothing is being
// ingested (the store holds events last ingested an hour ago) rebuilds its state from the
// store and then reports stale, rather than serving the stored past as live data.
func TestReadyzStaleAfterRestartIntoStoppedPipeline(t *testing.T) {
	b := bustest.Connect(t, bustest.Start(t))
	m, err := synthetic.NewMarket(synthetic.Config{Instruments: 3, Seed: 7})
	if err != nil {
		t.Fatal(err)
	}
	hourAgo := time.Now().Add(-time.Hour).UnixNano()
	seq := map[string]uint64{}
	ctx := context.Background()
	for i := range 100 {
		ev := m.Next(hourAgo + int64(i)*1e6)
		seq[ev.Instrument]++
		ev.Epoch, ev.Seq, ev.IngestTimeNs = 1, seq[ev.Instrument], hourAgo+int64(i)*1e6
		if err := b.Publish(ctx, ev); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Flush(ctx); err != nil {
		t.Fatal(err)
	}

	e := &env{t: t, bus: b}
	e.startFeed(Config{StaleAfter: time.Minute}) // returns once caught up
	testwait.For(t, 5*time.Second, "/readyz to report stale", func() bool {
		code, body := getReadyz(t, e.http+"/readyz")
		return code == http.StatusServiceUnavailable && strings.HasPrefix(body, "stale")
	})
	if st := e.srv.Status(); !st.CaughtUp || !st.Stale || st.LongestSilenceSeconds < 3500 {
		t.Fatalf("status %+v", st)
	}
}

// BenchmarkStaleObserve is what staleness adds to dispatching each event.
func BenchmarkStaleObserve(b *testing.B) {
	st := newStaleness(Config{}.withDefaults(), nil, slog.New(slog.DiscardHandler), nil)
	evs := make([]*pb.Event, 50)
	for i := range evs {
		evs[i] = tick("x:I"+time.Duration(i).String(), 1)
	}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		st.observe(evs[i%len(evs)], true)
	}
}
