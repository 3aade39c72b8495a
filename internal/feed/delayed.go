package feed

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/tickwire/tickwire/internal/bus"
	pb "github.com/tickwire/tickwire/pkg/proto/tickwire/v1"
	"github.com/tickwire/tickwire/pkg/wire"
)

// Delay tiers (docs/PROTOCOL.md, "Authentication": delay). A token with a delay sees the market
// as it was that long ago, the way exchanges license delayed data: its connection is served by
// the tier's own hub, fed from the stored stream with every event held back until its ingest
// time plus the delay. The tier reads the stream from its start, so its state at any moment is
// exactly the live state of delay ago (books, trades, candles and stats alike); it is ready once
// it has reached the events that are not due yet. A tier starts with its first connection and
// runs until the feed stops: tokens share it, and a restart would make them wait for the warm-up
// again. Config.MaxDelayTiers bounds how many distinct delays run.

// Errors of delay tiers.
var (
	// ErrDelayUnavailable: this feed has no stored stream to serve delayed data from.
	ErrDelayUnavailable = errors.New("feed: delayed data not available on this feed (no history source)")
	// ErrDelayTiers: as many distinct delays as Config.MaxDelayTiers already run.
	ErrDelayTiers = errors.New("feed: too many distinct delay tiers on this feed")
	// ErrDelayWarming: the tier is reading the stored stream up to its lag; retry shortly.
	ErrDelayWarming = errors.New("feed: delay tier warming up; retry shortly")
)

// delayTier is one delay's hub and the consumer that feeds it.
type delayTier struct {
	delay time.Duration
	hub   *Hub
	ready atomic.Bool
	cons  *bus.Consumer // set once at start; stopped by Shutdown
}

// delayTier returns the running tier for d, starting it if none runs. A tier that is not ready
// yet is returned with ErrDelayWarming.
func (s *Server) delayTier(d time.Duration) (*delayTier, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if t := s.delays[d]; t != nil {
		if !t.ready.Load() {
			return nil, ErrDelayWarming
		}
		return t, nil
	}
	if s.stopping.Load() {
		return nil, ErrDelayWarming
	}
	if s.history == nil {
		return nil, ErrDelayUnavailable
	}
	if len(s.delays) >= s.cfg.MaxDelayTiers {
		return nil, ErrDelayTiers
	}
	t := &delayTier{delay: d}
	t.hub = newHub(s.cfg, s.log.With("delay", d.String()), newMetrics(nil))
	t.hub.delay = d
	t.hub.start(s.launch, s.quit)
	ctx, cancel := context.WithCancel(context.Background())
	s.launch(func() { <-s.quit; cancel() })
	cons, err := s.history.ConsumeEvents(ctx, bus.ConsumeOptions{MaxPending: 1024}, func(ev *pb.Event) error {
		return t.take(ctx, ev)
	})
	if err != nil {
		cancel()
		return nil, fmt.Errorf("feed: start delay tier %v: %w", d, err)
	}
	t.cons = cons
	s.delays[d] = t
	s.log.Info("delay tier started", "delay", d.String())
	// Stored events may all be older than the lag: then the tier is ready once it has taken them.
	s.launch(func() {
		select {
		case <-cons.CaughtUp():
			t.markReady(ctx)
		case <-cons.Done():
		case <-s.quit:
		}
	})
	return nil, ErrDelayWarming
}

// take dispatches one stored event once it is due: its ingest time (venue time for an event
// without one, an import) plus the delay. Runs on the consumer's goroutine, one event at a time
// in stream order, so holding an event back holds back every later one.
func (t *delayTier) take(ctx context.Context, ev *pb.Event) error {
	at := ev.GetIngestTimeNs()
	if at == 0 {
		at = ev.GetVenueTimeNs()
	}
	if wait := time.Until(time.Unix(0, at).Add(t.delay)); wait > 0 {
		// The first event not due yet: everything before it is applied, so the tier shows the
		// market of delay ago from now on.
		t.markReady(ctx)
		timer := time.NewTimer(wait)
		select {
		case <-timer.C:
		case <-ctx.Done():
			timer.Stop()
			return ctx.Err()
		}
	}
	return t.hub.Dispatch(ctx, ev)
}

// markReady makes the tier serve once its owners have applied every event dispatched so far.
func (t *delayTier) markReady(ctx context.Context) {
	if t.ready.Load() {
		return
	}
	if err := t.hub.Sync(ctx); err != nil {
		return
	}
	t.ready.Store(true)
}

// stopDelayTiers stops the tiers' consumers (Shutdown); their owners stop with s.quit.
func (s *Server) stopDelayTiers() {
	s.mu.Lock()
	tiers := s.delays
	s.delays = map[time.Duration]*delayTier{}
	s.mu.Unlock()
	for _, t := range tiers {
		t.cons.Stop()
	}
}

// enterDelayTier moves a connection signing in for the first time with a delayed token to its
// tier's hub. It runs on the read goroutine (or in serveWS before it starts), before any command
// reached an owner, so no owner holds the session yet and every later reader of sess.hub is
// ordered after this write. It returns a close code and reason when the connection cannot be
// served: a replay watcher (a replay window may reach the present), or a tier not ready.
func (s *session) enterDelayTier(cred *credential) (int, string) {
	d := cred.ent.Delay
	if d <= 0 {
		return 0, ""
	}
	if s.replay != nil {
		return wire.CloseUnauthorized, "a delayed entitlement does not cover replay sessions"
	}
	if s.hub.delay == d {
		return 0, "" // serveWS chose the tier already
	}
	t, err := s.server.delayTier(d)
	if err != nil {
		if errors.Is(err, ErrDelayWarming) || errors.Is(err, ErrDelayTiers) {
			return wire.CloseTryAgainLater, err.Error()
		}
		return wire.CloseUnauthorized, err.Error()
	}
	s.hub = t.hub
	return 0, ""
}

// delayHub chooses the hub of an upgrade signed in by its header with a delayed token, or
// answers the request (false): 503 with Retry-After while the tier warms up or when too many
// tiers run, 501 on a feed without history.
func (s *Server) delayHub(w http.ResponseWriter, cred *credential) (*Hub, bool) {
	t, err := s.delayTier(cred.ent.Delay)
	switch {
	case err == nil:
		return t.hub, true
	case errors.Is(err, ErrDelayWarming), errors.Is(err, ErrDelayTiers):
		s.metrics.connsRejected.WithLabelValues("delay_tier").Inc()
		w.Header().Set("Retry-After", "2")
		http.Error(w, err.Error(), http.StatusServiceUnavailable)
	case errors.Is(err, ErrDelayUnavailable):
		s.metrics.connsRejected.WithLabelValues("delay_tier").Inc()
		http.Error(w, err.Error(), http.StatusNotImplemented)
	default:
		s.metrics.connsRejected.WithLabelValues("delay_tier").Inc()
		http.Error(w, err.Error(), http.StatusBadGateway)
	}
	return nil, false
}
