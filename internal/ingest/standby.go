package ingest

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"time"

	"google.golang.org/protobuf/proto"

	tickwirev1 "github.com/tickwire/tickwire/pkg/proto/tickwire/v1"
)

// Active and standby (Config.Lease).
//
// A standby runs its source like the active one and validates every event, but instead of
// publishing it keeps, per instrument, the last Config.StandbyEvents events it saw (its
// shadow). When it gains the lease, each instrument is taken over at its next event:
//
//   - the instrument's last stored event is read from the stream; if the shadow holds an event
//     with the same content (all but epoch, seq and ingest time), exactly once, this process
//     saw what the old holder published up to there, and the instrument continues in the
//     same epoch with the shadow's events after it: no gap, no duplicate, no new epoch;
//   - if it is not there yet, the instrument waits up to Config.TakeoverWait for it (the old
//     holder may have been ahead), its events kept meanwhile;
//   - otherwise continuity is not proven (another view of the venue, events lost between
//     the two, a synthetic market of its own): the instrument starts a new epoch with the
//     shadow's events from its last InstrumentInfo or book snapshot, or with a snapshot
//     asked of the source.
//
// An instrument with nothing stored starts its first epoch as usual. A holder that loses the
// lease goes back to standby at its next event: it stops publishing and forgets its
// positions (others now advance them).

// Holder is a lease: Held reports whether this process may publish now. lease.Lease
// implements it.
type Holder interface {
	Held() bool
}

// Fencer drops what a publisher holds that has not reached the store. bus.Bus implements it.
type Fencer interface {
	Fence() error
}

// FenceOnLoss returns a lease.Config.OnChange that fences f when the lease is lost: what this
// process published and the store has not received yet (queued, or buffered by a connection
// cut off from NATS) is dropped instead of being stored after another process took over.
func FenceOnLoss(f Fencer, logger *slog.Logger) func(held bool) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return func(held bool) {
		if held {
			return
		}
		if err := f.Fence(); err != nil {
			logger.Error("lease lost but publishes not fenced: some may be stored after the takeover", "err", err)
		}
	}
}

// EventStore reads an instrument's last stored event (nil if none). bus.Bus implements it.
type EventStore interface {
	LastEvent(ctx context.Context, instrument string) (*tickwirev1.Event, error)
}

// Takeover results, the label of tickwire_ingest_takeovers_total.
const (
	TakeoverContinued = "continued" // the last stored event was seen: same epoch, next seq
	TakeoverNewEpoch  = "new_epoch" // continuity not proven: a new epoch
	TakeoverFresh     = "fresh"     // nothing stored: the instrument's first epoch
)

// shadow is what a standby saw of one instrument; Run's goroutine only.
type shadow struct {
	ring   []*tickwirev1.Event // the last events, oldest first, at most cap
	info   *tickwirev1.Event   // the latest InstrumentInfo, kept after it leaves ring
	book   bool                // a book event was seen: a new epoch must start with a snapshot
	lost   bool                // events left ring: its start is not the instrument's start
	cap    int
	stored *tickwirev1.Event // the last stored event, once fetched by the takeover
	asked  bool              // stored was fetched
	until  time.Time         // the takeover waits for stored to show up until then
}

func (s *shadow) push(ev *tickwirev1.Event) {
	if ev.GetInfo() != nil {
		s.info = ev
	}
	if ev.GetBook() != nil {
		s.book = true
	}
	if len(s.ring) >= s.cap {
		// Drop the older half at once: amortized O(1) per event, and the ring's memory reused.
		n := copy(s.ring, s.ring[len(s.ring)-s.cap/2:])
		clear(s.ring[n:])
		s.ring = s.ring[:n]
		s.lost = true
	}
	s.ring = append(s.ring, ev)
}

// reset forgets the ring: the source broke the instrument's chain (what came before does not
// lead to what comes next).
func (s *shadow) reset() {
	clear(s.ring)
	s.ring = s.ring[:0]
	s.lost = true
}

// find returns the index in ring of the one event whose content is that of stored, or -1
// when there is none or more than one (ambiguous: not a proof).
func (s *shadow) find(stored *tickwirev1.Event) int {
	want, err := contentKey(stored)
	if err != nil {
		return -1
	}
	at := -1
	for i, ev := range s.ring {
		// Cheap filters first; the encoding only for the candidates.
		if ev.GetVenueTimeNs() != stored.GetVenueTimeNs() || bodyKind(ev) != bodyKind(stored) {
			continue
		}
		k, err := contentKey(ev)
		if err != nil || !bytes.Equal(k, want) {
			continue
		}
		if at >= 0 {
			return -1
		}
		at = i
	}
	return at
}

// chain returns the events a new epoch starts with: the ring from its last InstrumentInfo or
// book snapshot, after the latest InstrumentInfo when the chain starts at a snapshot; for an
// instrument without a book, the latest InstrumentInfo and every event after it that the ring
// holds. Nil when the ring holds no such start (ask the source for a snapshot).
func (s *shadow) chain() []*tickwirev1.Event {
	for i := len(s.ring) - 1; i >= 0; i-- {
		ev := s.ring[i]
		switch {
		case ev.GetInfo() != nil:
			return s.ring[i:]
		case ev.GetBook().GetSnapshot():
			if s.info == nil {
				return s.ring[i:]
			}
			return append([]*tickwirev1.Event{s.info}, s.ring[i:]...)
		}
	}
	if !s.book && s.info != nil && !s.lost {
		return append([]*tickwirev1.Event{s.info}, s.ring...)
	}
	return nil
}

func bodyKind(ev *tickwirev1.Event) int {
	switch ev.GetBody().(type) {
	case *tickwirev1.Event_Book:
		return 1
	case *tickwirev1.Event_Trade:
		return 2
	case *tickwirev1.Event_Quote:
		return 3
	case *tickwirev1.Event_Info:
		return 4
	case *tickwirev1.Event_Stats:
		return 5
	}
	return 0
}

// contentKey encodes ev without what differs between two processes that saw the same venue
// event: its position and this process's receive time.
func contentKey(ev *tickwirev1.Event) ([]byte, error) {
	epoch, seq, t := ev.Epoch, ev.Seq, ev.IngestTimeNs
	ev.Epoch, ev.Seq, ev.IngestTimeNs = 0, 0, 0
	defer func() { ev.Epoch, ev.Seq, ev.IngestTimeNs = epoch, seq, t }()
	return proto.MarshalOptions{Deterministic: true}.Marshal(ev)
}

func (p *Pipeline) shadowOf(inst string) *shadow {
	s := p.shadows[inst]
	if s == nil {
		s = &shadow{cap: p.cfg.StandbyEvents}
		p.shadows[inst] = s
	}
	return s
}

// leaseTurn reports whether this process publishes now, promoting or demoting it when the
// lease changed since the last event.
func (p *Pipeline) leaseTurn() bool {
	held := p.cfg.Lease.Held()
	switch {
	case held && !p.active:
		p.active = true
		clear(p.resolved)
		p.logger.Info("lease held: taking over; each instrument continues after its last stored event if this process saw it, else starts a new epoch",
			"instruments_seen", len(p.shadows))
	case !held && p.active:
		p.active = false
		p.seq.Reset()
		clear(p.shadows)
		p.mu.Lock()
		clear(p.broken) // publishes that failed before the lease was lost: moot now
		p.mu.Unlock()
		p.logger.Warn("lease lost: standing by, publishing nothing")
	}
	return p.active
}

// takeOver handles an event of an instrument not yet taken over since the lease was gained.
func (p *Pipeline) takeOver(ctx context.Context, inst string, ev *tickwirev1.Event, now time.Time) error {
	s := p.shadowOf(inst)
	p.stamp(ev)
	s.push(ev)
	if !s.asked {
		stored, err := p.cfg.Stored.LastEvent(ctx, inst)
		if err != nil {
			return fmt.Errorf("ingest: take over %s: %w", inst, err)
		}
		s.stored, s.asked, s.until = stored, true, now.Add(p.cfg.TakeoverWait)
	}
	var events []*tickwirev1.Event
	result := TakeoverFresh
	i := -1
	if s.stored != nil {
		i = s.find(s.stored)
	}
	switch {
	case s.stored == nil:
		events = s.chain()
	case i >= 0:
		result = TakeoverContinued
		p.seq.Continue(inst, s.stored.GetEpoch(), s.stored.GetSeq())
		events = s.ring[i+1:]
	case now.Before(s.until):
		return nil // not seen yet: the old holder may have been ahead of this process
	default:
		result = TakeoverNewEpoch
		epoch, err := p.seq.NewEpoch(ctx, inst)
		if err != nil {
			return fmt.Errorf("ingest: new epoch of %s: %w", inst, err)
		}
		events = s.chain()
		p.logger.Warn("took over without proof of continuity: new epoch", "instrument", inst, "epoch", epoch,
			"stored_epoch", s.stored.GetEpoch(), "stored_seq", s.stored.GetSeq())
	}
	p.resolved[inst] = true
	delete(p.shadows, inst)
	p.m.takeovers.WithLabelValues(result).Inc()
	if result != TakeoverContinued && len(events) == 0 {
		p.requestSnapshot(inst)
		return nil
	}
	for _, ev := range events {
		if err := p.publish(ctx, ev); err != nil {
			return err
		}
	}
	return nil
}
