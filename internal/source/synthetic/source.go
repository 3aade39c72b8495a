package synthetic

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	tickwirev1 "github.com/tickwire/tickwire/pkg/proto/tickwire/v1"
)

// TickInterval is the pacing period of Source: each tick emits the events due since the
// start at Config.Rate. 10 ms keeps batches small at low rates (20 events at 2000/s) and
// timer overhead negligible at high ones (one wake-up per ~3000 events at 300k/s).
const TickInterval = 10 * time.Millisecond

// maxCatchUp bounds how far behind schedule Source may fall before it drops the backlog
// instead of bursting to catch up (after a stall, a GC pause or slow publishing).
const maxCatchUp = 500 * time.Millisecond

// Source paces a Market in real time and emits its events. Its venue time is the wall clock.
type Source struct {
	m      *Market
	rate   int
	logger *slog.Logger

	mu       sync.Mutex
	requests []string // guarded by mu; instruments to resnapshot
}

// NewSource returns a Source for cfg.
func NewSource(cfg Config, logger *slog.Logger) (*Source, error) {
	m, err := NewMarket(cfg)
	if err != nil {
		return nil, err
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Source{m: m, rate: m.cfg.Rate, logger: logger.With("component", "synthetic")}, nil
}

// Name identifies the source in logs.
func (s *Source) Name() string { return "synthetic" }

// Instruments returns the reference data of every instrument.
func (s *Source) Instruments() []*tickwirev1.InstrumentInfo { return s.m.Instruments() }

// RequestSnapshot asks for an InstrumentInfo and full book snapshot of instrument as soon as
// possible (before the next batch). Safe to call from any goroutine.
func (s *Source) RequestSnapshot(instrument string) {
	s.mu.Lock()
	s.requests = append(s.requests, instrument)
	s.mu.Unlock()
}

// Run emits events to emit, in order, at the configured rate, until ctx ends (returns nil)
// or emit fails (returns its error). emit may block: the source then falls behind, and
// drops a backlog of more than maxCatchUp rather than bursting.
func (s *Source) Run(ctx context.Context, emit func(*tickwirev1.Event) error) error {
	t := time.NewTicker(TickInterval)
	defer t.Stop()
	start := time.Now()
	var due int64 // events emitted or skipped since start
	for {
		now := time.Now()
		s.mu.Lock()
		reqs := s.requests
		s.requests = nil
		s.mu.Unlock()
		for _, inst := range reqs {
			s.m.Resnapshot(inst, now.UnixNano())
		}
		target := int64(now.Sub(start).Seconds() * float64(s.rate))
		if behind := target - due; behind > int64(maxCatchUp.Seconds()*float64(s.rate)) {
			s.logger.Warn("synthetic source behind schedule; skipping", "events", behind)
			due = target - int64(TickInterval.Seconds()*float64(s.rate))
		}
		nowNs := now.UnixNano()
		for ; due < target; due++ {
			if err := emit(s.m.Next(nowNs)); err != nil {
				return fmt.Errorf("synthetic: emit: %w", err)
			}
			if due%1024 == 0 && ctx.Err() != nil {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}
