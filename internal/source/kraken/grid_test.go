package kraken

import (
	"fmt"
	"testing"

	"github.com/tickwire/tickwire/internal/normalize"
	"github.com/tickwire/tickwire/internal/source"
	"github.com/tickwire/tickwire/internal/source/sourcetest"
)

// The v2 instrument channel publishes each pair's grid (price_increment, qty_increment): the
// InstrumentInfo carries it, and a book level off it is rejected and counted, and the book
// waits for a fresh snapshot. Without the channel, tick and lot are not known (0). The
// frames are written by hand in the shapes of Kraken's v2 documentation (instrument
// snapshot, book snapshot and update; no checksum field, so none is verified here); the
// pair's increment 0.05 at precision 2 is made up, so that a price can be exact at the scale
// and still off the grid.
func TestV2InstrumentGrid(t *testing.T) {
	instrument := `{"channel":"instrument","type":"snapshot","data":{"assets":[],"pairs":[{"symbol":"BTC/USD","base":"BTC","quote":"USD","status":"online","qty_precision":8,"qty_increment":0.00000001,"price_precision":2,"cost_precision":5,"marginable":true,"has_index":true,"cost_min":0.5,"tick_size":0.05,"price_increment":0.05,"qty_min":0.0001}]}}`
	snap := `{"channel":"book","type":"snapshot","data":[{"symbol":"%s","bids":[{"price":45283.5,"qty":0.1}],"asks":[{"price":45285.2,"qty":0.00100000}]}]}`
	for _, tc := range []struct {
		name       string
		frames     []string
		tick, lot  int64
		rejectTick int64
	}{
		{"instrument channel", []string{instrument, fmt.Sprintf(snap, "BTC/USD"),
			`{"channel":"book","type":"update","data":[{"symbol":"BTC/USD","bids":[{"price":45283.52,"qty":1}],"asks":[],"timestamp":"2023-10-06T17:35:55.440295Z"}]}`},
			5, 1, 1},
		{"no instrument channel", []string{fmt.Sprintf(snap, "BTC/USD"),
			`{"channel":"book","type":"update","data":[{"symbol":"BTC/USD","bids":[{"price":45283.6,"qty":1}],"asks":[],"timestamp":"2023-10-06T17:35:55.440295Z"}]}`},
			0, 0, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, err := New(Config{Version: 2}, nil)
			if err != nil {
				t.Fatal(err)
			}
			var col sourcetest.Collector
			for i, d := range tc.frames {
				if err := h.Handle(&source.Frame{Conn: "1", N: int64(i + 1), Data: []byte(d)}, col.Emit); err != nil {
					t.Fatal(err)
				}
			}
			in := h.Instruments().Lookup("BTC/USD")
			if in == nil {
				t.Fatal("no instrument")
			}
			if in.Info.GetTickSize() != tc.tick || in.Info.GetLotSize() != tc.lot {
				t.Errorf("tick %d lot %d (scales %d/%d, %s), want %d and %d", in.Info.GetTickSize(), in.Info.GetLotSize(),
					in.PriceScale, in.SizeScale, in.Origin, tc.tick, tc.lot)
			}
			st := h.Stats().Snapshot()
			if st.Rejects[normalize.ReasonTick] != tc.rejectTick {
				t.Errorf("tick rejects %d, want %d; %s", st.Rejects[normalize.ReasonTick], tc.rejectTick, st)
			}
			b, _, _ := h.BookOf("BTC/USD")
			if synced := tc.rejectTick == 0; b.Synced != synced {
				t.Errorf("book synced %t, want %t", b.Synced, synced)
			}
		})
	}
}
