package feed

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	pb "github.com/tickwire/tickwire/pkg/proto/tickwire/v1"
)

// Staleness: an instrument that should be live (it has a bound, and its reference data does
// not say halted or closed) is stale when no event of it arrived within its bound. Events
// arriving live count at the feed's own clock; events read while catching up with the store
// count at their ingest time, so that a feed started while the pipeline is stopped does not
// take the stored past for live data. When every live instrument is stale, the pipeline has
// stopped (ingest down, the store refusing writes, NATS stuck): /readyz reports not ready
// ("stale"), so a load balancer stops sending clients to frozen data. Some stale instruments
// among fresh ones are a venue's problem, not this replica's: they are reported (metrics,
// /readyz?verbose) but the feed stays ready, since every replica sees the same.

// DefaultStaleAfter is the bound of an instrument no StaleRule names: a liquid instrument
// ticks many times a second, and a minute of silence from every one is an outage.
const DefaultStaleAfter = time.Minute

// maxStaleSeries bounds tickwire_feed_instrument_stale's label set: beyond this many
// instruments the rest are counted in tickwire_feed_stale_instruments only.
const maxStaleSeries = 10000

// maxListedStale bounds the stale instruments /readyz?verbose lists.
const maxListedStale = 100

// StaleRule gives the instruments matching Pattern their own staleness bound. Pattern is an
// instrument id ("binance:BTCUSDT") or a prefix ending with "*" ("kraken:*", "*"); After <= 0
// means never stale (an instrument that may rightly be silent: a closed market, a replayed
// file).
type StaleRule struct {
	Pattern string
	After   time.Duration
}

// ParseStaleRule parses "PATTERN=DURATION", e.g. "kraken:*=5m" or "lobster:*=0".
func ParseStaleRule(s string) (StaleRule, error) {
	pat, dur, ok := strings.Cut(s, "=")
	if !ok {
		return StaleRule{}, fmt.Errorf("feed: stale rule %q: want PATTERN=DURATION", s)
	}
	r := StaleRule{Pattern: strings.TrimSpace(pat)}
	if d := strings.TrimSpace(dur); d != "0" {
		var err error
		if r.After, err = time.ParseDuration(d); err != nil {
			return StaleRule{}, fmt.Errorf("feed: stale rule %q: %w", s, err)
		}
	}
	return r, r.validate()
}

func (r StaleRule) validate() error {
	if r.Pattern == "" {
		return fmt.Errorf("feed: stale rule with an empty pattern")
	}
	if i := strings.IndexByte(r.Pattern, '*'); i >= 0 && i != len(r.Pattern)-1 {
		return fmt.Errorf("feed: stale rule %q: '*' only at the end", r.Pattern)
	}
	return nil
}

// staleAfter returns the bound of instrument id: the rule with the longest matching pattern
// (an exact id before any prefix), else def.
func staleAfter(rules []StaleRule, def time.Duration, id string) time.Duration {
	best, bestLen := def, -1
	for _, r := range rules {
		n := len(r.Pattern)
		switch {
		case r.Pattern == id:
			n++ // exact beats a prefix of the same length
		case strings.HasSuffix(r.Pattern, "*") && strings.HasPrefix(id, r.Pattern[:n-1]):
		default:
			continue
		}
		if n > bestLen {
			best, bestLen = r.After, n
		}
	}
	return best
}

// staleness tracks when each instrument last had an event. observe runs on the dispatching
// goroutine for every event; run, on its own goroutine, turns the times into states, metrics
// and logs; readiness and the HTTP handlers read what run last found.
type staleness struct {
	rules []StaleRule
	def   time.Duration
	tick  time.Duration
	now   func() time.Time
	log   *slog.Logger

	gauge   *prometheus.GaugeVec // instrument: 1 stale, 0 fresh
	nStale  prometheus.Gauge
	nLive   prometheus.Gauge
	allGone prometheus.Gauge // 1 while every live instrument is stale

	// clockNs is now() as of the last check, what observe stamps events with: reading the
	// clock per event cost ~60 ns (a quarter of the rest of observe), and a tick is at most a
	// quarter of the shortest bound, so an age is overestimated by less than that.
	clockNs atomic.Int64

	mu    sync.RWMutex
	insts map[string]*freshness // guarded by mu (the map; entries are atomics)

	report atomic.Pointer[staleReport] // written by run
}

// freshness is one instrument's record.
type freshness struct {
	lastNs atomic.Int64 // see observe
	status atomic.Int32 // pb.InstrumentStatus of the latest reference data
	after  time.Duration
	series bool // has a tickwire_feed_instrument_stale series; set at creation
	stale  bool // run's goroutine only
}

// staleReport is what run found at its last pass.
type staleReport struct {
	at       time.Time
	live     int
	stale    []string // sorted; at most maxListedStale
	nStale   int
	oldestNs int64 // the longest silence among stale instruments
}

func (r *staleReport) allStale() bool { return r != nil && r.live > 0 && r.nStale == r.live }

// newStaleness tracks cfg's instruments against the clock now (nil: time.Now).
func newStaleness(cfg Config, now func() time.Time, logger *slog.Logger, reg prometheus.Registerer) *staleness {
	st := &staleness{
		rules: cfg.StaleRules,
		def:   cfg.StaleAfter,
		now:   now,
		log:   logger,
		insts: make(map[string]*freshness),
		gauge: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "tickwire_feed_instrument_stale",
			Help: "1 while no event of a live instrument (not halted or closed) arrived within its staleness bound, else 0."}, []string{"instrument"}),
		nStale: prometheus.NewGauge(prometheus.GaugeOpts{Name: "tickwire_feed_stale_instruments",
			Help: "Live instruments without an event within their staleness bound."}),
		nLive: prometheus.NewGauge(prometheus.GaugeOpts{Name: "tickwire_feed_live_instruments",
			Help: "Instruments expected to tick: a staleness bound, and not halted or closed."}),
		allGone: prometheus.NewGauge(prometheus.GaugeOpts{Name: "tickwire_feed_stale",
			Help: "1 while every live instrument is stale: the pipeline stopped, /readyz reports not ready."}),
	}
	if st.now == nil {
		st.now = time.Now
	}
	st.clockNs.Store(st.now().UnixNano())
	// Check often enough to see the shortest bound pass within a quarter of it, at most once
	// a second and at least every 10 ms (tests use short bounds).
	st.tick = time.Second
	for _, d := range append([]time.Duration{st.def}, ruleBounds(st.rules)...) {
		if d > 0 {
			st.tick = min(st.tick, max(d/4, 10*time.Millisecond))
		}
	}
	if reg != nil {
		reg.MustRegister(st.gauge, st.nStale, st.nLive, st.allGone)
	}
	return st
}

func ruleBounds(rules []StaleRule) []time.Duration {
	out := make([]time.Duration, len(rules))
	for i, r := range rules {
		out[i] = r.After
	}
	return out
}

// observe records that ev arrived. While the feed catches up with the store (caughtUp false),
// the event counts at its ingest time (when ingest had it, at most now); live, at now (the
// clock of the last check).
func (st *staleness) observe(ev *pb.Event, caughtUp bool) {
	id := ev.GetInstrument()
	st.mu.RLock()
	f := st.insts[id]
	st.mu.RUnlock()
	if f == nil {
		f = st.add(id)
	}
	t := st.clockNs.Load()
	if ing := ev.GetIngestTimeNs(); !caughtUp && ing > 0 && ing < t {
		t = ing
	}
	if t > f.lastNs.Load() { // an older stored event never makes an instrument fresher
		f.lastNs.Store(t)
	}
	if info := ev.GetInfo(); info != nil {
		f.status.Store(int32(info.GetStatus()))
	}
}

func (st *staleness) add(id string) *freshness {
	st.mu.Lock()
	defer st.mu.Unlock()
	if f := st.insts[id]; f != nil {
		return f
	}
	f := &freshness{after: staleAfter(st.rules, st.def, id)}
	if f.after > 0 && len(st.insts) < maxStaleSeries {
		f.series = true
		st.gauge.WithLabelValues(id).Set(0)
	}
	st.insts[id] = f
	return f
}

// live reports whether f is expected to tick.
func (f *freshness) live() bool {
	s := pb.InstrumentStatus(f.status.Load())
	return f.after > 0 && s != pb.InstrumentStatus_INSTRUMENT_STATUS_HALTED && s != pb.InstrumentStatus_INSTRUMENT_STATUS_CLOSED
}

// run checks every tick until quit closes.
func (st *staleness) run(quit <-chan struct{}) {
	t := time.NewTicker(st.tick)
	defer t.Stop()
	for {
		select {
		case <-quit:
			return
		case <-t.C:
			st.check()
		}
	}
}

// check evaluates every instrument once: states, metrics, logs of what changed, the report.
func (st *staleness) check() {
	now := st.now()
	nowNs := now.UnixNano()
	st.clockNs.Store(nowNs)
	type change struct {
		id    string
		stale bool
	}
	var changes []change
	rep := &staleReport{at: now}
	st.mu.RLock()
	for id, f := range st.insts {
		age := nowNs - f.lastNs.Load()
		stale := false
		if f.live() {
			rep.live++
			if stale = age > int64(f.after); stale {
				rep.nStale++
				rep.oldestNs = max(rep.oldestNs, age)
				if len(rep.stale) < maxListedStale {
					rep.stale = append(rep.stale, id)
				}
			}
		}
		if stale != f.stale {
			f.stale = stale
			changes = append(changes, change{id, stale})
			if f.series {
				st.gauge.WithLabelValues(id).Set(b2f(stale))
			}
		}
	}
	st.mu.RUnlock()
	slices.Sort(rep.stale)
	prev := st.report.Swap(rep)
	st.nLive.Set(float64(rep.live))
	st.nStale.Set(float64(rep.nStale))
	st.allGone.Set(b2f(rep.allStale()))

	if len(changes) > 0 {
		var went, back []string
		for _, c := range changes {
			if c.stale {
				went = append(went, c.id)
			} else {
				back = append(back, c.id)
			}
		}
		if len(went) > 0 {
			slices.Sort(went)
			st.log.Warn("instruments stale: no event within their bound", "count", len(went), "instruments", firstN(went, 10),
				"stale", rep.nStale, "live", rep.live)
		}
		if len(back) > 0 {
			slices.Sort(back)
			st.log.Info("instruments fresh again", "count", len(back), "instruments", firstN(back, 10), "stale", rep.nStale, "live", rep.live)
		}
	}
	switch was := prev.allStale(); {
	case rep.allStale() && !was:
		st.log.Error("every live instrument is stale: the pipeline has stopped (ingest, NATS or the store); /readyz reports not ready",
			"live", rep.live, "silent_for", time.Duration(rep.oldestNs).Round(time.Millisecond))
	case !rep.allStale() && was:
		st.log.Info("events arrive again; /readyz reports ready", "live", rep.live, "stale", rep.nStale)
	}
}

func firstN(ids []string, n int) string {
	if len(ids) <= n {
		return strings.Join(ids, ",")
	}
	return strings.Join(ids[:n], ",") + fmt.Sprintf(",... (%d more)", len(ids)-n)
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// StaleStatus is the feed's staleness, as /readyz?verbose shows it.
type StaleStatus struct {
	// Ready is what /readyz answers: caught up, not shutting down, and not every live
	// instrument stale.
	Ready bool `json:"ready"`
	// CaughtUp: the stored history was replayed (SetReady).
	CaughtUp bool `json:"caught_up"`
	// RevocationsLoaded: the token revocation list was read, or revocation is off (revoke.go).
	RevocationsLoaded bool `json:"revocations_loaded"`
	// Stale: every live instrument is stale (the pipeline stopped).
	Stale bool `json:"stale"`
	// LiveInstruments expected to tick, and how many of them are stale.
	LiveInstruments  int `json:"live_instruments"`
	StaleInstruments int `json:"stale_instruments"`
	// StaleIDs lists the first of them (sorted): only on the admin listener (ReadyzDetail),
	// since the public one would tell anyone without a token which instruments exist.
	StaleIDs []string `json:"stale_ids,omitempty"`
	// LongestSilenceSeconds is the longest time without an event among the stale ones.
	LongestSilenceSeconds float64 `json:"longest_silence_seconds,omitempty"`
	// CheckedAt is when staleness was last evaluated.
	CheckedAt time.Time `json:"checked_at"`
	// Warmup is the progress through the stored events while not caught up (checkpoint.go).
	Warmup *WarmupStatus `json:"warmup,omitempty"`
}

// Status returns the feed's readiness with its staleness.
func (s *Server) Status() StaleStatus {
	st := StaleStatus{CaughtUp: s.ready.Load() && !s.stopping.Load(), RevocationsLoaded: s.revocationsReady()}
	if rep := s.stale.report.Load(); rep != nil {
		st.Stale = rep.allStale()
		st.LiveInstruments, st.StaleInstruments, st.StaleIDs = rep.live, rep.nStale, rep.stale
		st.LongestSilenceSeconds = time.Duration(rep.oldestNs).Seconds()
		st.CheckedAt = rep.at
	}
	st.Ready = st.CaughtUp && !st.Stale && st.RevocationsLoaded
	if w := s.warmup.Load(); w != nil && !s.ready.Load() && !s.stopping.Load() {
		ws := w.status()
		st.Warmup = &ws
	}
	return st
}

// serveReadyz answers /readyz: 200 "ready" (with the count of stale instruments if any), or
// 503 "not ready" (catching up, shutting down) or 503 "stale" (every live instrument silent
// past its bound). With ?verbose, the body is StaleStatus as JSON, with the same status code,
// without the stale instruments' ids (ReadyzDetail has them).
func (s *Server) serveReadyz(w http.ResponseWriter, r *http.Request) {
	st := s.Status()
	st.StaleIDs = nil
	s.writeReadyz(w, r, st)
}

// ReadyzDetail answers as /readyz does, with the ids of the stale instruments in the verbose
// answer: for the admin listener (cmd/feed serves it there), not the public one.
func (s *Server) ReadyzDetail() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { s.writeReadyz(w, r, s.Status()) })
}

func (s *Server) writeReadyz(w http.ResponseWriter, r *http.Request, st StaleStatus) {
	code := http.StatusOK
	if !st.Ready {
		code = http.StatusServiceUnavailable
	}
	if _, verbose := r.URL.Query()["verbose"]; verbose {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		_ = json.NewEncoder(w).Encode(st)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	switch {
	case !st.CaughtUp && st.Warmup != nil:
		fmt.Fprintf(w, "not ready: warming up, %.1f%% of %d stored events", st.Warmup.Percent, st.Warmup.Total)
		if st.Warmup.ETASeconds != nil {
			fmt.Fprintf(w, ", ETA %.0fs", *st.Warmup.ETASeconds)
		}
		fmt.Fprintln(w)
	case !st.CaughtUp:
		fmt.Fprintln(w, "not ready")
	case !st.RevocationsLoaded:
		fmt.Fprintln(w, "not ready: revocation list not read yet")
	case st.Stale:
		fmt.Fprintf(w, "stale: no event from any of %d live instruments within their bounds (silent for %.0fs)\n",
			st.LiveInstruments, st.LongestSilenceSeconds)
	case st.StaleInstruments > 0:
		fmt.Fprintf(w, "ready; %d of %d live instruments stale\n", st.StaleInstruments, st.LiveInstruments)
	default:
		fmt.Fprintln(w, "ready")
	}
}
