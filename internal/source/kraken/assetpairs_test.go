package kraken

import (
	"testing"

	"github.com/tickwire/tickwire/internal/normalize"
	"github.com/tickwire/tickwire/internal/source"
	"github.com/tickwire/tickwire/internal/source/sourcetest"
)

// assetPairsAnswer is written by hand in the shape of Kraken's documented
// GET /0/public/AssetPairs answer, with XBT/USD's values as Kraken lists them (pair_decimals 1,
// lot_decimals 8, tick_size 0.1); other fields trimmed, and one pair without a wsname.
const assetPairsAnswer = `{"error":[],"result":{` +
	`"XXBTZUSD":{"altname":"XBTUSD","wsname":"XBT/USD","aclass_base":"currency","base":"XXBT","aclass_quote":"currency","quote":"ZUSD",` +
	`"lot":"unit","cost_decimals":5,"pair_decimals":1,"lot_decimals":8,"lot_multiplier":1,"ordermin":"0.0001","costmin":"0.5","tick_size":"0.1","status":"online"},` +
	`"XETHZUSD":{"altname":"ETHUSD","wsname":"ETH/USD","pair_decimals":2,"lot_decimals":8},` +
	`"XBTUSD.d":{"altname":"XBTUSD.d","pair_decimals":1,"lot_decimals":8}}}`

// A v1 source with the AssetPairs answer (fetched live, recorded, here put before the
// python-kraken-sdk capture as a recording would hold it) serves XBT/USD with Kraken's tick
// (0.1 at the scale v1 writes, 5: 10,000) and lot (1e-8 at 8: 1); every one of the 979 updates
// is on the grid and verified against Kraken's checksum. ETH/USD, without tick_size, gets one
// unit of pair_decimals.
func TestV1AssetPairs(t *testing.T) {
	h, err := New(Config{Version: 1}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := h.ReferenceURLs(); len(got) != 1 || got[0] != DefaultREST+"/0/public/AssetPairs" {
		t.Errorf("ReferenceURLs %v", got)
	}
	var col sourcetest.Collector
	if err := h.Handle(&source.Frame{Conn: "rest", URL: DefaultREST + "/0/public/AssetPairs", Data: []byte(assetPairsAnswer)}, col.Emit); err != nil {
		t.Fatal(err)
	}
	for _, f := range sourcetest.Frames(sourcetest.Records(t, sourcetest.Path(t, "kraken-v1-book-2023-python-kraken-sdk", "orderbook-v1.json"))) {
		if err := h.Handle(&f, col.Emit); err != nil {
			t.Fatal(err)
		}
	}
	st := h.Stats().Snapshot()
	if len(st.Rejects) != 0 || st.Checks["checksum ok"] != 979 {
		t.Errorf("%s", st)
	}
	in := h.Instruments().Lookup("XBT/USD")
	if in == nil || in.PriceScale != 5 || in.SizeScale != 8 || in.Info.GetTickSize() != 10_000 || in.Info.GetLotSize() != 1 || in.Origin != source.OriginVenue {
		t.Fatalf("XBT/USD %+v", in)
	}
	if a := h.assets["ETH/USD"]; a.Tick() != "0.01" || a.Lot() != "0.00000001" {
		t.Errorf("ETH/USD grid %q %q", a.Tick(), a.Lot())
	}
	// A venue URL set alone (a test venue) fetches no reference data from the public endpoint.
	if th, _ := New(Config{Version: 1, URL: "ws://127.0.0.1:1"}, nil); len(th.ReferenceURLs()) != 0 {
		t.Errorf("test venue: ReferenceURLs %v", th.ReferenceURLs())
	}
	// An error answer is a parse reject.
	if err := h.Handle(&source.Frame{URL: DefaultREST + "/0/public/AssetPairs", Data: []byte(`{"error":["EGeneral:Too many requests"]}`)}, col.Emit); err != nil {
		t.Fatal(err)
	}
	if st := h.Stats().Snapshot(); st.Rejects[source.ReasonParse] != 1 || st.Rejects[normalize.ReasonTick] != 0 {
		t.Errorf("%s", st)
	}
}
