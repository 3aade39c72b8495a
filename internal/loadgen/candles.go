package loadgen

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// ModeCandles measures the live clients at a fixed rate without, then with, CandleAbusers
// clients asking GET /api/candles for a long window in a loop (issue 14 item 6): what a client
// can make the feed do must not move the live clients' latency.
const ModeCandles = "candles"

// Candle abuse defaults: the dashboard's 1-hour chart (300 bars of 3,600 s, 12.5 days back),
// asked by 16 clients. candleAbusePause keeps the load bounded: each abuser waits this long
// after every answer (refusals too), so at most CandleAbusers requests are in flight and each
// makes at most 100 a second, whatever the feed answers.
const (
	defaultCandleAbusers  = 16
	defaultCandleInterval = 3600
	defaultCandleWindow   = 300 * time.Hour
	candleAbusePause      = 10 * time.Millisecond
	candleRequestTimeout  = 30 * time.Second
	// candlePrefillSpan is the event time the prefill is spread over: inside the feed's
	// default candle store span (24 h), so the feed of before and after issue 14 answer the
	// same bars.
	candlePrefillSpan = 23 * time.Hour
)

// unfinished counts the requests still running when the abuse step ended: a feed that takes
// longer than the step to answer shows here, not in the latencies.
const unfinished = "unfinished"

// CandlesReport compares the live clients without and with the candle abusers.
type CandlesReport struct {
	Abusers   int     `json:"abusers"`
	IntervalS int     `json:"interval_s"`
	WindowS   float64 `json:"window_s"`
	Prefill   int     `json:"prefill_events"`
	// Requests made during the abuse step, by HTTP status ("error": no answer, "unfinished":
	// still running when the step ended); Latency is of those answered.
	Requests uint64            `json:"requests"`
	ByStatus map[string]uint64 `json:"by_status"`
	Latency  Latencies         `json:"request_latency"`
	// The live clients' figures, without and with.
	BaselineP50        time.Duration `json:"baseline_p50_ns"`
	BaselineP99        time.Duration `json:"baseline_p99_ns"`
	AbuseP50           time.Duration `json:"abuse_p50_ns"`
	AbuseP99           time.Duration `json:"abuse_p99_ns"`
	BaselineFeedCPU    float64       `json:"baseline_feed_cpu_cores"`
	AbuseFeedCPU       float64       `json:"abuse_feed_cpu_cores"`
	FeedRSSMaxBaseline int64         `json:"feed_rss_max_baseline_bytes"`
	FeedRSSMaxAbuse    int64         `json:"feed_rss_max_abuse_bytes"`
}

// fillCandles fills the candle fields from d: the abusers' only in the candles mode (so other
// runs do not report any), the prefill in every mode.
func fillCandles(c, d Config) Config {
	if c.Mode == ModeCandles {
		if c.CandleAbusers == 0 {
			c.CandleAbusers = d.CandleAbusers
		}
		if c.CandleInterval == 0 {
			c.CandleInterval = d.CandleInterval
		}
		if c.CandleWindow == 0 {
			c.CandleWindow = d.CandleWindow
		}
	}
	if c.CandlePrefill == 0 {
		c.CandlePrefill = d.CandlePrefill
	}
	return c
}

func (c Config) validateCandles() error {
	switch {
	case c.CandleAbusers < 0 || c.CandleAbusers > 256:
		return fmt.Errorf("%w: candle abusers %d not in 0..256", ErrConfig, c.CandleAbusers)
	case c.CandleInterval < 0 || c.CandleInterval > 86400:
		return fmt.Errorf("%w: candle interval %d s", ErrConfig, c.CandleInterval)
	case c.CandleWindow < 0:
		return fmt.Errorf("%w: candle window %v", ErrConfig, c.CandleWindow)
	case c.CandlePrefill < 0 || c.CandlePrefill > 20_000_000:
		return fmt.Errorf("%w: candle prefill %d events not in 0..20000000", ErrConfig, c.CandlePrefill)
	case c.Mode == ModeCandles && c.CandleAbusers == 0:
		return fmt.Errorf("%w: the candles mode needs at least one abuser", ErrConfig)
	}
	return nil
}

// prefill stores CandlePrefill events before the clients connect, their event times spread
// over the last candlePrefillSpan, as fast as the bus takes them: the history a long
// /api/candles window covers.
func (r *runner) prefill(ctx context.Context, rep *Report) error {
	n := r.cfg.CandlePrefill
	if n <= 0 {
		return nil
	}
	start := time.Now()
	from := start.Add(-candlePrefillSpan).UnixNano()
	step := int64(candlePrefillSpan) / int64(n)
	for i := range n {
		if err := r.pub.publishOne(ctx, from+int64(i)*step); err != nil {
			return fmt.Errorf("loadgen: prefill: %w", err)
		}
	}
	stored := time.Since(start)
	// The clients must not connect while the feed still applies the prefill: they would get
	// its deltas late, and the steps would measure the catch-up.
	applied := r.waitApplied(ctx, r.pub.published.Load())
	rep.Notes = append(rep.Notes, fmt.Sprintf("prefill: %d events stored in %.1f s before the clients connected, event times spread over the last %v; %s",
		n, stored.Seconds(), candlePrefillSpan, applied))
	return nil
}

// prefillApplyTimeout bounds the wait for the feed to apply the prefill.
const prefillApplyTimeout = 3 * time.Minute

// waitApplied waits until the feed's /metrics count at least n events applied (or rejected),
// and says how it went.
func (r *runner) waitApplied(ctx context.Context, n uint64) string {
	if r.tgt.AdminURL == "" {
		return "the feed's /metrics unknown: not waited for it to apply them"
	}
	start := time.Now()
	var got float64
	for time.Since(start) < prefillApplyTimeout {
		var ok bool
		if got, ok = feedEventsApplied(ctx, r.tgt.AdminURL); ok && got >= float64(n) {
			return fmt.Sprintf("the feed applied them %.1f s later", time.Since(start).Seconds())
		}
		if sleepCtx(ctx, 250*time.Millisecond) != nil {
			break
		}
	}
	return fmt.Sprintf("the feed had applied %.0f of %d events when the clients connected", got, n)
}

// feedEventsApplied reads the events the feed applied or rejected from its /metrics.
func feedEventsApplied(ctx context.Context, adminURL string) (float64, bool) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, adminURL+"/metrics", nil)
	if err != nil {
		return 0, false
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		return 0, false
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		return 0, false
	}
	var n float64
	for _, line := range strings.Split(string(body), "\n") {
		name, val, ok := strings.Cut(line, " ")
		if !ok || (name != "tickwire_feed_events_total" && !strings.HasPrefix(name, "tickwire_feed_events_rejected_total{")) {
			continue
		}
		if v, err := strconv.ParseFloat(strings.TrimSpace(val), 64); err == nil {
			n += v
		}
	}
	return n, true
}

// runCandles measures a baseline step, then a step with the abusers running.
func (r *runner) runCandles(ctx context.Context, rate float64, emit func(StepReport), rep *Report) error {
	cfg := r.cfg
	rep.Notes = append(rep.Notes, fmt.Sprintf("candle abuse: %d clients each ask GET /api/candles for %d s bars over the %v up to now, one request after another with a %v pause, round-robin over the instruments; not in the step figures",
		cfg.CandleAbusers, cfg.CandleInterval, cfg.CandleWindow, candleAbusePause))
	r.feedRSS.reset()
	base, err := r.measure(ctx, "baseline", rate, cfg.Warmup, cfg.Hold)
	if err != nil {
		return err
	}
	emit(base)
	r.feedRSS.reset()
	a := newCandleAbuse(r.tgt.HTTPURL, r.pub.IDs(), cfg.CandleInterval, cfg.CandleWindow)
	if cfg.CandleControl {
		a.path = "/healthz"
		rep.Notes = append(rep.Notes, "control run: the abusers ask GET /healthz instead, in the same loop: the cost of the requests themselves")
	}
	actx, stop := context.WithCancel(ctx)
	a.start(actx, cfg.CandleAbusers)
	with, err := r.measure(ctx, "abuse", rate, cfg.Warmup, cfg.Hold)
	stop()
	a.wait()
	if err != nil {
		return err
	}
	emit(with)
	if base.OK {
		rep.Best = &rep.Steps[len(rep.Steps)-2]
	}
	rep.Candles = a.report(cfg)
	cr := rep.Candles
	cr.BaselineP50, cr.BaselineP99, cr.AbuseP50, cr.AbuseP99 = base.Latency.P50, base.Latency.P99, with.Latency.P50, with.Latency.P99
	cr.BaselineFeedCPU, cr.AbuseFeedCPU = base.FeedCPU, with.FeedCPU
	cr.FeedRSSMaxBaseline, cr.FeedRSSMaxAbuse = base.FeedRSSMax, with.FeedRSSMax
	return nil
}

// candleAbuse is N loops asking /api/candles; every goroutine is awaited by wait.
type candleAbuse struct {
	base     string // http://host:port of the feed (loopback: checked with the target)
	path     string // /api/candles, or /healthz in a control run
	ids      []string
	interval int
	window   time.Duration
	client   *http.Client
	hist     Histogram
	wg       sync.WaitGroup

	mu       sync.Mutex
	byStatus map[string]uint64 // guarded by mu
}

func newCandleAbuse(base string, ids []string, interval int, window time.Duration) *candleAbuse {
	return &candleAbuse{base: base, path: "/api/candles", ids: ids, interval: interval, window: window, byStatus: map[string]uint64{},
		client: &http.Client{Timeout: candleRequestTimeout, Transport: &http.Transport{MaxIdleConnsPerHost: 256}}}
}

func (a *candleAbuse) start(ctx context.Context, n int) {
	for i := range n {
		a.wg.Add(1)
		go func() {
			defer a.wg.Done()
			for k := i; ctx.Err() == nil; k += n {
				a.one(ctx, a.ids[k%len(a.ids)])
				if sleepCtx(ctx, candleAbusePause) != nil {
					return
				}
			}
		}()
	}
}

// wait returns once every loop has ended (after its context was cancelled).
func (a *candleAbuse) wait() {
	a.wg.Wait()
	a.client.CloseIdleConnections()
}

func (a *candleAbuse) one(ctx context.Context, id string) {
	now := time.Now()
	q := url.Values{"instrument": {id}, "interval": {strconv.Itoa(a.interval)},
		"from": {strconv.FormatInt(now.Add(-a.window).Unix(), 10)}, "to": {strconv.FormatInt(now.Unix()+1, 10)}}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, a.base+a.path+"?"+q.Encode(), nil)
	if err != nil {
		a.count("error")
		return
	}
	resp, err := a.client.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			a.count(unfinished) // still running when the step ended
		} else {
			a.count("error")
		}
		return
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if ctx.Err() != nil {
		a.count(unfinished)
		return
	}
	a.hist.Record(int64(time.Since(now)))
	a.count(strconv.Itoa(resp.StatusCode))
}

func (a *candleAbuse) count(status string) {
	a.mu.Lock()
	a.byStatus[status]++
	a.mu.Unlock()
}

func (a *candleAbuse) report(cfg Config) *CandlesReport {
	h := NewHistSnapshot()
	a.hist.Take(h)
	cr := &CandlesReport{Abusers: cfg.CandleAbusers, IntervalS: cfg.CandleInterval, WindowS: cfg.CandleWindow.Seconds(),
		Prefill: cfg.CandlePrefill, ByStatus: map[string]uint64{}, Latency: h.Summary()}
	a.mu.Lock()
	for k, v := range a.byStatus {
		cr.ByStatus[k] = v
		cr.Requests += v
	}
	a.mu.Unlock()
	return cr
}

// writeCandles adds the candle abuse summary to the table.
func (r *Report) writeCandles(w io.Writer) {
	c := r.Candles
	if c == nil {
		return
	}
	var st []string
	for k := range c.ByStatus {
		st = append(st, k)
	}
	sort.Strings(st)
	var parts string
	for _, k := range st {
		parts += fmt.Sprintf(" %s x%d", k, c.ByStatus[k])
	}
	fmt.Fprintf(w, "candle requests (%d abusers, %d s bars over %.0f h): %d made:%s; answered in p50 %s ms p99 %s ms max %s ms\n",
		c.Abusers, c.IntervalS, c.WindowS/3600, c.Requests, parts, ms(c.Latency.P50), ms(c.Latency.P99), ms(c.Latency.Max))
	fmt.Fprintf(w, "SUMMARY candles: live p50 %s -> %s ms, p99 %s -> %s ms without -> with the abusers; feed %.2f -> %.2f cores, RSS max %s -> %s MiB\n",
		ms(c.BaselineP50), ms(c.AbuseP50), ms(c.BaselineP99), ms(c.AbuseP99), c.BaselineFeedCPU, c.AbuseFeedCPU,
		mib(c.FeedRSSMaxBaseline), mib(c.FeedRSSMaxAbuse))
}
