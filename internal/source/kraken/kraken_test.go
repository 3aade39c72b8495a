package kraken

import (
	"encoding/json"
	"os"
	"testing"

	"github.com/tickwire/tickwire/internal/normalize"
	"github.com/tickwire/tickwire/internal/source"
	"github.com/tickwire/tickwire/internal/source/sourcetest"
	"github.com/tickwire/tickwire/pkg/book"
)

// replayResult is what a capture replay measured.
type replayResult struct {
	frames, events, verified int
	stats                    source.Snapshot
	books                    *sourcetest.Books
}

// replayV1 replays a v1 capture and checks, on every book update that carries a checksum, that
// the book rebuilt from the normalized events alone matches Kraken's checksum.
func replayV1(t *testing.T, paths ...string) replayResult {
	t.Helper()
	h, err := New(Config{Version: 1}, nil)
	if err != nil {
		t.Fatal(err)
	}
	books := sourcetest.NewBooks()
	var res replayResult
	var col sourcetest.Collector
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
		}
		m, err := ParseV1(f.Data)
		if err != nil || m.Kind != KindBook || !m.Book.HasChecksum {
			continue
		}
		_, prec, in := h.BookOf(m.Pair)
		b := books.Books[in.ID]
		sum, ok := Checksum(b.Bids(), b.Asks(), in.PriceScale, in.SizeScale, prec)
		if !ok || sum != m.Book.Checksum {
			t.Fatalf("frame %d %s: rebuilt book checksum %d, Kraken %d", f.N, m.Pair, sum, m.Book.Checksum)
		}
		res.verified++
	}
	res.events = len(col.Events)
	res.stats = h.Stats().Snapshot()
	res.books = books
	return res
}

func TestCaptureV1BookSDK(t *testing.T) {
	res := replayV1(t, sourcetest.Path(t, "kraken-v1-book-2023-python-kraken-sdk", "orderbook-v1.json"))
	t.Logf("frames %d, events %d, checksums verified on rebuilt books %d; %s", res.frames, res.events, res.verified, res.stats)
	if res.verified != 979 {
		t.Errorf("verified %d checksums, want 979", res.verified)
	}
	if len(res.stats.Rejects) != 0 {
		t.Errorf("rejects: %v", res.stats.Rejects)
	}
	if res.stats.Checks["checksum ok"] != 979 || res.stats.Checks["checksum fail"] != 0 {
		t.Errorf("checks: %v", res.stats.Checks)
	}
	if got := res.books.Info["kraken:XBT/USD"]; got.GetPriceScale() != 5 || got.GetSizeScale() != 8 {
		t.Errorf("inferred info %v", got)
	}
}

func TestCaptureV1Cryptofeed(t *testing.T) {
	res := replayV1(t, sourcetest.Path(t, "kraken-v1-2021-cryptofeed", "ws_frames.ndjson"))
	t.Logf("frames %d, events %d, checksums verified on rebuilt books %d; %s; counts %v", res.frames, res.events, res.verified, res.stats, res.books.Counts)
	if res.verified != 4269 {
		t.Errorf("verified %d checksums, want 4269", res.verified)
	}
	if len(res.stats.Rejects) != 0 {
		t.Errorf("rejects: %v", res.stats.Rejects)
	}
	// 8 trade messages carry 10 trades.
	if res.books.Counts["snapshot"] != 10 || res.books.Counts["trade"] != 10 || res.books.Counts["quote"] != 18 {
		t.Errorf("counts %v", res.books.Counts)
	}
	for id, b := range res.books.Books {
		if b.Crossed() {
			t.Errorf("%s crossed at the end", id)
		}
	}
}

// The documented checksum examples of both API versions (checksum-vectors/kraken_docs.json).
func TestChecksumVectors(t *testing.T) {
	raw, err := os.ReadFile(sourcetest.Path(t, "checksum-vectors", "kraken_docs.json"))
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Vectors []struct {
			ID       string     `json:"id"`
			Asks     [][]string `json:"asks"`
			Bids     [][]string `json:"bids"`
			Expected uint32     `json:"expected_checksum"`
		} `json:"vectors"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	if len(doc.Vectors) != 2 {
		t.Fatalf("%d vectors", len(doc.Vectors))
	}
	for _, v := range doc.Vectors {
		var rows [][]string
		rows = append(rows, v.Asks...)
		rows = append(rows, v.Bids...)
		var raws []source.RawLevel
		for _, r := range rows {
			raws = append(raws, source.RawLevel{Price: r[0], Size: r[1]})
		}
		pd, sd := source.LevelDecimals(raws)
		// Hold the book at a finer scale than Kraken writes: the checksum re-expresses it.
		scaleP, scaleS := pd+3, sd+2
		conv := func(rows [][]string) []book.Level {
			var out []book.Level
			for _, r := range rows {
				p, err1 := normalize.ParseMantissa(r[0], scaleP)
				s, err2 := normalize.ParseMantissa(r[1], scaleS)
				if err1 != nil || err2 != nil {
					t.Fatal(err1, err2)
				}
				out = append(out, book.Level{Price: p, Size: s})
			}
			return out
		}
		var b book.Book
		b.Replace(conv(v.Bids), conv(v.Asks))
		got, ok := Checksum(b.Bids(), b.Asks(), scaleP, scaleS, Precision{Price: pd, Size: sd})
		if !ok || got != v.Expected {
			t.Errorf("%s: checksum %d, want %d", v.ID, got, v.Expected)
		}
	}
}
