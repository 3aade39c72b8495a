package loadgen

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tickwire/tickwire/internal/bus"
	"github.com/tickwire/tickwire/internal/bus/bustest"
	"github.com/tickwire/tickwire/internal/testwait"
	pb "github.com/tickwire/tickwire/pkg/proto/tickwire/v1"
)

// TestCandleAbuseLoop: the abusers ask for the configured bars and window, count each answer
// by status, pause between requests (so the load is bounded), and all stop when cancelled.
func TestCandleAbuseLoop(t *testing.T) {
	before := runtime.NumGoroutine()
	var n atomic.Int64
	var bad atomic.Value
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		if r.URL.Path != "/api/candles" || q.Get("interval") != "3600" || !strings.HasPrefix(q.Get("instrument"), "x:") {
			bad.Store(r.URL.String())
		}
		if n.Add(1)%2 == 0 {
			http.Error(w, `{"code":"rate_limited"}`, http.StatusTooManyRequests)
			return
		}
		w.Write([]byte(`{"candles":[]}`))
	}))
	defer srv.Close()
	a := newCandleAbuse(srv.URL, []string{"x:A", "x:B", "x:C"}, 3600, 300*time.Hour)
	ctx, cancel := context.WithCancel(context.Background())
	start := time.Now()
	a.start(ctx, 3)
	// Until an answer of each kind was counted (was a 300 ms sleep: too short for two answers on
	// a loaded machine); the pause bound below is measured against the time it took.
	testwait.For(t, 10*time.Second, "a 200 and a 429 counted", func() bool {
		rep := a.report(Config{})
		return rep.ByStatus["200"] > 0 && rep.ByStatus["429"] > 0
	})
	cancel()
	a.wait()
	took := time.Since(start)
	if u := bad.Load(); u != nil {
		t.Fatalf("asked %v", u)
	}
	cfg := Config{CandleAbusers: 3, CandleInterval: 3600, CandleWindow: 300 * time.Hour}
	rep := a.report(cfg)
	if rep.Requests == 0 || rep.ByStatus["200"] == 0 || rep.ByStatus["429"] == 0 ||
		rep.Requests != rep.ByStatus["200"]+rep.ByStatus["429"]+rep.ByStatus[unfinished] || rep.ByStatus["error"] != 0 {
		t.Fatalf("report %+v", rep)
	}
	// At most one request per pause per abuser, plus the one each had started.
	if most := uint64(3 * (took/candleAbusePause + 1)); rep.Requests > most {
		t.Errorf("%d requests in %v from 3 abusers: more than %d (the pause bounds them)", rep.Requests, took, most)
	}
	srv.CloseClientConnections()
	if !testwait.Until(5*time.Second, func() bool { return runtime.NumGoroutine() <= before+5 }) {
		g := runtime.NumGoroutine()
		t.Errorf("%d goroutines after the abusers stopped, %d before", g, before)
	}
}

// TestCandleAbuseUnfinished: a request the feed has not answered when the step ends is
// counted as unfinished, not dropped (a feed slower than the step would otherwise show nothing).
func TestCandleAbuseUnfinished(t *testing.T) {
	release := make(chan struct{})
	var asked atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		asked.Add(1)
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	defer close(release)
	a := newCandleAbuse(srv.URL, []string{"x:A"}, 60, time.Hour)
	ctx, cancel := context.WithCancel(context.Background())
	a.start(ctx, 2)
	testwait.For(t, 10*time.Second, "both requests at the server", func() bool { return asked.Load() == 2 })
	cancel()
	a.wait()
	rep := a.report(Config{CandleAbusers: 2})
	if rep.Requests != 2 || rep.ByStatus[unfinished] != 2 || rep.Latency.Count != 0 {
		t.Fatalf("report %+v", rep)
	}
}

// TestCandlesConfig: the candles mode's defaults, limits at and past them.
func TestCandlesConfig(t *testing.T) {
	valid := func(c Config) error {
		c.Spawn = true
		m, err := c.Merge()
		if err != nil {
			return err
		}
		return m.Validate()
	}
	m, err := Config{Mode: ModeCandles}.Merge()
	if err != nil {
		t.Fatal(err)
	}
	if m.CandleAbusers != 16 || m.CandleInterval != 3600 || m.CandleWindow != 300*time.Hour || m.CandlePrefill != 0 {
		t.Errorf("candles defaults %d %d %v %d", m.CandleAbusers, m.CandleInterval, m.CandleWindow, m.CandlePrefill)
	}
	if m, _ := (Config{Mode: ModeFixed}).Merge(); m.CandleAbusers != 0 {
		t.Errorf("a fixed run has %d candle abusers", m.CandleAbusers)
	}
	if p, _ := (Config{Scenario: "candles-abuse"}).Merge(); p.Mode != ModeCandles || p.CandlePrefill != 1_000_000 || p.CandleAbusers != 16 {
		t.Errorf("preset %+v", p)
	}
	for _, tc := range []struct {
		name string
		cfg  Config
		ok   bool
	}{
		{"defaults", Config{Mode: ModeCandles}, true},
		{"256 abusers", Config{Mode: ModeCandles, CandleAbusers: 256}, true},
		{"257 abusers", Config{Mode: ModeCandles, CandleAbusers: 257}, false},
		{"prefill at the limit", Config{Mode: ModeFixed, CandlePrefill: 20_000_000}, true},
		{"prefill past it", Config{Mode: ModeFixed, CandlePrefill: 20_000_001}, false},
		{"a day's bars", Config{Mode: ModeCandles, CandleInterval: 86400}, true},
		{"longer than a day", Config{Mode: ModeCandles, CandleInterval: 86401}, false},
		{"negative window", Config{Mode: ModeCandles, CandleWindow: -time.Second}, false},
	} {
		if err := valid(tc.cfg); (err == nil) != tc.ok {
			t.Errorf("%s: %v", tc.name, err)
		} else if err != nil && !errors.Is(err, ErrConfig) {
			t.Errorf("%s: %v is not ErrConfig", tc.name, err)
		}
	}
}

// TestRunCandlesInProcess runs the candles mode end to end against in-process NATS and feed:
// a prefilled store, a baseline step, a step with abusers, and the report of both.
func TestRunCandlesInProcess(t *testing.T) {
	if testing.Short() {
		t.Skip("end to end")
	}
	nats := bustest.Start(t)
	feedURL, stop := startFeed(t, nats)
	cfg := Config{Clients: 10, Instruments: 5, Subscribers: 2, Channels: []pb.Channel{1}, Mode: ModeCandles, Rate: 200,
		Warmup: 300 * time.Millisecond, Hold: time.Second, Duration: 40 * time.Second, Venue: "lgcandles",
		CandleAbusers: 2, CandlePrefill: 2000, FeedURL: feedURL, NATSURL: nats.ClientURL(),
		NATSAuth: nats.Auth(string(bus.RoleIngest)), FeedPID: pidSelf(),
		FeedAdminURL: "http" + strings.TrimSuffix(strings.TrimPrefix(feedURL, "ws"), "/ws")} // the in-process feed serves /metrics on its one listener
	rep, err := Run(context.Background(), cfg, nil, nil)
	stop()
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	rep.WriteTable(&b)
	t.Log("\n" + b.String())
	if len(rep.Steps) != 2 || rep.Steps[0].Name != "baseline" || rep.Steps[1].Name != "abuse" {
		t.Fatalf("steps %+v", rep.Steps)
	}
	c := rep.Candles
	if c == nil || c.Requests == 0 || c.ByStatus["200"] == 0 || c.ByStatus["error"] != 0 {
		t.Fatalf("candles %+v", c)
	}
	for st := range c.ByStatus {
		if st != "200" && st != "429" && st != unfinished {
			t.Errorf("status %s x%d", st, c.ByStatus[st])
		}
	}
	if c.BaselineP99 == 0 || c.AbuseP99 == 0 || rep.Totals.Gaps != 0 || rep.Totals.Delivered != rep.Totals.Expected {
		t.Errorf("live clients: %+v, totals %+v", c, rep.Totals)
	}
	if !strings.Contains(b.String(), "SUMMARY candles:") || !strings.Contains(b.String(), "prefill: 2000 events") ||
		!strings.Contains(b.String(), "the feed applied them") {
		t.Error("the table lacks the candles summary or the prefill note")
	}
}

// TestCandleAbuseControl: in a control run the same loop asks /healthz.
func TestCandleAbuseControl(t *testing.T) {
	var paths atomic.Value
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		paths.Store(r.URL.Path)
		w.Write([]byte("ok\n"))
	}))
	defer srv.Close()
	a := newCandleAbuse(srv.URL, []string{"x:A"}, 60, time.Hour)
	a.path = "/healthz"
	ctx, cancel := context.WithCancel(context.Background())
	a.start(ctx, 1)
	testwait.For(t, 10*time.Second, "an answer counted", func() bool { return a.report(Config{}).ByStatus["200"] > 0 })
	cancel()
	a.wait()
	if p, _ := paths.Load().(string); p != "/healthz" || a.report(Config{}).ByStatus["200"] == 0 {
		t.Fatalf("asked %q, report %+v", p, a.report(Config{}))
	}
}
