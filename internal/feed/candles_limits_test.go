package feed

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/tickwire/tickwire/internal/bus"
	"github.com/tickwire/tickwire/internal/testwait"
	pb "github.com/tickwire/tickwire/pkg/proto/tickwire/v1"
)

// countingSource counts the event-store reads made through it and can hold them until
// released, so a test can keep a read in flight.
type countingSource struct {
	EventSource
	scans   atomic.Int32
	hold    chan struct{} // nil: reads go through at once; else each read waits until it is closed
	waiting atomic.Int32  // reads waiting on hold
}

func (c *countingSource) ConsumeEvents(ctx context.Context, opts bus.ConsumeOptions, h func(*pb.Event) error) (*bus.Consumer, error) {
	c.scans.Add(1)
	if c.hold != nil {
		c.waiting.Add(1)
		select {
		case <-c.hold:
		case <-ctx.Done():
			c.waiting.Add(-1)
			return nil, ctx.Err()
		}
		c.waiting.Add(-1)
	}
	return c.EventSource.ConsumeEvents(ctx, opts, h)
}

// candleReply is one /api/candles answer.
type candleReply struct {
	status     int
	retryAfter string
	bars       []*pb.Candle
	code       string // the error body's code
	body       string
}

func getCandles(t *testing.T, base, id string, iv int64, fromNs, toNs int64) candleReply {
	t.Helper()
	r, err := fetchCandles(context.Background(), base, id, iv, fromNs, toNs)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// fetchCandles asks base's /api/candles for bars of iv seconds in [fromNs, toNs).
func fetchCandles(ctx context.Context, base, id string, iv int64, fromNs, toNs int64) (candleReply, error) {
	url := fmt.Sprintf("%s/api/candles?instrument=%s&interval=%d&from=%s&to=%s", base, id, iv,
		time.Unix(0, fromNs).UTC().Format(time.RFC3339Nano), time.Unix(0, toNs).UTC().Format(time.RFC3339Nano))
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return candleReply{}, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return candleReply{}, err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	r := candleReply{status: resp.StatusCode, retryAfter: resp.Header.Get("Retry-After"), body: string(body[:min(len(body), 300)])}
	if resp.StatusCode == http.StatusOK {
		var l pb.CandleList
		if err := protojson.Unmarshal(body, &l); err != nil {
			return r, fmt.Errorf("%s: %w", r.body, err)
		}
		r.bars = l.Candles
		return r, nil
	}
	var e struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	}
	if json.Unmarshal(body, &e) == nil {
		r.code = e.Code
	}
	return r, nil
}

// refCandles folds the valid trades of evs with event time in [fromNs, toNs) into bars of iv
// seconds, as the store-reading path does: a trade for a bar older than the latest is dropped.
func refCandles(evs []*pb.Event, iv, fromNs, toNs int64) []*pb.Candle {
	var out []*pb.Candle
	for _, ev := range evs {
		tr := ev.GetTrade()
		ts := ev.VenueTimeNs
		if ts <= 0 {
			ts = ev.IngestTimeNs
		}
		if tr == nil || tr.Price <= 0 || tr.Size <= 0 || ts < fromNs || ts >= toNs {
			continue
		}
		start := ts / 1e9 / iv * iv
		if n := len(out); n > 0 && out[n-1].StartS == start {
			c := out[n-1]
			c.High, c.Low, c.Close = max(c.High, tr.Price), min(c.Low, tr.Price), tr.Price
			c.Volume += tr.Size
			c.TradeCount++
			continue
		} else if n > 0 && out[n-1].StartS > start {
			continue
		}
		out = append(out, &pb.Candle{IntervalS: uint32(iv), StartS: start, Open: tr.Price, High: tr.Price, Low: tr.Price,
			Close: tr.Price, Volume: tr.Size, TradeCount: 1})
	}
	return out
}

func sameCandles(t *testing.T, what string, got, want []*pb.Candle) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d bars, want %d", what, len(got), len(want))
	}
	for i := range got {
		if !proto.Equal(got[i], want[i]) {
			t.Fatalf("%s: bar %d %v, want %v", what, i, got[i], want[i])
		}
	}
}

// publishSlow sends n synthetic events, step of market time apart.
func (p *publisher) publishSlow(n int, step time.Duration) {
	for range n {
		p.clock += int64(step)
		p.publishEvent(p.m.Next(p.clock))
	}
}

// counterValue reads a counter of reg by name and one label, 0 when absent.
func counterValue(t *testing.T, reg prometheus.Gatherer, name, label, value string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == label && l.GetValue() == value {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}

const refusedMetric = "tickwire_feed_candle_requests_refused_total"

// candleEnv is a feed with 10 minutes of a synthetic market (3 instruments, 100 ms apart),
// /api/candles reading the event store through a countingSource.
func candleEnv(t *testing.T, cfg Config) (*env, *publisher, *countingSource) {
	t.Helper()
	e := startEnv(t, cfg)
	src := &countingSource{EventSource: e.bus}
	e.srv.EnableHistory(src)
	p := newPublisher(t, e.bus, 3)
	p.publishSlow(6000, 100*time.Millisecond)
	e.waitApplied(p)
	return e, p, src
}

func (p *publisher) eventsOf(id string) []*pb.Event {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]*pb.Event(nil), p.events[id]...)
}

// TestCandlesAnsweredFromBars: a window of an interval the feed keeps bars for (a multiple of
// 60 s) is answered from the feed's bars without reading the event store, equal to the bars
// built from the published trades; a window that cuts a minute in two still equals them (the
// cut minutes alone are read from the store).
func TestCandlesAnsweredFromBars(t *testing.T) {
	e, p, src := candleEnv(t, Config{})
	id := p.instruments()[1]
	evs := p.eventsOf(id)
	t0 := int64(1_700_000_000)
	for _, tc := range []struct {
		iv       int64
		from, to int64 // Unix s
	}{
		{60, (t0/60 + 1) * 60, (t0/60 + 9) * 60},
		{300, t0 / 300 * 300, (t0/300 + 3) * 300},
		{120, (t0/120 + 1) * 120, (t0/120 + 4) * 120},
	} {
		before := src.scans.Load()
		r := getCandles(t, e.http, id, tc.iv, tc.from*1e9, tc.to*1e9)
		if r.status != 200 {
			t.Fatalf("iv %d: %d %s", tc.iv, r.status, r.body)
		}
		want := refCandles(evs, tc.iv, tc.from*1e9, tc.to*1e9)
		if len(want) < 2 {
			t.Fatalf("iv %d: only %d bars of trades in the window", tc.iv, len(want))
		}
		sameCandles(t, fmt.Sprintf("iv %d", tc.iv), r.bars, want)
		if n := src.scans.Load() - before; n != 0 {
			t.Errorf("iv %d [%d, %d): %d event-store reads, want 0 (answered from the feed's bars)", tc.iv, tc.from, tc.to, n)
		}
	}
	// A window whose ends cut minutes in two: exact, and at most the two cut minutes are read.
	from := ((t0/60+2)*60+17)*1e9 + 250e6
	to := ((t0/60+7)*60+41)*1e9 + 5e6
	before := src.scans.Load()
	r := getCandles(t, e.http, id, 60, from, to)
	if r.status != 200 {
		t.Fatalf("%d %s", r.status, r.body)
	}
	sameCandles(t, "cut window", r.bars, refCandles(evs, 60, from, to))
	if n := src.scans.Load() - before; n > 2 {
		t.Errorf("cut window: %d event-store reads, want at most 2 (its two cut minutes)", n)
	}
}

// TestCandlesScanWindowLimit: an interval the bars cannot answer (not a multiple of 60 s) reads
// the event store, over at most 5 minutes by default; past that the request is refused with
// 400 scan_window before anything is read.
func TestCandlesScanWindowLimit(t *testing.T) {
	e, p, src := candleEnv(t, Config{})
	id := p.instruments()[0]
	evs := p.eventsOf(id)
	from := int64(1_700_000_000) * 1e9
	for _, tc := range []struct {
		name   string
		window time.Duration
		status int
		code   string
	}{
		{"at the limit", 5 * time.Minute, 200, ""},
		{"one second past", 5*time.Minute + time.Second, 400, "scan_window"},
		{"two hours", 2 * time.Hour, 400, "scan_window"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := src.scans.Load()
			refused := counterValue(t, e.reg, refusedMetric, "reason", "scan_window")
			r := getCandles(t, e.http, id, 10, from, from+int64(tc.window))
			if r.status != tc.status || r.code != tc.code {
				t.Fatalf("%d %q (%s), want %d %q", r.status, r.code, r.body, tc.status, tc.code)
			}
			if tc.status != 200 {
				if n := src.scans.Load() - before; n != 0 {
					t.Errorf("refused request read the store %d times", n)
				}
				if got := counterValue(t, e.reg, refusedMetric, "reason", "scan_window") - refused; got != 1 {
					t.Errorf("refused counter moved by %v, want 1", got)
				}
				return
			}
			sameCandles(t, tc.name, r.bars, refCandles(evs, 10, from, from+int64(tc.window)))
		})
	}
}

// TestCandlesTooManyBars: at most 10,000 bars by default; one more is 400 too_many_bars.
func TestCandlesTooManyBars(t *testing.T) {
	e, p, _ := candleEnv(t, Config{})
	id := p.instruments()[0]
	to := int64(1_700_000_600) * 1e9
	for _, tc := range []struct {
		name   string
		bars   int64
		status int
		code   string
	}{
		{"at the limit", 10_000, 200, ""},
		{"one past", 10_001, 400, "too_many_bars"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := getCandles(t, e.http, id, 60, to-tc.bars*60e9, to)
			if r.status != tc.status || r.code != tc.code {
				t.Fatalf("%d %q (%s), want %d %q", r.status, r.code, r.body, tc.status, tc.code)
			}
		})
	}
}

// TestCandlesClientRate: one client address gets a burst of 20 requests, then 429
// rate_limited with a Retry-After.
func TestCandlesClientRate(t *testing.T) {
	// A refill of one request per 100 s: the burst, not the time the 20 requests take on a
	// loaded machine (at the default 5/s, a second of them refilled five), decides the 21st.
	e, p, _ := candleEnv(t, Config{Candles: CandlesConfig{Rate: 0.01}})
	id := p.instruments()[0]
	from := int64(1_700_000_040) * 1e9
	for i := range 20 {
		if r := getCandles(t, e.http, id, 60, from, from+300e9); r.status != 200 {
			t.Fatalf("request %d of the burst: %d %s", i+1, r.status, r.body)
		}
	}
	r := getCandles(t, e.http, id, 60, from, from+300e9)
	if r.status != http.StatusTooManyRequests || r.code != "rate_limited" || r.retryAfter == "" {
		t.Fatalf("past the burst: %d %q Retry-After %q (%s), want 429 rate_limited with Retry-After", r.status, r.code, r.retryAfter, r.body)
	}
	if got := counterValue(t, e.reg, refusedMetric, "reason", "rate_limited"); got != 1 {
		t.Errorf("rate_limited refusals counted %v, want 1", got)
	}
}

// TestCandlesScanConcurrency: one event-store read at a time by default; a second request
// that needs one is refused at once with 429 scan_busy, not queued behind it.
func TestCandlesScanConcurrency(t *testing.T) {
	e, p, src := candleEnv(t, Config{})
	id := p.instruments()[0]
	from := int64(1_700_000_000) * 1e9
	release := holdScans(t, src)
	type result struct {
		r   candleReply
		err error
	}
	first := make(chan result, 1)
	go func() {
		r, err := fetchCandles(context.Background(), e.http, id, 10, from, from+60e9)
		first <- result{r, err}
	}()
	testwait.For(t, 10*time.Second, "the first read to start", func() bool { return src.waiting.Load() == 1 })
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	r, err := fetchCandles(ctx, e.http, id, 10, from, from+60e9)
	if err != nil {
		t.Fatalf("second read: %v (queued behind the first instead of refused)", err)
	}
	if r.status != http.StatusTooManyRequests || r.code != "scan_busy" || r.retryAfter == "" {
		t.Fatalf("second read: %d %q Retry-After %q (%s), want 429 scan_busy", r.status, r.code, r.retryAfter, r.body)
	}
	release()
	if f := <-first; f.err != nil || f.r.status != 200 {
		t.Fatalf("first read: %v %d %s", f.err, f.r.status, f.r.body)
	}
	if got := counterValue(t, e.reg, refusedMetric, "reason", "scan_busy"); got != 1 {
		t.Errorf("scan_busy refusals counted %v, want 1", got)
	}
}

// holdScans makes every event-store read of src wait until the returned release is called
// (also at the end of the test).
func holdScans(t *testing.T, src *countingSource) (release func()) {
	t.Helper()
	src.hold = make(chan struct{})
	var once sync.Once
	release = func() { once.Do(func() { close(src.hold) }) }
	t.Cleanup(release)
	return release
}

// background runs a request on its own goroutine; the result arrives on the channel.
func background(base, id string, iv, fromNs, toNs int64) <-chan error {
	done := make(chan error, 1)
	go func() {
		r, err := fetchCandles(context.Background(), base, id, iv, fromNs, toNs)
		if err == nil && r.status != 200 {
			err = fmt.Errorf("%d %s", r.status, r.body)
		}
		done <- err
	}()
	return done
}

// TestCandlesConcurrencyLimits: MaxScans event-store reads and MaxInFlight requests at once,
// at the limit and one past it; a request answered from bars needs no read slot.
func TestCandlesConcurrencyLimits(t *testing.T) {
	t0 := int64(1_700_000_000) * 1e9
	barFrom := int64(1_700_000_040) * 1e9 // whole minutes: answered from bars
	for _, tc := range []struct {
		name              string
		maxScans, inFlite int
		held              int // reads held open
		scan, bars        string
	}{
		{"scans at the limit", 2, 4, 1, "", ""},
		{"scans past the limit", 2, 4, 2, "scan_busy", ""},
		{"in flight at the limit", 1, 2, 1, "scan_busy", ""},
		{"in flight past the limit", 2, 2, 2, "busy", "busy"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e, p, src := candleEnv(t, Config{Candles: CandlesConfig{MaxScans: tc.maxScans, MaxInFlight: tc.inFlite}})
			id := p.instruments()[0]
			release := holdScans(t, src)
			var held []<-chan error
			for range tc.held {
				held = append(held, background(e.http, id, 10, t0, t0+60e9))
			}
			testwait.For(t, 10*time.Second, "reads held", func() bool { return int(src.waiting.Load()) == tc.held })
			check := func(what string, iv, from, to int64, code string) {
				t.Helper()
				if code == "" { // not refused: it may start a read, which is held; let it finish
					done := background(e.http, id, iv, from, to)
					if iv%60 != 0 {
						testwait.For(t, 10*time.Second, what+" read", func() bool { return int(src.waiting.Load()) == tc.held+1 })
						release()
					}
					if err := <-done; err != nil {
						t.Fatalf("%s: %v", what, err)
					}
					return
				}
				r := getCandles(t, e.http, id, iv, from, to)
				if r.status != http.StatusTooManyRequests || r.code != code || r.retryAfter != "1" {
					t.Fatalf("%s: %d %q Retry-After %q (%s), want 429 %s, Retry-After 1", what, r.status, r.code, r.retryAfter, r.body, code)
				}
				if n := counterValue(t, e.reg, refusedMetric, "reason", code); n < 1 {
					t.Errorf("%s: %s refusals counted %v", what, code, n)
				}
			}
			check("bars", 60, barFrom, barFrom+300e9, tc.bars)
			check("scan", 10, t0, t0+60e9, tc.scan)
			release()
			for _, h := range held {
				if err := <-h; err != nil {
					t.Fatalf("held read: %v", err)
				}
			}
		})
	}
}

// TestCandlesScanEventsLimit: a request may read at most MaxScanEvents events from the event
// store: with exactly what the window needs it is answered; with one fewer it is refused with
// 400 scan_events. All reads together may take ScanRate events/s: past it, 429 scan_busy.
func TestCandlesScanEventsLimit(t *testing.T) {
	e, p, _ := candleEnv(t, Config{})
	id := p.instruments()[0]
	evs := p.eventsOf(id)
	from := int64(1_700_000_100) * 1e9
	to := from + 120e9
	const scannedMetric = "tickwire_feed_candle_scan_events_total"
	scanned := func(e *env) float64 {
		mfs, err := e.reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, mf := range mfs {
			if mf.GetName() == scannedMetric {
				return mf.GetMetric()[0].GetCounter().GetValue()
			}
		}
		return 0
	}
	if r := getCandles(t, e.http, id, 10, from, to); r.status != 200 {
		t.Fatalf("%d %s", r.status, r.body)
	}
	need := int(scanned(e))
	if need < 100 {
		t.Fatalf("the window read only %d events", need)
	}
	for _, tc := range []struct {
		name   string
		budget int
		code   string
	}{
		{"at the limit", need, ""},
		{"one event short", need - 1, "scan_events"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e.startFeed(Config{Candles: CandlesConfig{MaxScanEvents: tc.budget, ScanRate: -1}})
			e.srv.EnableHistory(e.bus)
			r := getCandles(t, e.http, id, 10, from, to)
			if tc.code == "" {
				if r.status != 200 {
					t.Fatalf("%d %s", r.status, r.body)
				}
				sameCandles(t, tc.name, r.bars, refCandles(evs, 10, from, to))
				return
			}
			if r.status != http.StatusBadRequest || r.code != tc.code {
				t.Fatalf("%d %q (%s), want 400 %s", r.status, r.code, r.body, tc.code)
			}
			if n := counterValue(t, e.reg, refusedMetric, "reason", tc.code); n != 1 {
				t.Errorf("%s refusals counted %v, want 1", tc.code, n)
			}
			if got := int(scanned(e)); got != tc.budget {
				t.Errorf("read %d events, want the budget %d", got, tc.budget)
			}
		})
	}
	t.Run("events per second spent", func(t *testing.T) {
		// The bucket holds one read's worth and refills at 1 event/s: the read that empties it
		// is answered (at the limit), the next is refused until it refills.
		e.startFeed(Config{Candles: CandlesConfig{MaxScanEvents: need, ScanRate: 1}})
		e.srv.EnableHistory(e.bus)
		if r := getCandles(t, e.http, id, 10, from, to); r.status != 200 {
			t.Fatalf("first read: %d %s", r.status, r.body)
		}
		r := getCandles(t, e.http, id, 10, from, to)
		if r.status != http.StatusTooManyRequests || r.code != "scan_busy" || r.retryAfter == "" {
			t.Fatalf("second read: %d %q Retry-After %q (%s), want 429 scan_busy", r.status, r.code, r.retryAfter, r.body)
		}
		// Answers from the bars need no read and go on.
		bars := int64(1_700_000_040) * 1e9
		if r := getCandles(t, e.http, id, 60, bars, bars+300e9); r.status != 200 {
			t.Fatalf("from bars: %d %s", r.status, r.body)
		}
	})
}

// TestCandlesStoreSpan: the candle store keeps StoreSpan of bars back from each instrument's
// newest; older windows are not read from the event store instead (the span is meant to match
// the stream's max age) and answer what is kept.
func TestCandlesStoreSpan(t *testing.T) {
	e, p, src := candleEnv(t, Config{Candles: CandlesConfig{StoreSpan: 5 * time.Minute}})
	id := p.instruments()[0]
	evs := p.eventsOf(id)
	last := eventTime(evs[len(evs)-1]) / 60e9 * 60e9 // the newest bar's start
	kept := last - 4*60e9                            // the oldest of 5 kept
	r := getCandles(t, e.http, id, 60, kept, last+60e9)
	if r.status != 200 {
		t.Fatalf("%d %s", r.status, r.body)
	}
	sameCandles(t, "kept", r.bars, refCandles(evs, 60, kept, last+60e9))
	r = getCandles(t, e.http, id, 60, kept-5*60e9, kept)
	if r.status != 200 || len(r.bars) != 0 {
		t.Fatalf("before the span: %d, %d bars (%s), want 200 and none", r.status, len(r.bars), r.body)
	}
	if n := src.scans.Load(); n != 0 {
		t.Errorf("%d event-store reads", n)
	}
	if got := counterValue(t, e.reg, "tickwire_feed_candle_requests_total", "source", "bars"); got != 2 {
		t.Errorf("answered from bars: %v, want 2", got)
	}
}

// TestCandlesWithoutHistory: a feed that does not read its event store answers from its bars,
// and says 501 no_history for what needs a read; a feed still catching up says 503 not_ready.
func TestCandlesWithoutHistory(t *testing.T) {
	e := startEnv(t, Config{})
	p := newPublisher(t, e.bus, 1)
	p.publishSlow(3000, 100*time.Millisecond)
	e.waitApplied(p)
	id := p.instruments()[0]
	from := int64(1_700_000_040) * 1e9
	if r := getCandles(t, e.http, id, 60, from, from+180e9); r.status != 200 {
		t.Fatalf("bars: %d %s", r.status, r.body)
	}
	if r := getCandles(t, e.http, id, 10, from, from+180e9); r.status != http.StatusNotImplemented || r.code != "no_history" {
		t.Fatalf("read: %d %q (%s), want 501 no_history", r.status, r.code, r.body)
	}

	srv, err := New(Config{}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Shutdown(context.Background()) })
	hs := httptest.NewServer(srv.Handler(nil))
	t.Cleanup(hs.Close)
	r := getCandles(t, hs.URL, id, 60, from, from+180e9)
	if r.status != http.StatusServiceUnavailable || r.code != "not_ready" || r.retryAfter == "" {
		t.Fatalf("not ready: %d %q Retry-After %q (%s), want 503 not_ready", r.status, r.code, r.retryAfter, r.body)
	}
}

// TestCandlesNoClientRate: a negative Rate turns the per-client limit off.
func TestCandlesNoClientRate(t *testing.T) {
	e, p, _ := candleEnv(t, Config{Candles: CandlesConfig{Rate: -1}})
	id := p.instruments()[0]
	from := int64(1_700_000_040) * 1e9
	for i := range 40 {
		if r := getCandles(t, e.http, id, 60, from, from+300e9); r.status != 200 {
			t.Fatalf("request %d: %d %s", i+1, r.status, r.body)
		}
	}
}

// TestCandlesGlobalRate: the requests of all clients together get GlobalBurst at once, then
// 429 busy with a Retry-After, whatever their addresses (here one, with no per-address limit).
func TestCandlesGlobalRate(t *testing.T) {
	e, p, _ := candleEnv(t, Config{Candles: CandlesConfig{Rate: -1, GlobalRate: 0.001, GlobalBurst: 3}})
	id := p.instruments()[0]
	from := int64(1_700_000_040) * 1e9
	for i := range 3 {
		if r := getCandles(t, e.http, id, 60, from, from+300e9); r.status != 200 {
			t.Fatalf("request %d of the burst: %d %s", i+1, r.status, r.body)
		}
	}
	r := getCandles(t, e.http, id, 60, from, from+300e9)
	if r.status != http.StatusTooManyRequests || r.code != "busy" || r.retryAfter == "" {
		t.Fatalf("past the burst: %d %q Retry-After %q (%s), want 429 busy", r.status, r.code, r.retryAfter, r.body)
	}
	if got := counterValue(t, e.reg, refusedMetric, "reason", "busy"); got != 1 {
		t.Errorf("busy refusals counted %v, want 1", got)
	}
}
