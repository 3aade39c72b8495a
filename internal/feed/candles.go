package feed

// GET /api/candles: bars of any interval over any window the feed knows, at a bounded cost
// (docs/PROTOCOL.md §2.5).
//
// Where bars come from:
//   - the candle store (candlestore.go): every trade the feed takes in, folded into bars of
//     Candles.StoreInterval (60 s) per instrument, kept for Candles.StoreSpan (24 h). An interval
//     that is a multiple of the store's is aggregated from those bars: no event is read, and the
//     work is at most StoreSpan/StoreInterval bars (1,440) whatever the window.
//   - the event store (JetStream), read only for what the bars cannot say: an interval that is
//     not a multiple of the store's (a window of at most Candles.MaxScanWindow), and the ends of a
//     window that cut a stored bar in two (at most one store interval at each end).
//
// What bounds the cost, in the order it is checked, and the answer past each limit:
//   - requests per client address: Rate/s, Burst at once (429 rate_limited);
//   - the request itself: a valid id and interval, at most MaxBars bars (400 bad_request,
//     too_many_bars); the feed caught up with the store (503 not_ready);
//   - requests of all clients together: GlobalRate/s, GlobalBurst at once (429 busy): what
//     bounds the feed's CPU for candles however many addresses ask, so live clients keep theirs;
//   - requests being answered at once: MaxInFlight (429 busy);
//   - a window read from the event store: at most MaxScanWindow (400 scan_window), MaxScans
//     reads at once and ScanRate events read per second by all of them (429 scan_busy), at most
//     MaxScanEvents events read per request (400 scan_events) within ScanTimeout (503 timeout).
//     A read costs 6-12 us of CPU per event, NATS included (BenchmarkCandleScan): the defaults
//     hold one request to about half a second of a core and all of them to a tenth of a core.
// Nothing waits for a slot: a request that cannot start at once is refused with Retry-After,
// so no goroutine, memory or CPU builds up behind a slow read.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/time/rate"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/tickwire/tickwire/internal/bus"
	pb "github.com/tickwire/tickwire/pkg/proto/tickwire/v1"
	"github.com/tickwire/tickwire/pkg/wire"
)

// CandlesConfig bounds what GET /api/candles may cost. Zero fields take the defaults below.
type CandlesConfig struct {
	// StoreInterval is the bar length of the candle store, in seconds; it must divide a day
	// (0: 60; negative: no store, every request reads the event store). Intervals that are a
	// multiple of it are answered from the store.
	StoreInterval int
	// StoreSpan is how much event time of bars the store keeps per instrument, back from the
	// instrument's newest bar (0: 24 h, the stream's default max age). Memory: at most
	// StoreSpan/StoreInterval bars of 80 bytes per instrument (1,440: 115 KiB).
	StoreSpan time.Duration
	// MaxBars caps the bars one request may ask for (0: 10,000).
	MaxBars int
	// MaxScanWindow caps a window read from the event store, for an interval the store cannot
	// answer (0: 5 min: the 300 one-second bars a chart shows).
	MaxScanWindow time.Duration
	// MaxScanEvents caps the events one request may read from the event store (0: 50,000,
	// about half a second of a core).
	MaxScanEvents int
	// ScanRate caps the events all requests together read from the event store per second,
	// on average (0: 10,000, about a tenth of a core; negative: no cap). A read is charged what
	// it read when it ends; while the charges exceed the rate, reads are refused.
	ScanRate float64
	// MaxScans caps the event-store reads running at once (0: 1).
	MaxScans int
	// MaxInFlight caps the requests being answered at once (0: 4).
	MaxInFlight int
	// Rate and Burst limit the requests of one client address (0: 5/s, burst 20; a negative
	// Rate: no per-client limit).
	Rate  float64
	Burst int
	// GlobalRate and GlobalBurst limit the requests of all clients together (0: 50/s, burst
	// 50; a negative GlobalRate: no limit). An answer from the store costs about a quarter of a
	// millisecond of CPU (BenchmarkCandlesFromStore: the dashboard's 1-hour chart), so the
	// default holds candles to about 1 % of a core; with per-address limits alone, clients from
	// many addresses could take any share (measured: docs/BENCHMARKS.md).
	GlobalRate  float64
	GlobalBurst int
	// ScanTimeout bounds one request's event-store reads (0: 5 s).
	ScanTimeout time.Duration
}

func (c CandlesConfig) withDefaults() CandlesConfig {
	if c.StoreInterval == 0 {
		c.StoreInterval = 60
	}
	if c.StoreSpan <= 0 {
		c.StoreSpan = bus.DefaultMaxAge
	}
	if c.MaxBars <= 0 {
		c.MaxBars = 10_000
	}
	if c.MaxScanWindow <= 0 {
		c.MaxScanWindow = 5 * time.Minute
	}
	if c.MaxScanEvents <= 0 {
		c.MaxScanEvents = 50_000
	}
	if c.ScanRate == 0 {
		c.ScanRate = 10_000
	}
	if c.MaxScans <= 0 {
		c.MaxScans = 1
	}
	if c.MaxInFlight <= 0 {
		c.MaxInFlight = 4
	}
	if c.Rate == 0 {
		c.Rate = 5
	}
	if c.Burst <= 0 {
		c.Burst = 20
	}
	if c.GlobalRate == 0 {
		c.GlobalRate = 50
	}
	if c.GlobalBurst <= 0 {
		c.GlobalBurst = 50
	}
	if c.ScanTimeout <= 0 {
		c.ScanTimeout = 5 * time.Second
	}
	return c
}

// maxStoreBars bounds StoreSpan/StoreInterval: 1,000,000 bars is 80 MB per instrument.
const maxStoreBars = 1_000_000

func (c CandlesConfig) validate() error {
	c = c.withDefaults()
	if c.StoreInterval > 0 {
		if 86400%c.StoreInterval != 0 {
			return fmt.Errorf("feed: candle store interval %ds must divide a day", c.StoreInterval)
		}
		iv := time.Duration(c.StoreInterval) * time.Second
		if c.StoreSpan < iv {
			return fmt.Errorf("feed: candle store span %v is shorter than its interval %v", c.StoreSpan, iv)
		}
		if n := c.StoreSpan / iv; n > maxStoreBars {
			return fmt.Errorf("feed: candle store span %v holds %d bars of %v, more than %d", c.StoreSpan, n, iv, maxStoreBars)
		}
	}
	for _, r := range []float64{c.Rate, c.GlobalRate, c.ScanRate} {
		if math.IsNaN(r) || math.IsInf(r, 0) {
			return fmt.Errorf("feed: candle request rate %v", r)
		}
	}
	return nil
}

// storeBars is how many bars of its interval the store keeps per instrument.
func (c CandlesConfig) storeBars() int {
	return int(c.StoreSpan / (time.Duration(c.StoreInterval) * time.Second))
}

// candles serves GET /api/candles. Its fields are set once by newCandles.
type candles struct {
	cfg      CandlesConfig
	store    *candleStore  // nil: no store
	clients  *clientRates  // nil: no per-client limit
	global   *rate.Limiter // nil: no global limit
	scanned  *scanBudget   // nil: no cap on events read per second
	inflight chan struct{}
	scans    chan struct{}
	m        *candleMetrics
}

// newCandles builds the candle store and limits of cfg (defaults applied); its metrics are
// registered on reg unless nil.
func newCandles(cfg CandlesConfig, reg prometheus.Registerer) *candles {
	m := newCandleMetrics()
	if reg != nil {
		reg.MustRegister(m.collectors()...)
	}
	c := &candles{cfg: cfg, m: m, inflight: make(chan struct{}, cfg.MaxInFlight), scans: make(chan struct{}, cfg.MaxScans)}
	if cfg.StoreInterval > 0 {
		c.store = newCandleStore(int64(cfg.StoreInterval), cfg.storeBars(), func(d int) { m.storeBars.Add(float64(d)) })
	}
	if cfg.Rate > 0 {
		c.clients = newClientRates(rate.Limit(cfg.Rate), cfg.Burst)
	}
	if cfg.GlobalRate > 0 {
		c.global = rate.NewLimiter(rate.Limit(cfg.GlobalRate), cfg.GlobalBurst)
	}
	if cfg.ScanRate > 0 {
		c.scanned = &scanBudget{lim: rate.NewLimiter(rate.Limit(cfg.ScanRate), cfg.MaxScanEvents)}
	}
	return c
}

// observe takes in one live event (see candleStore.observe).
func (c *candles) observe(ev *pb.Event) {
	if c.store != nil {
		c.store.observe(ev)
	}
}

// apiError is a refused or failed request: its HTTP status and the code and message of the
// documented error body. code is also the refusal's metric label.
type apiError struct {
	status     int
	code       string
	msg        string
	retryAfter time.Duration // sent as Retry-After when > 0
}

func (e *apiError) Error() string { return e.code + ": " + e.msg }

// Refusal codes (docs/PROTOCOL.md §2.5); each is a label of the refused-requests counter.
const (
	refBadRequest  = "bad_request"
	refTooManyBars = "too_many_bars"
	refScanWindow  = "scan_window"
	refScanEvents  = "scan_events"
	refRateLimited = "rate_limited"
	refBusy        = "busy"
	refScanBusy    = "scan_busy"
	refNotReady    = "not_ready"
	refNoHistory   = "no_history"
	refTimeout     = "timeout"
	refStoreError  = "store_error"
)

var refusalCodes = []string{refBadRequest, refTooManyBars, refScanWindow, refScanEvents, refRateLimited, refBusy,
	refScanBusy, refNotReady, refNoHistory, refTimeout, refStoreError}

func badRequest(format string, args ...any) *apiError {
	return &apiError{status: http.StatusBadRequest, code: refBadRequest, msg: fmt.Sprintf(format, args...)}
}

// candleMetrics are /api/candles' series.
type candleMetrics struct {
	served    *prometheus.CounterVec // source: bars (the store alone), store (the event store read too)
	refused   *prometheus.CounterVec // reason: a refusal code
	scanned   prometheus.Counter
	storeBars prometheus.Gauge
}

func newCandleMetrics() *candleMetrics {
	m := &candleMetrics{
		served: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tickwire_feed_candle_requests_total",
			Help: "GET /api/candles requests answered, by source: bars (the candle store alone) or store (the event store read too)."}, []string{"source"}),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tickwire_feed_candle_requests_refused_total",
			Help: "GET /api/candles requests refused or failed, by reason (the error body's code)."}, []string{"reason"}),
		scanned: prometheus.NewCounter(prometheus.CounterOpts{Name: "tickwire_feed_candle_scan_events_total",
			Help: "Events read from the event store to answer GET /api/candles."}),
		storeBars: prometheus.NewGauge(prometheus.GaugeOpts{Name: "tickwire_feed_candle_store_bars",
			Help: "Bars held by the candle store, all instruments."}),
	}
	for _, code := range refusalCodes { // every reason shows, at 0, from the start
		m.refused.WithLabelValues(code)
	}
	m.served.WithLabelValues("bars")
	m.served.WithLabelValues("store")
	return m
}

func (m *candleMetrics) collectors() []prometheus.Collector {
	return []prometheus.Collector{m.served, m.refused, m.scanned, m.storeBars}
}

// candleRequest is a parsed request: bars of iv seconds from instrument's trades in w.
type candleRequest struct {
	instrument string
	iv         int64
	w          nsSpan
}

// Times outside [1970, 2200) are refused: nanoseconds since 1970 in an int64 end in 2262.
var (
	minCandleTime = time.Unix(0, 0)
	maxCandleTime = time.Date(2200, 1, 1, 0, 0, 0, 0, time.UTC)
)

// parseCandleRequest reads instrument=ID&interval=S&from=T&to=T; to defaults to now, from to
// 300 bars before to.
func parseCandleRequest(q url.Values, now time.Time, maxBars int) (candleRequest, *apiError) {
	var req candleRequest
	req.instrument = q.Get("instrument")
	if err := wire.CheckInstrumentID(req.instrument); err != nil {
		return req, badRequest("instrument: %v", err)
	}
	iv, err := strconv.ParseUint(q.Get("interval"), 10, 32)
	if err != nil || iv == 0 || 86400%iv != 0 {
		return req, badRequest("interval: seconds per bar that divide a day, e.g. 60")
	}
	req.iv = int64(iv)
	to := now
	if v := q.Get("to"); v != "" {
		if to, err = parseTime(v); err != nil {
			return req, badRequest("to: %v", err)
		}
	}
	if to.Before(minCandleTime) || !to.Before(maxCandleTime) {
		return req, badRequest("to: outside 1970 .. 2200")
	}
	from := to.Add(-300 * time.Duration(iv) * time.Second)
	if v := q.Get("from"); v != "" {
		if from, err = parseTime(v); err != nil {
			return req, badRequest("from: %v", err)
		}
	}
	if from.Before(minCandleTime) || !from.Before(maxCandleTime) {
		return req, badRequest("from: outside 1970 .. 2200")
	}
	req.w = nsSpan{from.UnixNano(), to.UnixNano()}
	if req.w.empty() {
		return req, badRequest("empty window: from %s is not before to %s", from.UTC().Format(time.RFC3339Nano), to.UTC().Format(time.RFC3339Nano))
	}
	ivNs := req.iv * 1e9
	if bars := (req.w.to - req.w.from + ivNs - 1) / ivNs; bars > int64(maxBars) {
		return req, &apiError{status: http.StatusBadRequest, code: refTooManyBars,
			msg: fmt.Sprintf("the window holds %d bars of %ds; at most %d: ask a shorter window or a longer interval", bars, iv, maxBars)}
	}
	return req, nil
}

func parseTime(v string) (time.Time, error) {
	if sec, err := strconv.ParseInt(v, 10, 64); err == nil {
		if sec < minCandleTime.Unix() || sec >= maxCandleTime.Unix() {
			return time.Time{}, errors.New("outside 1970 .. 2200")
		}
		return time.Unix(sec, 0), nil
	}
	return time.Parse(time.RFC3339Nano, v)
}

// barBuilder folds pieces of trading (single trades, or stored bars), in time order, into bars
// of one interval. A piece older than the latest bar is dropped: bars stay in order.
type barBuilder struct {
	ivS int64
	out []*pb.Candle
}

func (b *barBuilder) add(ts, open, high, low, close, volume int64, count uint32) {
	start := floorDiv(floorDiv(ts, 1e9), b.ivS) * b.ivS
	if n := len(b.out); n > 0 {
		c := b.out[n-1]
		switch {
		case c.StartS == start:
			c.High, c.Low, c.Close = max(c.High, high), min(c.Low, low), close
			c.Volume += volume
			c.TradeCount += count
			return
		case c.StartS > start:
			return
		}
	}
	b.out = append(b.out, &pb.Candle{IntervalS: uint32(b.ivS), StartS: start, Open: open, High: high, Low: low,
		Close: close, Volume: volume, TradeCount: count})
}

func (b *barBuilder) addBar(s *storedBar) {
	b.add(s.startNs, s.open, s.high, s.low, s.close, s.volume, s.count)
}

type trade struct{ ts, price, size int64 }

func (b *barBuilder) addTrades(ts []trade) {
	for _, t := range ts {
		b.add(t.ts, t.price, t.price, t.price, t.price, t.size, 1)
	}
}

// answer builds the bars of req. known reports whether the feed has seen the instrument.
func (c *candles) answer(ctx context.Context, src EventSource, known bool, req candleRequest) (bars []*pb.Candle, source string, err error) {
	b := &barBuilder{ivS: req.iv}
	if !known { // the feed has read every stored event: nothing of it is stored
		return nil, "bars", nil
	}
	if c.store != nil && (req.iv*1e9)%c.store.ivNs == 0 {
		p, folded := c.store.queryInto(req.instrument, req.w, b)
		if folded {
			return b.out, "bars", nil
		}
		var head, tail []trade
		if p.reads() > 0 {
			err := c.withScan(src, func(budget *int) error {
				var err error
				if head, err = c.scan(ctx, src, req.instrument, p.head, budget); err != nil {
					return err
				}
				tail, err = c.scan(ctx, src, req.instrument, p.tail, budget)
				return err
			})
			if err != nil {
				return nil, "", err
			}
			source = "store"
		} else {
			source = "bars"
		}
		b.addTrades(head)
		for i := range p.bars {
			b.addBar(&p.bars[i])
		}
		b.addTrades(tail)
		return b.out, source, nil
	}
	if d := time.Duration(req.w.to - req.w.from); d > c.cfg.MaxScanWindow {
		return nil, "", &apiError{status: http.StatusBadRequest, code: refScanWindow,
			msg: fmt.Sprintf("a %ds interval is read from the event store, over at most %v (asked %v): ask a shorter window, or an interval that is a multiple of %ds",
				req.iv, c.cfg.MaxScanWindow, d.Round(time.Second), c.cfg.StoreInterval)}
	}
	var ts []trade
	err = c.withScan(src, func(budget *int) error {
		var err error
		ts, err = c.scan(ctx, src, req.instrument, req.w, budget)
		return err
	})
	if err != nil {
		return nil, "", err
	}
	b.addTrades(ts)
	return b.out, "store", nil
}

// withScan runs f holding one of the MaxScans event-store read slots, with a budget of
// MaxScanEvents events, or refuses at once; what f read is charged to the ScanRate budget.
func (c *candles) withScan(src EventSource, f func(budget *int) error) error {
	if src == nil {
		return &apiError{status: http.StatusNotImplemented, code: refNoHistory,
			msg: fmt.Sprintf("this feed does not read its event store: only intervals that are a multiple of %ds, over whole bars", c.cfg.StoreInterval)}
	}
	if c.scanned != nil {
		if ok, wait := c.scanned.admit(time.Now()); !ok {
			return &apiError{status: http.StatusTooManyRequests, code: refScanBusy, retryAfter: wait,
				msg: fmt.Sprintf("event-store reads took more than %g events/s; retry later", c.cfg.ScanRate)}
		}
	}
	select {
	case c.scans <- struct{}{}:
	default:
		return &apiError{status: http.StatusTooManyRequests, code: refScanBusy, retryAfter: time.Second,
			msg: fmt.Sprintf("%d event-store reads already running; retry shortly", c.cfg.MaxScans)}
	}
	defer func() { <-c.scans }()
	budget := c.cfg.MaxScanEvents
	err := f(&budget)
	if c.scanned != nil {
		c.scanned.charge(time.Now(), c.cfg.MaxScanEvents-budget)
	}
	return err
}

// scanBudget is the events all event-store reads may take per second, post-paid: a read is
// charged what it read when it ends (its cost is not known before), and while the charges
// exceed the rate (the bucket holds less than one event) the next read is refused.
type scanBudget struct {
	lim *rate.Limiter // rate ScanRate, burst MaxScanEvents (so one read never exceeds it)
}

// admit reports whether a read may start, or how long until one may.
func (b *scanBudget) admit(now time.Time) (bool, time.Duration) {
	tokens := b.lim.TokensAt(now)
	if tokens >= 1 {
		return true, 0
	}
	return false, time.Duration((1 - tokens) / float64(b.lim.Limit()) * float64(time.Second))
}

// charge takes n events read off the bucket, into debt if need be.
func (b *scanBudget) charge(now time.Time, n int) {
	if n > 0 {
		b.lim.ReserveN(now, n) // n <= the burst: always granted, the delay is the debt
	}
}

// stopAfterWindow: events arrive out of event-time order by up to this much, so a read starts
// this long before its window and goes on this long past it.
const stopAfterWindow = time.Minute

var (
	errStopScan   = errors.New("feed: stop scan") // the read is past its window: not a failure
	errScanBudget = errors.New("feed: scan budget spent")
)

// scan returns instrument's valid trades with event time in w, in store order, reading at
// most *budget events (and taking them off it) within ScanTimeout.
func (c *candles) scan(ctx context.Context, src EventSource, instrument string, w nsSpan, budget *int) ([]trade, error) {
	if w.empty() {
		return nil, nil
	}
	subject, err := bus.EventSubject(instrument)
	if err != nil {
		return nil, badRequest("instrument: %v", err)
	}
	ctx, cancel := context.WithTimeout(ctx, c.cfg.ScanTimeout)
	defer cancel()
	var (
		out      []trade // written by the handler; read after Stop, which waits for it
		scanned  int     // likewise
		limit    = *budget
		stopNs   = w.to + int64(stopAfterWindow)
		finished = make(chan struct{})
	)
	cons, err := src.ConsumeEvents(ctx, bus.ConsumeOptions{Subjects: []string{subject},
		StartTime: time.Unix(0, w.from).Add(-stopAfterWindow)}, func(ev *pb.Event) error {
		if scanned++; scanned > limit {
			close(finished)
			return errScanBudget
		}
		ts := eventTime(ev)
		if ts > stopNs { // well past the window in event time: later events are later still
			close(finished)
			return errStopScan
		}
		if t := ev.GetTrade(); validTrade(t) && ts >= w.from && ts < w.to {
			out = append(out, trade{ts, t.Price, t.Size})
		}
		return nil
	})
	if err != nil {
		if ctx.Err() != nil {
			return nil, c.scanTimeout(ctx)
		}
		return nil, &apiError{status: http.StatusBadGateway, code: refStoreError, msg: "reading the event store: " + err.Error()}
	}
	select {
	case <-cons.CaughtUp():
	case <-finished:
	case <-ctx.Done():
	}
	cons.Stop()
	*budget -= min(scanned, limit)
	c.m.scanned.Add(float64(min(scanned, limit)))
	switch err := cons.Err(); {
	case errors.Is(err, errScanBudget):
		return nil, &apiError{status: http.StatusBadRequest, code: refScanEvents,
			msg: fmt.Sprintf("the window holds more than %d stored events of %s: ask a shorter window, or an interval that is a multiple of %ds",
				c.cfg.MaxScanEvents, instrument, c.cfg.StoreInterval)}
	case err != nil && !errors.Is(err, errStopScan):
		return nil, &apiError{status: http.StatusBadGateway, code: refStoreError, msg: "reading the event store: " + err.Error()}
	case ctx.Err() != nil:
		return nil, c.scanTimeout(ctx)
	}
	return out, nil
}

func (c *candles) scanTimeout(ctx context.Context) *apiError {
	return &apiError{status: http.StatusServiceUnavailable, code: refTimeout, retryAfter: time.Second,
		msg: fmt.Sprintf("the event store did not answer within %v", c.cfg.ScanTimeout)}
}

// serveCandles answers GET /api/candles?instrument=ID&interval=SECONDS&from=T&to=T with a
// protojson CandleList, or a refusal (docs/PROTOCOL.md §2.5).
func (s *Server) serveCandles(w http.ResponseWriter, r *http.Request) {
	c := s.candles
	bars, source, err := c.serve(r, s)
	if err != nil {
		var ce *apiError
		if !errors.As(err, &ce) {
			ce = &apiError{status: http.StatusInternalServerError, code: "internal", msg: err.Error()}
		}
		c.m.refused.WithLabelValues(ce.code).Inc()
		writeAPIError(w, ce)
		return
	}
	b, err := protojson.Marshal(&pb.CandleList{Candles: bars})
	if err != nil {
		c.m.refused.WithLabelValues("internal").Inc()
		writeAPIError(w, &apiError{status: http.StatusInternalServerError, code: "internal", msg: err.Error()})
		return
	}
	c.m.served.WithLabelValues(source).Inc()
	w.Header().Set("Content-Type", "application/json")
	w.Write(b)
}

func (c *candles) serve(r *http.Request, s *Server) ([]*pb.Candle, string, error) {
	now := time.Now()
	if c.clients != nil {
		if ok, wait := c.clients.allow(clientAddress(r, s.cfg.TrustedProxies), now); !ok {
			return nil, "", &apiError{status: http.StatusTooManyRequests, code: refRateLimited, retryAfter: wait,
				msg: fmt.Sprintf("more than %g requests/s (burst %d) from this address", c.cfg.Rate, c.cfg.Burst)}
		}
	}
	req, perr := parseCandleRequest(r.URL.Query(), now, c.cfg.MaxBars)
	if perr != nil {
		return nil, "", perr
	}
	if !s.Ready() {
		return nil, "", &apiError{status: http.StatusServiceUnavailable, code: refNotReady, retryAfter: time.Second,
			msg: "catching up with history; retry shortly"}
	}
	if c.global != nil {
		r := c.global.ReserveN(now, 1)
		if d := r.DelayFrom(now); !r.OK() || d > 0 {
			r.CancelAt(now)
			return nil, "", &apiError{status: http.StatusTooManyRequests, code: refBusy, retryAfter: max(d, time.Second),
				msg: fmt.Sprintf("more than %g candle requests/s from all clients; retry shortly", c.cfg.GlobalRate)}
		}
	}
	select {
	case c.inflight <- struct{}{}:
	default:
		return nil, "", &apiError{status: http.StatusTooManyRequests, code: refBusy, retryAfter: time.Second,
			msg: fmt.Sprintf("%d candle requests already being answered; retry shortly", c.cfg.MaxInFlight)}
	}
	defer func() { <-c.inflight }()
	s.mu.Lock()
	src := s.history
	s.mu.Unlock()
	return c.answer(r.Context(), src, s.hub.known(req.instrument), req)
}

// writeAPIError writes the documented error body: {"code": ..., "message": ...}.
func writeAPIError(w http.ResponseWriter, e *apiError) {
	if e.retryAfter > 0 {
		w.Header().Set("Retry-After", strconv.FormatInt(int64((e.retryAfter+time.Second-1)/time.Second), 10))
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(e.status)
	b, _ := json.Marshal(struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	}{e.code, e.msg})
	w.Write(append(b, '\n'))
}

// EnableHistory lets GET /api/candles read the event store, for what the candle store cannot
// answer.
func (s *Server) EnableHistory(src EventSource) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.history = src
}

// clientRates is a token bucket per client address.
type clientRates struct {
	limit rate.Limit
	burst int

	mu        sync.Mutex
	buckets   map[string]*rate.Limiter // guarded by mu; at most maxRateClients
	lastSweep time.Time                // guarded by mu
}

// maxRateClients bounds the addresses tracked (about 200 bytes each): past it, idle ones (a
// full bucket, which is what a new one would be) are forgotten, and if every one is active a
// new address is refused until some fill up. Sweeps run at most once a second, so a flood of new
// addresses costs O(maxRateClients) a second, not per request.
const maxRateClients = 10_000

func newClientRates(limit rate.Limit, burst int) *clientRates {
	return &clientRates{limit: limit, burst: burst, buckets: make(map[string]*rate.Limiter)}
}

// allow takes one token from addr's bucket, or says how long until one is there.
func (c *clientRates) allow(addr string, now time.Time) (bool, time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	l := c.buckets[addr]
	if l == nil {
		if len(c.buckets) >= maxRateClients && now.Sub(c.lastSweep) >= time.Second {
			c.lastSweep = now
			for k, b := range c.buckets {
				if b.TokensAt(now) >= float64(c.burst) {
					delete(c.buckets, k)
				}
			}
		}
		if len(c.buckets) >= maxRateClients {
			return false, time.Second
		}
		l = rate.NewLimiter(c.limit, c.burst)
		c.buckets[addr] = l
	}
	r := l.ReserveN(now, 1)
	if !r.OK() {
		return false, time.Second
	}
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now)
		return false, d
	}
	return true, 0
}
