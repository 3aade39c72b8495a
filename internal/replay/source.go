package replay

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/tickwire/tickwire/internal/bus"
	tickwirev1 "github.com/tickwire/tickwire/pkg/proto/tickwire/v1"
)

// ErrStop, returned by a Scan callback, ends the scan without an error.
var ErrStop = errors.New("replay: stop scanning")

// ErrSessionExists: a replay session with this id already answers on NATS.
var ErrSessionExists = errors.New("replay: session already running")

// ErrConfig: an invalid Config or Window.
var ErrConfig = errors.New("replay: invalid config")

// Source reads stored events.
type Source interface {
	// Scan calls fn with each stored event of instruments (every instrument if empty) stored
	// at or after start (the first stored if start is zero), one at a time in stream order,
	// until fn has had every event stored when Scan was called (then it returns nil), fn
	// returns an error (ErrStop: nil, else that error), or ctx ends (ctx's error).
	Scan(ctx context.Context, start time.Time, instruments []string, fn func(*tickwirev1.Event) error) error
}

// BusSource reads the JetStream event stream through bus.ConsumeEvents.
type BusSource struct {
	Bus *bus.Bus
	// MaxPending bounds events fetched ahead of fn; default bus's (4096).
	MaxPending int
}

// Scan implements Source with an ordered consumer filtered on the instruments' subjects.
func (s BusSource) Scan(ctx context.Context, start time.Time, instruments []string, fn func(*tickwirev1.Event) error) error {
	subjects, err := subjectsOf(instruments)
	if err != nil {
		return err
	}
	c, err := s.Bus.ConsumeEvents(ctx, bus.ConsumeOptions{Subjects: subjects, StartTime: start, MaxPending: s.MaxPending}, fn)
	if err != nil {
		return err
	}
	defer c.Stop()
	select {
	case <-c.CaughtUp():
		// fn has returned for the last event stored at the start. It may have failed on it.
		c.Stop()
		if err := c.Err(); err != nil && !errors.Is(err, ErrStop) {
			return err
		}
		return nil
	case <-c.Done():
		if err := c.Err(); err != nil && !errors.Is(err, ErrStop) {
			return err
		}
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// subjectsOf returns the event subjects of instruments (nil for all).
func subjectsOf(instruments []string) ([]string, error) {
	if len(instruments) == 0 {
		return nil, nil
	}
	out := make([]string, 0, len(instruments))
	for _, id := range instruments {
		subj, err := bus.EventSubject(id)
		if err != nil {
			return nil, fmt.Errorf("%w: instrument %q: %w", ErrConfig, id, err)
		}
		out = append(out, subj)
	}
	return out, nil
}

// EventTime is the time an event is placed at in a window or a replay: its venue time, or its
// ingest time when the venue gave none. (pkg/market dates trades the same way.)
func EventTime(ev *tickwirev1.Event) int64 {
	if t := ev.GetVenueTimeNs(); t > 0 {
		return t
	}
	return ev.GetIngestTimeNs()
}
