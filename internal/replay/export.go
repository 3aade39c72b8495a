package replay

import (
	"context"
	"fmt"
	"time"

	"github.com/tickwire/tickwire/pkg/history"
	tickwirev1 "github.com/tickwire/tickwire/pkg/proto/tickwire/v1"
)

// DefaultSlack is how far event times and store times may disagree: reading starts this long
// before a window (in store time) and stops at the first event ingested this long after it.
// A minute covers ingest-to-store latency, clock skew between venue, ingest and NATS hosts, and
// a backlog published after a reconnect.
const DefaultSlack = time.Minute

// Window is a span of event time (EventTime), both ends included, of some instruments.
type Window struct {
	From, To time.Time
	// Instruments to include; empty means every instrument.
	Instruments []string
	// Slack: see DefaultSlack (0: the default).
	Slack time.Duration
	// ScanAll reads to the end of the stream instead of stopping at the first event ingested
	// Slack after To. Needed to find events imported after the window's wall-clock time (they
	// are stored after later live events).
	ScanAll bool
}

func (w *Window) check() error {
	if w.From.IsZero() || w.To.IsZero() || w.To.Before(w.From) {
		return fmt.Errorf("%w: window %s .. %s", ErrConfig, w.From.Format(time.RFC3339Nano), w.To.Format(time.RFC3339Nano))
	}
	if w.Slack < 0 {
		return fmt.Errorf("%w: slack %s < 0", ErrConfig, w.Slack)
	}
	if w.Slack == 0 {
		w.Slack = DefaultSlack
	}
	_, err := subjectsOf(w.Instruments)
	return err
}

// pastEnd reports whether ev shows that the window's stored events are all behind: it was
// ingested more than Slack after To.
func (w *Window) pastEnd(ev *tickwirev1.Event) bool {
	return !w.ScanAll && ev.GetIngestTimeNs() > w.To.UnixNano()+int64(w.Slack)
}

// ExportStats counts an export.
type ExportStats struct {
	Scanned uint64 // events read from the store
	Written uint64 // events in the window, written
}

// Export writes the stored events of win, in stream order and verbatim, to w (it does not
// Close w).
func Export(ctx context.Context, src Source, win Window, w history.Writer) (ExportStats, error) {
	var st ExportStats
	if err := win.check(); err != nil {
		return st, err
	}
	from, to := win.From.UnixNano(), win.To.UnixNano()
	err := src.Scan(ctx, win.From.Add(-win.Slack), win.Instruments, func(ev *tickwirev1.Event) error {
		st.Scanned++
		if win.pastEnd(ev) {
			return ErrStop
		}
		if t := EventTime(ev); t < from || t > to {
			return nil
		}
		if err := w.Write(ev); err != nil {
			return err
		}
		st.Written++
		return nil
	})
	if err != nil {
		return st, fmt.Errorf("replay: export: %w", err)
	}
	return st, nil
}
