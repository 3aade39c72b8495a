package replay

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"

	"github.com/tickwire/tickwire/internal/bus"
	"github.com/tickwire/tickwire/pkg/history"
	"github.com/tickwire/tickwire/pkg/market"
	tickwirev1 "github.com/tickwire/tickwire/pkg/proto/tickwire/v1"
)

// Store is where Import publishes; bus.Bus implements it.
type Store interface {
	Publish(ctx context.Context, ev *tickwirev1.Event) error
	Flush(ctx context.Context) error
	LastPosition(ctx context.Context, instrument string) (epoch, seq uint64, found bool, err error)
}

var _ Store = (*bus.Bus)(nil)

// ImportStats counts an import.
type ImportStats struct {
	// Read counts events decoded from the file.
	Read uint64
	// Published counts events handed to the store (JetStream stores an event once however
	// often it is published within its de-duplication window).
	Published uint64
	// Rejected counts undecodable NDJSON lines and events that fail validation: an invalid
	// instrument id, no body, impossible values, or a position at or before the instrument's
	// previous event in the file (pkg/market State.Apply).
	Rejected uint64
	// Skipped counts valid events at or before the position the store already holds for
	// their instrument: already imported, or older than what is stored. Appending them would
	// put an older position after a newer one on the instrument's subject, which consumers
	// ignore and which would mislead ingest's sequencer after a restart.
	Skipped uint64
}

// Import publishes the events of r to store verbatim (same instrument, epoch, seq and times,
// so JetStream's message ids de-duplicate them), after validating each with a market.State per
// instrument. Invalid events are counted, logged at debug level and skipped; an undecodable
// NDJSON line likewise. Any other read error stops the import. With a nil store it only
// validates and counts (a dry run). It flushes before returning.
func Import(ctx context.Context, r history.Reader, store Store, logger *slog.Logger) (ImportStats, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	var st ImportStats
	states := map[string]*market.State{}
	type pos struct{ epoch, seq uint64 }
	stored := map[string]*pos{} // last stored position per instrument, nil entry: none
	for {
		if err := ctx.Err(); err != nil {
			return st, err
		}
		ev, err := r.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if le := (*history.LineError)(nil); errors.As(err, &le) {
			st.Rejected++
			logger.Debug("import: bad line", "line", le.Line, "err", le.Err)
			continue
		}
		if err != nil {
			return st, fmt.Errorf("replay: import: after %d events: %w", st.Read, err)
		}
		st.Read++
		id := ev.GetInstrument()
		s := states[id]
		if s == nil {
			if _, err := bus.EventSubject(id); err != nil {
				st.Rejected++
				logger.Debug("import: bad instrument", "instrument", id, "err", err)
				continue
			}
			s = market.NewState(id, market.Config{})
			states[id] = s
		}
		if _, err := s.Apply(ev); err != nil {
			st.Rejected++
			logger.Debug("import: invalid event", "instrument", id, "epoch", ev.GetEpoch(), "seq", ev.GetSeq(), "err", err)
			continue
		}
		if store == nil {
			continue
		}
		p, seen := stored[id]
		if !seen {
			epoch, seq, found, err := store.LastPosition(ctx, id)
			if err != nil {
				return st, fmt.Errorf("replay: import: %w", err)
			}
			if found {
				p = &pos{epoch, seq}
			}
			stored[id] = p
		}
		if p != nil && (ev.Epoch < p.epoch || ev.Epoch == p.epoch && ev.Seq <= p.seq) {
			st.Skipped++
			continue
		}
		if err := store.Publish(ctx, ev); err != nil {
			return st, fmt.Errorf("replay: import: %w", err)
		}
		st.Published++
	}
	if store != nil {
		if err := store.Flush(ctx); err != nil {
			return st, fmt.Errorf("replay: import: %w", err)
		}
	}
	return st, nil
}
