// Package ingest is the ingest pipeline: source -> validate -> sequence -> publish.
package ingest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tickwire/tickwire/internal/normalize"
	tickwirev1 "github.com/tickwire/tickwire/pkg/proto/tickwire/v1"
)

// Source produces normalized events (prices and sizes already mantissas at the
// instrument's scale). Exchange adapters, file readers and the synthetic market implement it.
//
// Run calls emit for each event, in order, from one goroutine, until ctx ends (then it
// returns nil) or it fails. emit may block (backpressure); if emit returns an error, Run
// must return it. Each instrument's InstrumentInfo must come before its other events, and a
// book snapshot before its deltas.
type Source interface {
	Name() string
	Run(ctx context.Context, emit func(*tickwirev1.Event) error) error
}

// SnapshotRequester is implemented by sources that can send an instrument's InstrumentInfo
// and full book snapshot on demand. The pipeline asks when an instrument's book chain is
// broken (a rejected book update, a failed publish); without it, it waits for the source's
// next snapshot.
type SnapshotRequester interface {
	RequestSnapshot(instrument string)
}

// BreakReporter is implemented by sources whose venue feed can lose continuity (a gap in the
// venue's sequence, a failed venue checksum, a reconnect). New calls SetBreakHandler once,
// before Run; the source calls the handler (from Run's goroutine) right before it emits the
// instrument's recovering InstrumentInfo and book snapshot, and that instrument alone starts a
// new epoch with them: downstream replicas of it are void, every other instrument goes on.
type BreakReporter interface {
	SetBreakHandler(func(instrument string))
}

// Publisher stores events; bus.Bus implements it.
type Publisher interface {
	Publish(ctx context.Context, ev *tickwirev1.Event) error
	Flush(ctx context.Context) error
}

// Config configures a Pipeline.
type Config struct {
	// FlushTimeout bounds the wait for outstanding publish acks when Run ends; default 10 s.
	FlushTimeout time.Duration
	// Now is the clock for ingest time, epochs and the future-time check; default time.Now.
	Now func() time.Time

	// Lease, when set, makes this pipeline one of several for the same source: it publishes
	// only while Lease.Held(), and stands by otherwise (standby.go). Nil: it always publishes.
	Lease Holder
	// Stored is where a takeover reads each instrument's last stored event; required with
	// Lease.
	Stored EventStore
	// StandbyEvents bounds the events a standby keeps per instrument to prove continuity when
	// it takes over (default 4096; at least 16). It should cover what one instrument sees in a
	// lease TTL.
	StandbyEvents int
	// TakeoverWait is how long, after taking over, an instrument waits for its last stored
	// event to show up among what this process saw (default 1 s).
	TakeoverWait time.Duration
}

// Pipeline runs one Source into a Publisher: each event is validated (normalize.Validator),
// given its position (normalize.Sequencer, continuing each instrument from the
// PositionStore), stamped with ingest_time_ns (unless the source set its receive time), and
// published.
//
// Continuity: when a publish fails asynchronously (OnPublishError) the instrument starts a
// new epoch; when a book update is rejected, its book is out of step. In both cases the
// pipeline asks the source for a snapshot (SnapshotRequester) and drops the instrument's
// other events until an InstrumentInfo or book snapshot arrives (counted as
// tickwire_ingest_dropped_total{reason="awaiting_snapshot"}).
type Pipeline struct {
	src    Source
	pub    Publisher
	val    *normalize.Validator
	seq    *normalize.Sequencer
	cfg    Config
	logger *slog.Logger
	m      pipelineMetrics

	awaiting map[string]bool // instruments whose deltas are dropped until a snapshot; Run's goroutine only

	// With Config.Lease (standby.go); Run's goroutine only.
	active   bool               // the lease was held at the last event
	shadows  map[string]*shadow // what this process saw while standing by, per instrument
	resolved map[string]bool    // instruments taken over since the lease was gained

	mu     sync.Mutex
	broken map[string]bool // guarded by mu; instruments whose publish failed, set from NATS goroutines
	// restart is guarded by mu: instruments whose source reported a break (BreakReporter);
	// their next event (the source's snapshot) starts a new epoch.
	restart map[string]bool
}

type pipelineMetrics struct {
	published   prometheus.Counter
	dropped     *prometheus.CounterVec
	latency     prometheus.Histogram
	instruments prometheus.GaugeFunc
	takeovers   *prometheus.CounterVec
}

// New returns a Pipeline. positions is where sequences continue from (bus.Bus); reg receives
// tickwire_ingest_* metrics (nil: none).
func New(src Source, pub Publisher, positions normalize.PositionStore, cfg Config, logger *slog.Logger, reg prometheus.Registerer) (*Pipeline, error) {
	if cfg.FlushTimeout <= 0 {
		cfg.FlushTimeout = 10 * time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Lease != nil && cfg.Stored == nil {
		return nil, errors.New("ingest: Config.Lease without Config.Stored")
	}
	if cfg.StandbyEvents == 0 {
		cfg.StandbyEvents = 4096
	}
	if cfg.StandbyEvents < 16 {
		return nil, fmt.Errorf("ingest: Config.StandbyEvents %d, less than 16", cfg.StandbyEvents)
	}
	if cfg.TakeoverWait <= 0 {
		cfg.TakeoverWait = time.Second
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	logger = logger.With("component", "ingest", "source", src.Name())
	val, err := normalize.NewValidator(logger, reg)
	if err != nil {
		return nil, err
	}
	p := &Pipeline{
		src: src, pub: pub, val: val, cfg: cfg, logger: logger,
		seq:      normalize.NewSequencer(positions, cfg.Now),
		awaiting: make(map[string]bool),
		shadows:  make(map[string]*shadow),
		resolved: make(map[string]bool),
		broken:   make(map[string]bool),
		restart:  make(map[string]bool),
	}
	if br, ok := src.(BreakReporter); ok {
		br.SetBreakHandler(p.onSourceBreak)
	}
	p.m = pipelineMetrics{
		published: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tickwire_ingest_events_total", Help: "Events validated, sequenced and handed to the bus."}),
		dropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tickwire_ingest_dropped_total", Help: "Valid events dropped, by reason (awaiting_snapshot: the instrument's book chain broke and waits for a snapshot)."},
			[]string{"reason"}),
		latency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "tickwire_ingest_publish_seconds",
			Help:    "Time to hand one event to the bus, including waiting for a free in-flight publish slot.",
			Buckets: prometheus.ExponentialBuckets(1e-6, 4, 12), // 1 us .. 4 s
		}),
		instruments: prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "tickwire_ingest_instruments", Help: "Instruments with a position (seen since start)."},
			func() float64 { return float64(p.seq.Len()) }),
		takeovers: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tickwire_ingest_takeovers_total",
			Help: "Instruments taken over after this process gained its lease, by result (continued: same epoch after the last stored event; new_epoch: continuity not proven; fresh: nothing stored)."},
			[]string{"result"}),
	}
	for _, r := range []string{TakeoverContinued, TakeoverNewEpoch, TakeoverFresh} {
		p.m.takeovers.WithLabelValues(r) // at 0 from the start
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{p.m.published, p.m.dropped, p.m.latency, p.m.instruments, p.m.takeovers} {
			if err := reg.Register(c); err != nil {
				return nil, fmt.Errorf("ingest: register metrics: %w", err)
			}
		}
	}
	return p, nil
}

// OnPublishError records that an event of instrument failed to publish: the instrument's
// next event starts a new epoch with a snapshot. Safe from any goroutine; pass it to
// bus.Bus.SetPublishErrorHandler.
func (p *Pipeline) OnPublishError(instrument string, epoch, seq uint64, err error) {
	p.mu.Lock()
	p.broken[instrument] = true
	p.mu.Unlock()
}

// onSourceBreak records a continuity break reported by the source (BreakReporter).
func (p *Pipeline) onSourceBreak(instrument string) {
	p.mu.Lock()
	p.restart[instrument] = true
	p.mu.Unlock()
}

func (p *Pipeline) takeRestart(instrument string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.restart[instrument] {
		return false
	}
	delete(p.restart, instrument)
	return true
}

func (p *Pipeline) takeBroken(instrument string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.broken[instrument] {
		return false
	}
	delete(p.broken, instrument)
	return true
}

// Run runs the source through the pipeline until ctx ends or something fails, then waits
// (up to FlushTimeout) for outstanding publishes. It returns nil after a cancellation with
// no publish left pending (publishes that failed were handled as they failed: see
// OnPublishError).
func (p *Pipeline) Run(ctx context.Context) error {
	p.logger.Info("ingest started")
	runErr := p.src.Run(ctx, func(ev *tickwirev1.Event) error { return p.handle(ctx, ev) })
	if ctx.Err() != nil && errors.Is(runErr, ctx.Err()) {
		runErr = nil // shutting down is not an error
	}
	flushCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), p.cfg.FlushTimeout)
	defer cancel()
	flushErr := p.pub.Flush(flushCtx)
	switch {
	case flushErr == nil:
	case errors.Is(flushErr, context.DeadlineExceeded) || errors.Is(flushErr, context.Canceled):
		flushErr = fmt.Errorf("ingest: flush: %w", flushErr) // still pending: their fate is unknown
	default:
		// Publishes that failed are each reported by OnPublishError as they fail, and their
		// instruments start a new epoch at their next event (or continue from the store at the
		// next start): handled, not a reason for this stop to fail.
		p.logger.Warn("some publishes failed while running (their instruments started new epochs)", "err", flushErr)
		flushErr = nil
	}
	p.logger.Info("ingest stopped", "instruments", p.seq.Len(), "err", errors.Join(runErr, flushErr))
	return errors.Join(runErr, flushErr)
}

func (p *Pipeline) requestSnapshot(instrument string) {
	p.awaiting[instrument] = true
	if r, ok := p.src.(SnapshotRequester); ok {
		r.RequestSnapshot(instrument)
	}
}

func (p *Pipeline) handle(ctx context.Context, ev *tickwirev1.Event) error {
	inst := ev.GetInstrument()
	now := p.cfg.Now()
	standby := p.cfg.Lease != nil && !p.leaseTurn()
	if standby {
		p.takeBroken(inst) // a publish that failed before the lease was lost: moot
		if p.takeRestart(inst) {
			p.shadowOf(inst).reset()
			p.awaiting[inst] = true // the source sends its snapshot next
		}
	} else {
		if p.takeBroken(inst) {
			epoch, err := p.seq.NewEpoch(ctx, inst)
			if err != nil {
				return fmt.Errorf("ingest: new epoch of %s: %w", inst, err)
			}
			p.logger.Warn("publish failed: new epoch, awaiting snapshot", "instrument", inst, "epoch", epoch)
			p.requestSnapshot(inst)
			p.settle(inst)
		}
		if p.takeRestart(inst) {
			epoch, err := p.seq.NewEpoch(ctx, inst)
			if err != nil {
				return fmt.Errorf("ingest: new epoch of %s: %w", inst, err)
			}
			p.logger.Warn("source lost continuity: new epoch", "instrument", inst, "epoch", epoch)
			p.awaiting[inst] = true // the source sends its snapshot next; no need to ask
			p.settle(inst)
		}
	}
	isSnapshot := ev.GetBook().GetSnapshot()
	if p.awaiting[inst] && !isSnapshot && ev.GetInfo() == nil {
		p.m.dropped.WithLabelValues("awaiting_snapshot").Inc()
		return nil
	}
	if _, err := p.val.Validate(ev, now); err != nil {
		p.logger.Debug("event rejected", "instrument", inst, "err", err)
		if ev.GetBook() != nil && !p.awaiting[inst] {
			p.logger.Warn("book update rejected: awaiting snapshot", "instrument", inst, "err", err)
			p.requestSnapshot(inst)
		}
		return nil
	}
	if isSnapshot {
		delete(p.awaiting, inst)
	}
	switch {
	case standby:
		p.stamp(ev)
		p.shadowOf(inst).push(ev)
		return nil
	case p.cfg.Lease != nil && !p.resolved[inst]:
		return p.takeOver(ctx, inst, ev, now)
	}
	return p.publish(ctx, ev)
}

// settle marks inst taken over (a new epoch was started for it anyway), when under a lease.
func (p *Pipeline) settle(inst string) {
	if p.cfg.Lease != nil {
		p.resolved[inst] = true
		delete(p.shadows, inst)
	}
}

// stamp sets ev's ingest time to now, unless the source set its own receive time.
func (p *Pipeline) stamp(ev *tickwirev1.Event) {
	if ev.IngestTimeNs == 0 {
		ev.IngestTimeNs = time.Now().UnixNano()
	}
}

// publish gives a valid event its position and publishes it.
func (p *Pipeline) publish(ctx context.Context, ev *tickwirev1.Event) error {
	if err := p.seq.Assign(ctx, ev); err != nil {
		return fmt.Errorf("ingest: %w", err)
	}
	p.stamp(ev)
	start := time.Now()
	if err := p.pub.Publish(ctx, ev); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("ingest: %w", err)
	}
	p.m.latency.Observe(time.Since(start).Seconds())
	p.m.published.Inc()
	return nil
}
