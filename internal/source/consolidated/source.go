package consolidated

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	tickwirev1 "github.com/tickwire/tickwire/pkg/proto/tickwire/v1"
)

// Members is where a Source reads its members' events and asks for their snapshots. The
// ingest command implements it over NATS (bus.Bus).
type Members interface {
	// Subscribe delivers to handle, one at a time in stream order, the events of the given
	// instruments stored from now on, until stop is called (stop waits for handle to return).
	// handle may block: the stream keeps what waits.
	Subscribe(ctx context.Context, instruments []string, handle func(*tickwirev1.Event) error) (stop func(), err error)
	// RequestSnapshot asks the member's ingest for its reference data and a book snapshot.
	RequestSnapshot(instrument string) error
}

// Config configures a Source. Zero durations take the defaults.
type Config struct {
	Specs []Spec
	// StartAfter: an instrument starts once every member's reference data has arrived, or
	// after this long with the members known then (a venue that is down does not hold the
	// others back). Default 5 s.
	StartAfter time.Duration
	// StaleAfter: a member with no event for this long leaves the merged book (its last book
	// would otherwise be shown as if current) until it sends a snapshot again. Default 60 s.
	StaleAfter time.Duration
	// SnapshotEvery is how often the members whose books wait for a snapshot are asked for
	// one. Default 2 s.
	SnapshotEvery time.Duration
	// Buffer bounds the member events waiting for Run. Default 4096.
	Buffer int
}

func (c Config) withDefaults() Config {
	if c.StartAfter <= 0 {
		c.StartAfter = 5 * time.Second
	}
	if c.StaleAfter <= 0 {
		c.StaleAfter = 60 * time.Second
	}
	if c.SnapshotEvery <= 0 {
		c.SnapshotEvery = 2 * time.Second
	}
	if c.Buffer <= 0 {
		c.Buffer = 4096
	}
	return c
}

// tick is how often Run checks starts, stale members and snapshot requests.
const tick = 250 * time.Millisecond

// Source is an ingest source (ingest.Source, SnapshotRequester, BreakReporter) that emits the
// consolidated instruments of its Specs, built from their members' events.
type Source struct {
	cfg     Config
	members Members
	logger  *slog.Logger
	merges  []*Merge
	byMem   map[string][]*Merge // member id -> the merges it is in
	in      chan *tickwirev1.Event
	dropped *prometheus.CounterVec
	onBreak func(string) // set before Run

	mu       sync.Mutex
	requests []string // guarded by mu: consolidated ids whose snapshot was asked for
}

// NewSource returns a Source for cfg, reading members from members. It registers
// tickwire_consolidated_dropped_total on reg (nil: not registered).
func NewSource(cfg Config, members Members, logger *slog.Logger, reg prometheus.Registerer) (*Source, error) {
	cfg = cfg.withDefaults()
	if len(cfg.Specs) == 0 {
		return nil, fmt.Errorf("%w: no consolidated instrument", ErrSpec)
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	s := &Source{cfg: cfg, members: members, logger: logger.With("source", "consolidated"), byMem: map[string][]*Merge{},
		in: make(chan *tickwirev1.Event, cfg.Buffer),
		dropped: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tickwire_consolidated_dropped_total",
			Help: "Member events not merged into a consolidated instrument, by reason (duplicate, member_gap: the member is reset until its next snapshot, member_unsynced, scale, no_info, not_started)."},
			[]string{"reason"})}
	seen := map[string]bool{}
	for _, sp := range cfg.Specs {
		if seen[sp.ID] {
			return nil, fmt.Errorf("%w: %s twice", ErrSpec, sp.ID)
		}
		seen[sp.ID] = true
		m, err := NewMerge(sp, func(reason string) { s.dropped.WithLabelValues(reason).Inc() })
		if err != nil {
			return nil, err
		}
		s.merges = append(s.merges, m)
		for _, id := range sp.Members {
			s.byMem[id] = append(s.byMem[id], m)
		}
	}
	if reg != nil {
		if err := reg.Register(s.dropped); err != nil {
			return nil, fmt.Errorf("consolidated: metrics: %w", err)
		}
	}
	// Every reason at 0 from the start: alerts see the first drop (deploy/prometheus/alerts.yml).
	for _, reason := range []string{ReasonDuplicate, ReasonGap, ReasonUnsynced, ReasonScale, ReasonNoInfo, ReasonNotStarted} {
		s.dropped.WithLabelValues(reason)
	}
	return s, nil
}

// Name identifies the source in logs.
func (s *Source) Name() string { return "consolidated" }

// SetBreakHandler is ingest.BreakReporter: f is called before an instrument restarts (a
// member's reference data needed a finer scale), so that it starts a new epoch.
func (s *Source) SetBreakHandler(f func(string)) { s.onBreak = f }

// RequestSnapshot is ingest.SnapshotRequester: the instrument's reference data and book
// snapshot are emitted again soon. Safe for concurrent use.
func (s *Source) RequestSnapshot(instrument string) {
	s.mu.Lock()
	s.requests = append(s.requests, instrument)
	s.mu.Unlock()
}

// Run subscribes to the members, asks for their snapshots, and emits the consolidated
// instruments until ctx ends (nil) or emit fails (its error).
func (s *Source) Run(ctx context.Context, emit func(*tickwirev1.Event) error) error {
	ids := make([]string, 0, len(s.byMem))
	for id := range s.byMem {
		ids = append(ids, id)
	}
	stop, err := s.members.Subscribe(ctx, ids, func(ev *tickwirev1.Event) error {
		select {
		case s.in <- ev:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	})
	if err != nil {
		return fmt.Errorf("consolidated: subscribe to members: %w", err)
	}
	defer stop()
	start := time.Now()
	lastSeen := map[string]time.Time{}
	var lastAsk time.Time
	t := time.NewTicker(tick)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev := <-s.in:
			lastSeen[ev.GetInstrument()] = time.Now()
			if err := s.apply(ev, emit); err != nil {
				return err
			}
		case now := <-t.C:
			if err := s.housekeep(now, start, lastSeen, &lastAsk, emit); err != nil {
				return err
			}
		}
	}
}

// apply merges one member event into every instrument it is a member of.
func (s *Source) apply(ev *tickwirev1.Event, emit func(*tickwirev1.Event) error) error {
	for _, m := range s.byMem[ev.GetInstrument()] {
		err := m.Apply(ev, emit)
		if errors.Is(err, errRestart) {
			s.logger.Warn("consolidated instrument restarts at a finer scale", "instrument", m.ID(), "member", ev.GetInstrument())
			if s.onBreak != nil {
				s.onBreak(m.ID())
			}
			err = m.Start(time.Now().UnixNano(), emit)
		}
		if err != nil {
			return err
		}
		if !m.Started() && m.Known() == len(m.Members()) {
			if err := s.start(m, emit); err != nil {
				return err
			}
		}
	}
	return nil
}

func (s *Source) start(m *Merge, emit func(*tickwirev1.Event) error) error {
	s.logger.Info("consolidated instrument starts", "instrument", m.ID(), "members", m.Members(), "known", m.Known())
	return m.Start(time.Now().UnixNano(), emit)
}

// housekeep starts instruments that waited long enough, takes silent members out, asks for
// the snapshots members wait for, and answers snapshot requests.
func (s *Source) housekeep(now, start time.Time, lastSeen map[string]time.Time, lastAsk *time.Time, emit func(*tickwirev1.Event) error) error {
	for _, m := range s.merges {
		if !m.Started() && m.Known() > 0 && now.Sub(start) >= s.cfg.StartAfter {
			if err := s.start(m, emit); err != nil {
				return err
			}
		}
		for _, id := range m.Members() {
			if seen, ok := lastSeen[id]; ok && now.Sub(seen) >= s.cfg.StaleAfter {
				if err := m.Stale(id, now.UnixNano(), emit); err != nil {
					return err
				}
			}
		}
	}
	if now.Sub(*lastAsk) >= s.cfg.SnapshotEvery {
		*lastAsk = now
		asked := map[string]bool{}
		for _, m := range s.merges {
			for _, id := range m.NeedSnapshot() {
				if asked[id] {
					continue
				}
				asked[id] = true
				if err := s.members.RequestSnapshot(id); err != nil {
					s.logger.Warn("asking a member for a snapshot", "member", id, "err", err)
				}
			}
		}
	}
	s.mu.Lock()
	reqs := s.requests
	s.requests = nil
	s.mu.Unlock()
	for _, id := range reqs {
		for _, m := range s.merges {
			if m.ID() == id {
				if err := m.Snapshot(now.UnixNano(), emit); err != nil {
					return err
				}
			}
		}
	}
	return nil
}
