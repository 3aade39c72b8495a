package normalize

import (
	"context"
	"fmt"
	"sync"
	"time"

	tickwirev1 "github.com/tickwire/tickwire/pkg/proto/tickwire/v1"
)

// PositionStore reports the last position stored for an instrument. bus.Bus implements it
// from JetStream (the last message on the instrument's subject).
type PositionStore interface {
	LastPosition(ctx context.Context, instrument string) (epoch, seq uint64, found bool, err error)
}

// Sequencer assigns each instrument a gapless seq within an epoch (DESIGN decision 3).
//
// The first time it sees an instrument it asks the PositionStore for the last stored
// position and continues at seq+1 in the same epoch; an instrument with no stored position
// starts a new epoch, the current Unix time in seconds. Epochs of an instrument only grow.
// Safe for concurrent use; events of one instrument must be assigned in publish order.
type Sequencer struct {
	store PositionStore
	now   func() time.Time

	mu  sync.Mutex
	pos map[string]*position // guarded by mu
}

type position struct {
	epoch, seq uint64
}

// NewSequencer returns a Sequencer over store (nil: every instrument starts a new epoch).
// now is the clock for new epochs (nil: time.Now).
func NewSequencer(store PositionStore, now func() time.Time) *Sequencer {
	if now == nil {
		now = time.Now
	}
	return &Sequencer{store: store, now: now, pos: make(map[string]*position)}
}

// Next returns the position of the instrument's next event: (epoch, last seq + 1).
func (s *Sequencer) Next(ctx context.Context, instrument string) (epoch, seq uint64, err error) {
	s.mu.Lock()
	p := s.pos[instrument]
	s.mu.Unlock()
	if p == nil {
		// Look up outside the lock: it is a network round trip.
		if p, err = s.load(ctx, instrument); err != nil {
			return 0, 0, err
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if cur := s.pos[instrument]; cur != nil {
		p = cur // loaded concurrently, or NewEpoch ran meanwhile
	} else {
		s.pos[instrument] = p
	}
	p.seq++
	return p.epoch, p.seq, nil
}

func (s *Sequencer) load(ctx context.Context, instrument string) (*position, error) {
	if s.store != nil {
		epoch, seq, found, err := s.store.LastPosition(ctx, instrument)
		if err != nil {
			return nil, fmt.Errorf("normalize: last position of %s: %w", instrument, err)
		}
		if found {
			return &position{epoch: epoch, seq: seq}, nil
		}
	}
	return &position{epoch: s.newEpoch(0), seq: 0}, nil
}

func (s *Sequencer) newEpoch(prev uint64) uint64 {
	e := uint64(max(s.now().Unix(), 1))
	return max(e, prev+1)
}

// Assign sets ev's epoch and seq from Next.
func (s *Sequencer) Assign(ctx context.Context, ev *tickwirev1.Event) error {
	epoch, seq, err := s.Next(ctx, ev.GetInstrument())
	if err != nil {
		return err
	}
	ev.Epoch, ev.Seq = epoch, seq
	return nil
}

// NewEpoch starts a new epoch for instrument, when continuity is truly lost (a venue gap, a
// failed publish): the next event gets (new epoch, 1), and it must be a book snapshot. The
// new epoch is the current Unix time in seconds, or previous epoch + 1 if that is not larger.
// It returns the new epoch.
func (s *Sequencer) NewEpoch(ctx context.Context, instrument string) (uint64, error) {
	s.mu.Lock()
	p := s.pos[instrument]
	s.mu.Unlock()
	if p == nil {
		var err error
		if p, err = s.load(ctx, instrument); err != nil {
			return 0, err
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if cur := s.pos[instrument]; cur != nil {
		p = cur
	}
	p.epoch, p.seq = s.newEpoch(p.epoch), 0
	s.pos[instrument] = p
	return p.epoch, nil
}

// Continue sets instrument's position: its next event gets (epoch, seq+1). A standby ingest
// that took over and proved it saw the stored event at (epoch, seq) continues after it.
func (s *Sequencer) Continue(instrument string, epoch, seq uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pos[instrument] = &position{epoch: epoch, seq: seq}
}

// Reset forgets every position: each instrument's next event asks the PositionStore again
// (an ingest that lost its lease, whose positions others now advance).
func (s *Sequencer) Reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	clear(s.pos)
}

// Len returns the number of instruments the Sequencer has positions for.
func (s *Sequencer) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.pos)
}
