package binance

import (
	"testing"

	"github.com/tickwire/tickwire/internal/source"
	"github.com/tickwire/tickwire/internal/source/sourcetest"
)

type replayResult struct {
	frames, events int
	stats          source.Snapshot
	books          *sourcetest.Books
	h              *Handler
}

// replay runs a capture through a spot Handler, rebuilding books from the events alone and
// checking after every frame that no rebuilt book is crossed and that it equals the handler's.
func replay(t *testing.T, market Market, paths ...string) replayResult {
	t.Helper()
	h, err := New(Config{Market: market}, nil)
	if err != nil {
		t.Fatal(err)
	}
	books := sourcetest.NewBooks()
	var col sourcetest.Collector
	res := replayResult{h: h, books: books}
	for _, f := range sourcetest.Frames(sourcetest.Records(t, paths...)) {
		res.frames++
		n := len(col.Events)
		if err := h.Handle(&f, col.Emit); err != nil {
			t.Fatal(err)
		}
		for _, ev := range col.Events[n:] {
			if err := books.Apply(ev); err != nil {
				t.Fatalf("frame %d: %v", f.N, err)
			}
			if b := books.Books[ev.Instrument]; ev.GetBook() != nil && b.Crossed() {
				t.Fatalf("frame %d: %s crossed", f.N, ev.Instrument)
			}
		}
	}
	for id, b := range books.Books {
		in := h.Instruments().ByID(id)
		hb, _ := h.BookOf(in.Symbol)
		if !hb.Equal(b) {
			t.Errorf("%s: rebuilt book differs from the handler's", id)
		}
	}
	res.events = len(col.Events)
	res.stats = h.Stats().Snapshot()
	return res
}

func TestCaptureSpotHftbacktest(t *testing.T) {
	res := replay(t, Spot, sourcetest.Path(t, "binance-spot-2024-hftbacktest", "btcusdt_first60s.ndjson"))
	t.Logf("frames %d, events %d; %s; counts %v", res.frames, res.events, res.stats, res.books.Counts)
	if len(res.stats.Rejects) != 0 {
		t.Errorf("rejects %v", res.stats.Rejects)
	}
	// 599 depth events: 2 older than the snapshot, 597 applied, each checked on the chain.
	if res.stats.Checks["update_id ok"] != 597 || res.stats.Checks["update_id fail"] != 0 || res.stats.Dropped["older_than_snapshot"] != 2 {
		t.Errorf("checks %v dropped %v", res.stats.Checks, res.stats.Dropped)
	}
	c := res.books.Counts
	if c["snapshot"] != 1 || c["update"] != 597 || c["quote"] != 5360 || c["trade"] != 1381 {
		t.Errorf("counts %v", c)
	}
	if res.stats.Checks["trade_id fail"] != 0 {
		t.Errorf("trade ids: %v", res.stats.Checks)
	}
}

func TestCaptureSpotCryptofeed(t *testing.T) {
	dir := "binance-spot-2021-cryptofeed"
	res := replay(t, Spot, sourcetest.Path(t, dir, "ws_frames.ndjson"), sourcetest.Path(t, dir, "rest_depth_snapshots.ndjson"))
	t.Logf("frames %d, events %d; %s; counts %v", res.frames, res.events, res.stats, res.books.Counts)
	if len(res.stats.Rejects) != 0 {
		t.Errorf("rejects %v", res.stats.Rejects)
	}
	if res.stats.Checks["update_id fail"] != 0 || res.books.Counts["snapshot"] != 4 {
		t.Errorf("checks %v counts %v", res.stats.Checks, res.books.Counts)
	}
	if got := res.stats.Checks["update_id ok"] + res.stats.Dropped["older_than_snapshot"]; got != 177 {
		t.Errorf("applied + dropped depth events = %d, want 177", got)
	}
}
