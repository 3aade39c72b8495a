package file

import (
	"errors"
	"fmt"
	"log/slog"
	"os"

	"github.com/tickwire/tickwire/internal/source"
	"github.com/tickwire/tickwire/pkg/history"
	tickwirev1 "github.com/tickwire/tickwire/pkg/proto/tickwire/v1"
)

// EventReader reads normalized events from a history file, in order: a pkg/history.Reader (the
// one reader of both history formats, NDJSON and binary, that tickctl import uses too). Next
// returns io.EOF at the end and a *history.LineError for one bad NDJSON line (the next call
// goes on); any other error ends the file.
type EventReader interface {
	Next() (*tickwirev1.Event, error)
}

// ErrRecord: one record of a CSV file could not be read.
var ErrRecord = errors.New("file: malformed record")

// eventsReader adapts an EventReader to Reader: positions are reassigned by ingest (epoch and
// seq cleared), ingest time is stamped anew; the recorded ingest time (else venue time) paces.
type eventsReader struct {
	er    EventReader
	stats *source.Stats
	core  *source.Core
}

func openEvents(path string, logger *slog.Logger) (Reader, func() error, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, fmt.Errorf("file: %w", err)
	}
	hr, err := history.Open(f)
	if err != nil {
		_ = f.Close()
		return nil, nil, fmt.Errorf("file: %s: %w", path, err)
	}
	return NewEventsReader(hr, logger), f.Close, nil
}

// NewEventsReader returns a Reader over any EventReader.
func NewEventsReader(er EventReader, logger *slog.Logger) Reader {
	core := source.NewCore("file", "file:events", nil, logger)
	return &eventsReader{er: er, stats: core.Stats(), core: core}
}

func (e *eventsReader) Stats() *source.Stats { return e.stats }

func (e *eventsReader) Next() (Batch, error) {
	for {
		ev, err := e.er.Next()
		if err != nil {
			// A bad NDJSON line is skipped and counted; the reader goes on after it.
			if le := (*history.LineError)(nil); errors.As(err, &le) {
				e.stats.Frame()
				e.core.Reject(&source.Frame{N: int64(le.Line)}, "", source.ReasonParse, err)
				continue
			}
			return Batch{}, err
		}
		e.stats.Frame()
		ts := ev.GetIngestTimeNs()
		if ts == 0 {
			ts = ev.GetVenueTimeNs()
		}
		ev.Epoch, ev.Seq, ev.IngestTimeNs = 0, 0, 0
		_ = e.core.Emit(func(*tickwirev1.Event) error { return nil }, ev) // count it
		return Batch{Events: []*tickwirev1.Event{ev}, TsNs: ts}, nil
	}
}
