package file

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/tickwire/tickwire/internal/source/kraken"
	"github.com/tickwire/tickwire/internal/source/sourcetest"
	"github.com/tickwire/tickwire/pkg/history"
	tickwirev1 "github.com/tickwire/tickwire/pkg/proto/tickwire/v1"
)

// readFile opens cfg, reads every event, checks the stream rules by rebuilding books, and
// fails on any reject.
func readFile(t *testing.T, cfg Config) ([]*tickwirev1.Event, *sourcetest.Books) {
	t.Helper()
	src, err := Open(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	evs, err := ReadAll(src.Reader())
	if err != nil {
		t.Fatal(err)
	}
	books := sourcetest.NewBooks()
	for _, ev := range evs {
		if err := books.Apply(ev); err != nil {
			t.Fatal(err)
		}
	}
	st := src.Stats().Snapshot()
	t.Logf("%s: events %d; %s; counts %v", cfg.Format, len(evs), st, books.Counts)
	if len(st.Rejects) != 0 {
		t.Errorf("rejects %v", st.Rejects)
	}
	return evs, books
}

func TestTardis(t *testing.T) {
	dir := sourcetest.Path(t, "tardis-samples")
	for _, tc := range []struct {
		format Format
		file   string
		counts map[string]int
		id     string
		scales [2]int32
	}{
		{FormatTardisBookL2, "deribit_incremental_book_L2_BTC-PERPETUAL.csv", map[string]int{"info": 1, "snapshot": 1}, "deribit:BTC-PERPETUAL", [2]int32{1, 0}},
		{FormatTardisSnap, "binance-futures_book_snapshot_5_BTCUSDT.csv", map[string]int{"info": 1, "snapshot": 10}, "binance-futures:BTCUSDT", [2]int32{2, 3}},
		{FormatTardisSnap, "binance-futures_book_snapshot_25_BTCUSDT.csv", map[string]int{"info": 1, "snapshot": 10}, "binance-futures:BTCUSDT", [2]int32{2, 3}},
		{FormatTardisTrades, "bitmex_trades_XBTUSD.csv", map[string]int{"info": 1, "trade": 10}, "bitmex:XBTUSD", [2]int32{1, 0}},
		{FormatTardisQuotes, "huobi-dm-swap_quotes_BTC-USD.csv", map[string]int{"info": 1, "quote": 10}, "huobi-dm-swap:BTC-USD", [2]int32{1, 0}},
	} {
		t.Run(string(tc.format)+"/"+tc.file, func(t *testing.T) {
			_, books := readFile(t, Config{Format: tc.format, Paths: []string{filepath.Join(dir, tc.file)}})
			for k, n := range tc.counts {
				if books.Counts[k] != n {
					t.Errorf("%s: %d, want %d", k, books.Counts[k], n)
				}
			}
			info := books.Info[tc.id]
			if info.GetPriceScale() != tc.scales[0] || info.GetSizeScale() != tc.scales[1] {
				t.Errorf("info %v, want scales %v", info, tc.scales)
			}
		})
	}
}

func TestFXQuotes(t *testing.T) {
	evs, books := readFile(t, Config{Format: FormatFXQuotes, Instrument: "truefx:USD/JPY",
		Paths: []string{sourcetest.Path(t, "truefx-usdjpy-2013", "usdjpy-ticks.csv")}})
	if books.Counts["quote"] != 1000 {
		t.Errorf("counts %v", books.Counts)
	}
	q := evs[1].GetQuote()
	if q.GetBidPrice() != 86655 || q.GetAskPrice() != 86728 || q.GetBidSize() != 1 || evs[1].GetVenueTimeNs() != 1357077600295000000 {
		t.Errorf("first quote %v at %d", q, evs[1].GetVenueTimeNs())
	}
}

func TestLobster(t *testing.T) {
	dir := sourcetest.Path(t, "lobster-amzn-2012-06-21-level1")
	evs, books := readFile(t, Config{Format: FormatLobsterLevel1, Paths: []string{
		filepath.Join(dir, "AMZN_2012-06-21_34200000_57600000_message_1.first10000.csv"),
		filepath.Join(dir, "AMZN_2012-06-21_34200000_57600000_orderbook_1.first10000.csv")}})
	// 1758 executions (types 4 and 5) and 9499 changes of the best bid/offer in 10000 rows.
	if books.Counts["trade"] != 1758 || books.Counts["quote"] != 9499 || books.Info["lobster:AMZN"].GetPriceScale() != 4 {
		t.Errorf("counts %v info %v", books.Counts, books.Info["lobster:AMZN"])
	}
	// 34200.01746 s after midnight in New York (EDT, UTC-4) on 2012-06-21.
	if got := evs[1].GetVenueTimeNs(); got != 1340285400017460000 {
		t.Errorf("first event time %d", got)
	}
}

// The NDJSON export round-trips: a capture's normalized events, written and read back, are equal.
func TestEventsRoundTrip(t *testing.T) {
	h, err := kraken.New(kraken.Config{Version: 1}, nil)
	if err != nil {
		t.Fatal(err)
	}
	var col sourcetest.Collector
	for _, f := range sourcetest.Frames(sourcetest.Records(t, sourcetest.Path(t, "kraken-v1-book-2023-python-kraken-sdk", "orderbook-v1.json"))) {
		if err := h.Handle(&f, col.Emit); err != nil {
			t.Fatal(err)
		}
	}
	for i, ev := range col.Events {
		ev.Epoch, ev.Seq, ev.IngestTimeNs = 1, uint64(i+1), int64(i+1)
	}
	var buf bytes.Buffer
	w := history.NewNDJSONWriter(&buf)
	for _, ev := range col.Events {
		if err := w.Write(ev); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	buf.WriteString("{not json}\n") // one bad line is counted and skipped
	// An unknown field is refused as tickctl import refuses it (pkg/history, the one reader),
	// not dropped: the line's data would be silently altered.
	buf.WriteString(`{"instrument":"kraken:XBT/USD","trade":{"price":"100","size":"1"},"future":1}` + "\n")
	path := filepath.Join(t.TempDir(), "events.ndjson")
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	src, err := Open(Config{Format: FormatEvents, Paths: []string{path}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	var got []*tickwirev1.Event
	if err := src.Run(context.Background(), func(ev *tickwirev1.Event) error { got = append(got, ev); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(got) != len(col.Events) {
		t.Fatalf("read %d events, wrote %d", len(got), len(col.Events))
	}
	for i, ev := range got {
		want := proto.Clone(col.Events[i]).(*tickwirev1.Event)
		want.Epoch, want.Seq, want.IngestTimeNs = 0, 0, 0 // ingest assigns positions again
		if !proto.Equal(ev, want) {
			t.Fatalf("event %d: %v, want %v", i, ev, want)
		}
	}
	if st := src.Stats().Snapshot(); st.Rejects["parse"] != 2 {
		t.Errorf("stats %s", st)
	}
}

// The binary history format (pkg/history) is read through the same EventReader interface.
func TestEventsBinary(t *testing.T) {
	evs := []*tickwirev1.Event{
		{Instrument: "test:A", Epoch: 1, Seq: 1, IngestTimeNs: 5, Body: &tickwirev1.Event_Info{Info: &tickwirev1.InstrumentInfo{Id: "test:A", Venue: "test", Symbol: "A", PriceScale: 2, TickSize: 1, LotSize: 1}}},
		{Instrument: "test:A", Epoch: 1, Seq: 2, IngestTimeNs: 6, Body: &tickwirev1.Event_Trade{Trade: &tickwirev1.Trade{Price: 100, Size: 1}}},
	}
	var buf bytes.Buffer
	w := history.NewBinaryWriter(&buf)
	for _, ev := range evs {
		if err := w.Write(ev); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "events.twh")
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	got, _ := readFile(t, Config{Format: FormatEvents, Paths: []string{path}})
	if len(got) != 2 || got[1].GetTrade().GetPrice() != 100 || got[1].Seq != 0 {
		t.Fatalf("events %v", got)
	}
}
