// Package sourcetest holds test helpers for source adapters: locating the recorded data
// (../shared/data beside the repository), replaying captures through a Handler, and
// rebuilding books from the normalized events alone.
package sourcetest

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/tickwire/tickwire/internal/source"
	"github.com/tickwire/tickwire/internal/source/capture"
	"github.com/tickwire/tickwire/pkg/book"
	tickwirev1 "github.com/tickwire/tickwire/pkg/proto/tickwire/v1"
)

// DataDir returns ../shared/data relative to the repository root (the directory holding
// go.mod), or skips the test if it is missing.
func DataDir(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			break
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Skip("sourcetest: no go.mod above the test directory")
		}
		dir = parent
	}
	data := filepath.Join(dir, "..", "shared", "data")
	if st, err := os.Stat(data); err != nil || !st.IsDir() {
		t.Skipf("sourcetest: recorded data not found at %s (CI clones shared/ beside the repository)", data)
	}
	return data
}

// Path returns a file under DataDir.
func Path(t testing.TB, rel ...string) string {
	t.Helper()
	return filepath.Join(append([]string{DataDir(t)}, rel...)...)
}

// Records reads every record of capture files (merged by time).
func Records(t testing.TB, paths ...string) []capture.Record {
	t.Helper()
	r, closeFn, err := capture.Open(paths...)
	if err != nil {
		t.Fatal(err)
	}
	defer closeFn()
	var out []capture.Record
	for {
		rec, err := r.Next()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, rec)
	}
}

// Frames converts received records to frames.
func Frames(recs []capture.Record) []source.Frame {
	var out []source.Frame
	for _, r := range recs {
		if r.Dir == "send" {
			continue
		}
		out = append(out, source.Frame{Conn: r.Conn, N: r.Line, RecvNs: r.TsNs, URL: r.URL, Data: r.Msg})
	}
	return out
}

// Books rebuilds every instrument's book from normalized events only, and checks the event
// stream's own rules: InstrumentInfo before anything else, a snapshot before deltas.
type Books struct {
	Info   map[string]*tickwirev1.InstrumentInfo
	Books  map[string]*book.Book
	Synced map[string]bool
	Counts map[string]int // by body kind: info, snapshot, update, trade, quote
}

// NewBooks returns empty Books.
func NewBooks() *Books {
	return &Books{Info: map[string]*tickwirev1.InstrumentInfo{}, Books: map[string]*book.Book{},
		Synced: map[string]bool{}, Counts: map[string]int{}}
}

// Apply applies one event.
func (b *Books) Apply(ev *tickwirev1.Event) error {
	id := ev.GetInstrument()
	if info := ev.GetInfo(); info != nil {
		b.Info[id] = info
		b.Counts["info"]++
		return nil
	}
	if b.Info[id] == nil {
		return fmt.Errorf("%s: event before InstrumentInfo: %v", id, ev)
	}
	switch body := ev.Body.(type) {
	case *tickwirev1.Event_Book:
		bk := b.Books[id]
		if bk == nil {
			bk = &book.Book{}
			b.Books[id] = bk
		}
		if body.Book.Snapshot {
			bk.Reset()
			b.Synced[id] = true
			b.Counts["snapshot"]++
		} else {
			if !b.Synced[id] {
				return fmt.Errorf("%s: book update before a snapshot", id)
			}
			b.Counts["update"]++
		}
		seen := map[[2]int64]bool{}
		for i, side := range [][]*tickwirev1.Level{body.Book.Bids, body.Book.Asks} {
			for _, l := range side {
				k := [2]int64{int64(i), l.Price}
				if seen[k] {
					return fmt.Errorf("%s: price %d twice in one update", id, l.Price)
				}
				seen[k] = true
				s := book.Bid
				if i == 1 {
					s = book.Ask
				}
				bk.Set(s, l.Price, l.Size)
			}
		}
	case *tickwirev1.Event_Trade:
		b.Counts["trade"]++
	case *tickwirev1.Event_Quote:
		b.Counts["quote"]++
	default:
		return fmt.Errorf("%s: event without body", id)
	}
	return nil
}

// Collector collects emitted events.
type Collector struct {
	Events []*tickwirev1.Event
}

// Emit appends ev.
func (c *Collector) Emit(ev *tickwirev1.Event) error {
	c.Events = append(c.Events, ev)
	return nil
}

// CheckEvent checks what every emitted event must satisfy, whatever the input: an instrument,
// a body, positive prices, non-negative sizes (positive for trades).
func CheckEvent(ev *tickwirev1.Event) error {
	if ev.GetInstrument() == "" {
		return fmt.Errorf("event without instrument: %v", ev)
	}
	switch b := ev.Body.(type) {
	case *tickwirev1.Event_Book:
		for _, side := range [][]*tickwirev1.Level{b.Book.Bids, b.Book.Asks} {
			for _, l := range side {
				if l.Price <= 0 || l.Size < 0 || (b.Book.Snapshot && l.Size == 0) {
					return fmt.Errorf("bad level %v in %v", l, ev)
				}
			}
		}
	case *tickwirev1.Event_Trade:
		if b.Trade.Price <= 0 || b.Trade.Size <= 0 {
			return fmt.Errorf("bad trade %v", ev)
		}
	case *tickwirev1.Event_Quote:
		q := b.Quote
		if q.BidSize < 0 || q.AskSize < 0 || q.BidPrice < 0 || q.AskPrice < 0 {
			return fmt.Errorf("bad quote %v", ev)
		}
	case *tickwirev1.Event_Info:
		if b.Info.GetId() != ev.Instrument {
			return fmt.Errorf("info of %q on %q", b.Info.GetId(), ev.Instrument)
		}
	default:
		return fmt.Errorf("event without body: %v", ev)
	}
	return nil
}

// FuzzHandler handles the prefix frames (to reach a synced state), then data, and checks
// every event emitted. It must never panic.
func FuzzHandler(t *testing.T, h interface {
	Handle(f *source.Frame, emit source.Emit) error
}, prefix []source.Frame, data []byte) {
	emit := func(ev *tickwirev1.Event) error {
		if err := CheckEvent(ev); err != nil {
			t.Fatal(err)
		}
		return nil
	}
	for i := range prefix {
		if err := h.Handle(&prefix[i], emit); err != nil {
			t.Fatal(err)
		}
	}
	f := source.Frame{N: 1, RecvNs: 1_700_000_000_000_000_000, Data: data}
	if err := h.Handle(&f, emit); err != nil {
		t.Fatal(err)
	}
}

// BenchHandler measures frames handled per second: each iteration replays frames through a
// fresh handler from newHandler (so books start over), and reports frames/s and events/s.
func BenchHandler(b *testing.B, frames []source.Frame, newHandler func() source.Handler) {
	b.Helper()
	var bytes int64
	for _, f := range frames {
		bytes += int64(len(f.Data))
	}
	b.SetBytes(bytes)
	b.ReportAllocs()
	var events int64
	emit := func(*tickwirev1.Event) error { events++; return nil }
	for b.Loop() {
		h := newHandler()
		for i := range frames {
			if err := h.Handle(&frames[i], emit); err != nil {
				b.Fatal(err)
			}
		}
	}
	secs := b.Elapsed().Seconds()
	b.ReportMetric(float64(b.N*len(frames))/secs, "frames/s")
	b.ReportMetric(float64(events)/secs, "events/s")
}
