// Package file ingests history files: our own normalized export (pkg/history's NDJSON or binary
// format, read by pkg/history as tickctl import reads it), tardis.dev CSV datasets
// (incremental_book_L2, book_snapshot_N, trades, quotes), FX quote CSVs (timestamp,bid,ask)
// and LOBSTER level-1 message + orderbook files. Replays are paced at the original timing, N
// times faster, or as fast as possible.
//
// CSV values are parsed exactly at the instrument's scale; scales come from --instrument-spec,
// or are inferred from the decimals of the file's first rows (a pre-scan), and logged as such.
// A bad row is counted and logged with its line number, and the next row is read normally.
package file

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"

	"github.com/tickwire/tickwire/internal/source"
	tickwirev1 "github.com/tickwire/tickwire/pkg/proto/tickwire/v1"
)

// Format names a file format.
type Format string

const (
	FormatEvents        Format = "events"         // NDJSON of protojson tickwire.v1.Event, or pkg/history binary
	FormatTardisBookL2  Format = "tardis-book-l2" // incremental_book_L2
	FormatTardisSnap    Format = "tardis-book-snapshot"
	FormatTardisTrades  Format = "tardis-trades"
	FormatTardisQuotes  Format = "tardis-quotes"
	FormatFXQuotes      Format = "fx-quotes" // timestamp,bid,ask
	FormatLobsterLevel1 Format = "lobster-l1"
)

// Formats lists every format.
var Formats = []Format{FormatEvents, FormatTardisBookL2, FormatTardisSnap, FormatTardisTrades, FormatTardisQuotes, FormatFXQuotes, FormatLobsterLevel1}

// PrescanRows is how many rows a CSV reader reads ahead to infer scales (when not configured):
// enough to meet the longest decimals of a day's file in practice, cheap to read twice.
const PrescanRows = 10_000

// Batch is what a reader yields: the events of one row (or one group of rows forming one
// update), and the recorded time to pace them by (Unix ns, 0 if none).
type Batch struct {
	Events []*tickwirev1.Event
	TsNs   int64
}

// Reader yields batches in file order; Next returns io.EOF at the end. Bad rows are counted
// in the reader's Stats and skipped.
type Reader interface {
	Next() (Batch, error)
	Stats() *source.Stats
}

// Config configures a file Source.
type Config struct {
	Format Format
	// Paths: one file; LOBSTER takes the message file and the orderbook file.
	Paths []string
	// Instrument names the instrument of formats without a symbol column (fx-quotes,
	// lobster-l1), e.g. "truefx:USD/JPY", "lobster:AMZN".
	Instrument string
	// Speed: 1 original timing, N times faster, 0 as fast as possible.
	Speed float64
	Specs source.Specs
	// FXSize is the size given to each side of an FX quote, whose files carry none (a zero
	// size would mean an empty side). Default 1 (one unit at size scale 0).
	FXSize int64
}

// Source replays a history file; it implements ingest.Source and ends at the end of the file.
type Source struct {
	cfg    Config
	r      Reader
	closer func() error
	logger *slog.Logger
}

// Open opens the file(s) of cfg.
func Open(cfg Config, logger *slog.Logger) (*Source, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	logger = logger.With("component", "file", "format", string(cfg.Format))
	if len(cfg.Paths) == 0 {
		return nil, fmt.Errorf("file: no path")
	}
	var (
		r      Reader
		closer func() error
		err    error
	)
	switch cfg.Format {
	case FormatEvents:
		r, closer, err = openEvents(cfg.Paths[0], logger)
	case FormatTardisBookL2, FormatTardisSnap, FormatTardisTrades, FormatTardisQuotes:
		r, closer, err = openTardis(cfg, logger)
	case FormatFXQuotes:
		r, closer, err = openFX(cfg, logger)
	case FormatLobsterLevel1:
		r, closer, err = openLobster(cfg, logger)
	default:
		return nil, fmt.Errorf("file: format %q: want one of %v", cfg.Format, Formats)
	}
	if err != nil {
		return nil, err
	}
	return &Source{cfg: cfg, r: r, closer: closer, logger: logger}, nil
}

// Name implements ingest.Source.
func (s *Source) Name() string { return "file:" + string(s.cfg.Format) }

// Stats returns the reader's counters.
func (s *Source) Stats() *source.Stats { return s.r.Stats() }

// SetBreakHandler implements ingest.BreakReporter for readers whose books can restart
// (a tardis snapshot block after updates).
func (s *Source) SetBreakHandler(f func(string)) {
	if br, ok := s.r.(interface{ SetBreakHandler(func(string)) }); ok {
		br.SetBreakHandler(f)
	}
}

// Reader returns the reader.
func (s *Source) Reader() Reader { return s.r }

// Close closes the files.
func (s *Source) Close() error { return s.closer() }

// Run implements ingest.Source.
func (s *Source) Run(ctx context.Context, emit func(*tickwirev1.Event) error) error {
	pacer := source.Pacer{Speed: s.cfg.Speed}
	for {
		b, err := s.r.Next()
		if errors.Is(err, io.EOF) {
			s.logger.Info("file replayed", "stats", s.r.Stats().Snapshot().String())
			return nil
		}
		if err != nil {
			return fmt.Errorf("file: %w", err)
		}
		if err := pacer.Wait(ctx, b.TsNs); err != nil {
			return nil //nolint:nilerr // cancelled: shutting down is not an error
		}
		for _, ev := range b.Events {
			if err := emit(ev); err != nil {
				return fmt.Errorf("file: emit: %w", err)
			}
		}
	}
}

// ReadAll reads every batch of r (tests, tools).
func ReadAll(r Reader) ([]*tickwirev1.Event, error) {
	var out []*tickwirev1.Event
	for {
		b, err := r.Next()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return out, err
		}
		out = append(out, b.Events...)
	}
}
