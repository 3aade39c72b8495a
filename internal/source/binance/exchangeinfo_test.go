package binance

import (
	"testing"

	"github.com/tickwire/tickwire/internal/normalize"
	"github.com/tickwire/tickwire/internal/source"
	"github.com/tickwire/tickwire/internal/source/sourcetest"
)

// exchangeInfo, written by hand in the shape of Binance's documented answers (spot
// /api/v3/exchangeInfo; futures /fapi/v1/exchangeInfo with pricePrecision and
// quantityPrecision), gives an instrument its scales, tick and lot; arriving after the
// instrument was defined (a refresh), it updates the grid and announces the InstrumentInfo
// again. A price off the grid is then rejected and counted.
func TestExchangeInfo(t *testing.T) {
	const spotInfo = `{"timezone":"UTC","serverTime":1,"rateLimits":[],"symbols":[{"symbol":"BTCUSDT","status":"TRADING","baseAsset":"BTC","quoteAsset":"USDT",` +
		`"filters":[{"filterType":"PRICE_FILTER","minPrice":"0.01000000","maxPrice":"1000000.00000000","tickSize":"0.01000000"},` +
		`{"filterType":"LOT_SIZE","minQty":"0.00001000","maxQty":"9000.00000000","stepSize":"0.00001000"}]}]}`
	h, err := New(Config{Market: Spot}, nil)
	if err != nil {
		t.Fatal(err)
	}
	var col sourcetest.Collector
	handle := func(url, data string) {
		t.Helper()
		if err := h.Handle(&source.Frame{Conn: "1", URL: url, Data: []byte(data)}, col.Emit); err != nil {
			t.Fatal(err)
		}
	}
	// Defined first by a bookTicker (inferred: scales 8, tick and lot not known).
	handle("", `{"u":400900217,"s":"BTCUSDT","b":"56814.01000000","B":"1.00000000","a":"56814.02000000","A":"0.50000000"}`)
	in := h.Instruments().Lookup("BTCUSDT")
	if in.Info.GetTickSize() != 0 || in.Info.GetLotSize() != 0 {
		t.Fatalf("inferred info %v", in.Info)
	}
	handle("https://api.binance.com/api/v3/exchangeInfo?symbols=%5B%22BTCUSDT%22%5D", spotInfo)
	in = h.Instruments().Lookup("BTCUSDT")
	if in.Info.GetTickSize() != 1_000_000 || in.Info.GetLotSize() != 1_000 {
		t.Fatalf("after exchangeInfo: %v", in.Info)
	}
	var announced int
	for _, ev := range col.Events {
		if info := ev.GetInfo(); info != nil && info.GetTickSize() == 1_000_000 {
			announced++
		}
	}
	if announced != 1 {
		t.Errorf("changed info announced %d times, want 1", announced)
	}
	// 56814.015 is exact at scale 8 but off the 0.01 grid.
	handle("", `{"u":400900218,"s":"BTCUSDT","b":"56814.01500000","B":"1.00000000","a":"56814.02000000","A":"0.50000000"}`)
	if st := h.Stats().Snapshot(); st.Rejects[normalize.ReasonTick] != 1 {
		t.Errorf("off-grid price: %s", st)
	}

	// Futures: scales from pricePrecision/quantityPrecision where larger than the tick's decimals.
	fh, _ := New(Config{Market: Futures}, nil)
	const futInfo = `{"timezone":"UTC","serverTime":1,"symbols":[{"symbol":"BTCUSDT","pair":"BTCUSDT","contractType":"PERPETUAL","status":"TRADING",` +
		`"baseAsset":"BTC","quoteAsset":"USDT","pricePrecision":2,"quantityPrecision":3,` +
		`"filters":[{"filterType":"PRICE_FILTER","minPrice":"556.80","maxPrice":"4529764","tickSize":"0.10"},{"filterType":"LOT_SIZE","minQty":"0.001","maxQty":"1000","stepSize":"0.001"}]}]}`
	if err := fh.Handle(&source.Frame{URL: "https://fapi.binance.com/fapi/v1/exchangeInfo", Data: []byte(futInfo)}, col.Emit); err != nil {
		t.Fatal(err)
	}
	if err := fh.Handle(&source.Frame{Data: []byte(`{"e":"bookTicker","u":1,"s":"BTCUSDT","b":"56814.1","B":"1.000","a":"56814.2","A":"0.5","T":1,"E":1}`)}, col.Emit); err != nil {
		t.Fatal(err)
	}
	fin := fh.Instruments().Lookup("BTCUSDT")
	if fin == nil || fin.PriceScale != 2 || fin.SizeScale != 3 || fin.Info.GetTickSize() != 10 || fin.Info.GetLotSize() != 1 {
		t.Errorf("futures instrument %+v", fin)
	}
	if st := fh.Stats().Snapshot(); len(st.Rejects) != 0 {
		t.Errorf("futures: %s", st)
	}
	// A malformed answer is a parse reject, not an unknown channel.
	if err := fh.Handle(&source.Frame{URL: "https://fapi.binance.com/fapi/v1/exchangeInfo", Data: []byte(`{"code":-1003}`)}, col.Emit); err != nil {
		t.Fatal(err)
	}
	if st := fh.Stats().Snapshot(); st.Rejects[source.ReasonParse] != 1 {
		t.Errorf("malformed exchangeInfo: %s", st)
	}
}
