package capture

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"sync"

	"github.com/tickwire/tickwire/internal/source"
	tickwirev1 "github.com/tickwire/tickwire/pkg/proto/tickwire/v1"
)

// Config configures a replay.
type Config struct {
	// Speed paces frames by their recorded times: 1 original timing, N times faster, 0 as fast
	// as possible.
	Speed float64
	// RecordedTime stamps events with the recorded receive time as ingest_time_ns; by default
	// the pipeline stamps its own clock (so latency metrics mean something).
	RecordedTime bool
}

// Source replays a capture through a venue Handler; it implements ingest.Source,
// ingest.SnapshotRequester and ingest.BreakReporter. It ends (Run returns nil) at the end of
// the capture.
type Source struct {
	h      source.Handler
	r      Reader
	cfg    Config
	logger *slog.Logger
	reqs   source.Requests
}

// New returns a Source replaying r through h.
func New(h source.Handler, r Reader, cfg Config, logger *slog.Logger) *Source {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Source{h: h, r: r, cfg: cfg, logger: logger.With("component", "capture")}
}

// Name implements ingest.Source.
func (s *Source) Name() string { return "capture:" + s.h.Stats().Name() }

// Handler returns the venue handler.
func (s *Source) Handler() source.Handler { return s.h }

// RequestSnapshot implements ingest.SnapshotRequester: the handler's own book (verified
// against the venue) answers, since a capture cannot ask the venue.
func (s *Source) RequestSnapshot(instrument string) { s.reqs.Add(instrument) }

// SetBreakHandler implements ingest.BreakReporter.
func (s *Source) SetBreakHandler(f func(string)) { s.h.SetBreakHandler(f) }

// Run implements ingest.Source.
func (s *Source) Run(ctx context.Context, emit func(*tickwirev1.Event) error) error {
	pacer := source.Pacer{Speed: s.cfg.Speed}
	var f source.Frame
	for {
		rec, err := s.r.Next()
		if errors.Is(err, io.EOF) {
			s.logger.Info("capture replayed", "stats", s.h.Stats().Snapshot().String())
			return nil
		}
		if err != nil {
			if !errors.Is(err, ErrRecord) {
				return fmt.Errorf("capture: %w", err)
			}
			s.h.Stats().Frame()
			s.h.Reject(&source.Frame{N: rec.Line, Conn: rec.Conn}, "", source.ReasonParse, err)
			continue
		}
		if rec.Dir == "send" {
			continue
		}
		if err := pacer.Wait(ctx, rec.TsNs); err != nil {
			return nil //nolint:nilerr // cancelled: shutting down is not an error
		}
		f = source.Frame{Conn: rec.Conn, N: rec.Line, RecvNs: rec.TsNs, URL: rec.URL, Data: rec.Msg}
		if s.cfg.RecordedTime {
			f.IngestNs = rec.TsNs
		}
		if err := s.h.Handle(&f, emit); err != nil {
			return err
		}
		if err := s.reqs.Serve(s.h, f.IngestNs, emit); err != nil {
			return err
		}
	}
}

// Recorder writes frames as NDJSON records that Open reads back. Safe for concurrent use.
type Recorder struct {
	mu  sync.Mutex
	w   *bufio.Writer // guarded by mu
	c   io.Closer
	err error // guarded by mu; the first write error
}

// NewRecorder returns a Recorder writing to w (closed by Close if it is an io.Closer).
func NewRecorder(w io.Writer) *Recorder {
	r := &Recorder{w: bufio.NewWriterSize(w, 1<<16)}
	if c, ok := w.(io.Closer); ok {
		r.c = c
	}
	return r
}

// Record writes one frame: dir is "recv" or "send".
func (r *Recorder) Record(f *source.Frame, dir string) error {
	var b []byte
	b = append(b, `{"local_ts_ns":`...)
	b = strconv.AppendInt(b, f.RecvNs, 10)
	if f.Conn != "" {
		b = append(b, `,"conn":`...)
		b = strconv.AppendQuote(b, f.Conn)
	}
	b = append(b, `,"dir":`...)
	b = strconv.AppendQuote(b, dir)
	if f.URL != "" {
		b = append(b, `,"url":`...)
		b = strconv.AppendQuote(b, f.URL)
	}
	if json.Valid(f.Data) && !containsNewline(f.Data) {
		b = append(b, `,"msg":`...)
		b = append(b, f.Data...)
	} else {
		js, _ := json.Marshal(string(f.Data))
		b = append(b, `,"msg_text":`...)
		b = append(b, js...)
	}
	b = append(b, "}\n"...)
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.err != nil {
		return r.err
	}
	if _, err := r.w.Write(b); err != nil {
		r.err = fmt.Errorf("capture: record: %w", err)
	}
	return r.err
}

func containsNewline(b []byte) bool {
	for _, c := range b {
		if c == '\n' || c == '\r' {
			return true
		}
	}
	return false
}

// Flush writes buffered records.
func (r *Recorder) Flush() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.w.Flush(); err != nil && r.err == nil {
		r.err = fmt.Errorf("capture: flush: %w", err)
	}
	return r.err
}

// Close flushes and closes the underlying writer.
func (r *Recorder) Close() error {
	err := r.Flush()
	if r.c != nil {
		err = errors.Join(err, r.c.Close())
	}
	return err
}
