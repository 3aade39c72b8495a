package file

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"

	"google.golang.org/protobuf/encoding/protojson"

	"github.com/tickwire/tickwire/internal/source"
	"github.com/tickwire/tickwire/pkg/history"
	tickwirev1 "github.com/tickwire/tickwire/pkg/proto/tickwire/v1"
)

// EventReader reads normalized events from a history export, in order; Next returns io.EOF at
// the end and an error wrapping ErrRecord for one bad record (the next call goes on). The
// NDJSON export implements it; other encodings (a binary format) can implement it too.
type EventReader interface {
	Next() (*tickwirev1.Event, error)
}

// ErrRecord: one record of a history file could not be read.
var ErrRecord = errors.New("file: malformed record")

// NDJSONEvents reads the NDJSON export: one protojson-encoded tickwire.v1.Event per line.
type NDJSONEvents struct {
	r    *bufio.Reader
	line int64
	opts protojson.UnmarshalOptions
}

// NewNDJSONEvents returns an EventReader of NDJSON.
func NewNDJSONEvents(r io.Reader) *NDJSONEvents {
	return &NDJSONEvents{r: bufio.NewReaderSize(r, 1<<16), opts: protojson.UnmarshalOptions{DiscardUnknown: true}}
}

// Line returns the line number of the last record read.
func (n *NDJSONEvents) Line() int64 { return n.line }

// maxEventLine bounds one line (a deep book snapshot).
const maxEventLine = 64 << 20

// Next implements EventReader.
func (n *NDJSONEvents) Next() (*tickwirev1.Event, error) {
	for {
		b, err := n.r.ReadBytes('\n')
		if len(b) == 0 && err != nil {
			return nil, err
		}
		n.line++
		b = bytes.TrimSpace(b)
		if len(b) == 0 {
			continue
		}
		if len(b) > maxEventLine {
			return nil, fmt.Errorf("%w: line %d: longer than %d bytes", ErrRecord, n.line, maxEventLine)
		}
		ev := &tickwirev1.Event{}
		if err := n.opts.Unmarshal(b, ev); err != nil {
			return nil, fmt.Errorf("%w: line %d: %v", ErrRecord, n.line, err)
		}
		return ev, nil
	}
}

// WriteNDJSON writes events as the NDJSON export.
func WriteNDJSON(w io.Writer, evs ...*tickwirev1.Event) error {
	for _, ev := range evs {
		b, err := protojson.MarshalOptions{}.Marshal(ev)
		if err != nil {
			return fmt.Errorf("file: marshal: %w", err)
		}
		// protojson output has no newlines unless Multiline is set.
		if _, err := w.Write(append(b, '\n')); err != nil {
			return fmt.Errorf("file: write: %w", err)
		}
	}
	return nil
}

// eventsReader adapts an EventReader to Reader: positions are reassigned by ingest (epoch and
// seq cleared), ingest time is stamped anew; the recorded ingest time (else venue time) paces.
type eventsReader struct {
	er    EventReader
	stats *source.Stats
	core  *source.Core
	line  func() int64
}

func openEvents(path string, logger *slog.Logger) (Reader, func() error, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, fmt.Errorf("file: %w", err)
	}
	core := source.NewCore("file", "file:events", nil, logger)
	// The binary history format (pkg/history, TWHIST) is recognised by its magic; anything else
	// is read as NDJSON, where a bad line is skipped and counted.
	br := bufio.NewReaderSize(f, 1<<16)
	if head, _ := br.Peek(len(history.Magic)); string(head) == history.Magic {
		hr, err := history.Open(br)
		if err != nil {
			_ = f.Close()
			return nil, nil, fmt.Errorf("file: %s: %w", path, err)
		}
		return &eventsReader{er: hr, stats: core.Stats(), core: core, line: func() int64 { return 0 }}, f.Close, nil
	}
	nd := NewNDJSONEvents(br)
	return &eventsReader{er: nd, stats: core.Stats(), core: core, line: nd.Line}, f.Close, nil
}

// NewEventsReader returns a Reader over any EventReader.
func NewEventsReader(er EventReader, logger *slog.Logger) Reader {
	core := source.NewCore("file", "file:events", nil, logger)
	return &eventsReader{er: er, stats: core.Stats(), core: core, line: func() int64 { return 0 }}
}

func (e *eventsReader) Stats() *source.Stats { return e.stats }

func (e *eventsReader) Next() (Batch, error) {
	for {
		ev, err := e.er.Next()
		if err != nil {
			if errors.Is(err, ErrRecord) {
				e.stats.Frame()
				e.core.Reject(&source.Frame{N: e.line()}, "", source.ReasonParse, err)
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
