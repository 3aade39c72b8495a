package coinbase

import (
	"bytes"
	"context"
	"testing"

	"github.com/tickwire/tickwire/internal/normalize"
	"github.com/tickwire/tickwire/internal/source"
	"github.com/tickwire/tickwire/internal/source/capture"
	"github.com/tickwire/tickwire/internal/source/sourcetest"
)

// Product answers written by hand in the shapes of Coinbase's documented REST answers
// (Advanced Trade GET /api/v3/brokerage/market/products/{id}, Exchange GET /products/{id});
// fields not read are trimmed. The ETH-USD increments are made up (0.05, 0.001) so that a
// value can be exact at the scale and off the grid.
const (
	advProduct = `{"product_id":"ETH-USD","price":"2000.00","base_increment":"0.001","quote_increment":"0.01","quote_min_size":"1",` +
		`"base_min_size":"0.001","status":"online","trading_disabled":false,"product_type":"SPOT","price_increment":"0.05"}`
	exProduct = `{"id":"BTC-USD","base_currency":"BTC","quote_currency":"USD","quote_increment":"0.01000000","base_increment":"0.00000001",` +
		`"display_name":"BTC/USD","min_market_funds":"1","status":"online","status_message":"","auction_mode":false}`
	advURL = "https://api.coinbase.com/api/v3/brokerage/market/products/ETH-USD"
	exURL  = "https://api.exchange.coinbase.com/products/BTC-USD"
)

func TestProductReferenceData(t *testing.T) {
	h, err := New(Config{Feed: Advanced, Symbols: []string{"ETH-USD", "BTC-USD"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := h.ReferenceURLs(); len(got) != 2 || got[0] != advURL {
		t.Errorf("ReferenceURLs %v", got)
	}
	var col sourcetest.Collector
	handle := func(url, data string) {
		t.Helper()
		if err := h.Handle(&source.Frame{Conn: "1", URL: url, Data: []byte(data)}, col.Emit); err != nil {
			t.Fatal(err)
		}
	}
	handle(advURL, advProduct)
	handle("", `{"channel":"l2_data","client_id":"","timestamp":"2023-02-09T20:32:50.714964855Z","sequence_num":0,"events":[{"type":"snapshot","product_id":"ETH-USD","updates":[`+
		`{"side":"bid","event_time":"1970-01-01T00:00:00Z","price_level":"1999.95","new_quantity":"2.5"},{"side":"offer","event_time":"1970-01-01T00:00:00Z","price_level":"2000.05","new_quantity":"0.001"}]}]}`)
	in := h.Instruments().Lookup("ETH-USD")
	if in == nil || in.PriceScale != 2 || in.SizeScale != 3 || in.Info.GetTickSize() != 5 || in.Info.GetLotSize() != 1 || in.Origin != source.OriginVenue {
		t.Fatalf("instrument %+v", in)
	}
	// 2000.02 is exact at scale 2 but off the 0.05 grid: rejected, counted, the book resyncs.
	handle("", `{"channel":"l2_data","client_id":"","timestamp":"2023-02-09T20:32:51Z","sequence_num":1,"events":[{"type":"update","product_id":"ETH-USD","updates":[`+
		`{"side":"bid","event_time":"2023-02-09T20:32:51Z","price_level":"2000.02","new_quantity":"1"}]}]}`)
	if st := h.Stats().Snapshot(); st.Rejects[normalize.ReasonTick] != 1 || len(h.TakeResyncs()) != 1 {
		t.Errorf("off grid: %s", st)
	}
	// A product without its increments is a parse reject.
	handle(advURL, `{"product_id":"ETH-USD","status":"online"}`)
	if st := h.Stats().Snapshot(); st.Rejects[source.ReasonParse] != 1 {
		t.Errorf("malformed product: %s", st)
	}
}

// An Exchange capture recorded with its product answer (a line with its url, as --record
// writes it) replays with the venue's tick and lot: BTC-USD's quote_increment 0.01000000 gives
// price scale 8 and tick 1,000,000. An instrument defined before the answer gets the grid and
// its InstrumentInfo again.
func TestProductReplay(t *testing.T) {
	lines := `{"local_ts_ns":1,"conn":"rest","url":"` + exURL + `","msg":` + exProduct + `}
{"local_ts_ns":2,"conn":"1","msg":{"type":"snapshot","product_id":"BTC-USD","bids":[["60000.01","0.5"]],"asks":[["60000.02","0.25000000"]]}}
{"local_ts_ns":3,"conn":"1","msg":{"type":"l2update","product_id":"BTC-USD","time":"2021-04-17T16:43:37.510745Z","changes":[["buy","60000.015","1"]]}}
`
	h, _ := New(Config{Feed: Exchange}, nil)
	var col sourcetest.Collector
	if err := capture.New(h, capture.NewLineReader(bytes.NewBufferString(lines)), capture.Config{}, nil).Run(context.Background(), col.Emit); err != nil {
		t.Fatal(err)
	}
	in := h.Instruments().Lookup("BTC-USD")
	if in == nil || in.PriceScale != 8 || in.Info.GetTickSize() != 1_000_000 || in.Info.GetLotSize() != 1 {
		t.Fatalf("replayed instrument %+v", in)
	}
	if st := h.Stats().Snapshot(); st.Rejects[normalize.ReasonTick] != 1 {
		t.Errorf("replay: %s", st)
	}

	// The answer after the instrument was defined (inferred, tick 0): the grid is set and
	// announced.
	h2, _ := New(Config{Feed: Exchange}, nil)
	var col2 sourcetest.Collector
	_ = h2.Handle(&source.Frame{Conn: "1", Data: []byte(`{"type":"snapshot","product_id":"BTC-USD","bids":[["60000.01","0.5"]],"asks":[["60000.02","0.25000000"]]}`)}, col2.Emit)
	_ = h2.Handle(&source.Frame{Conn: "rest", URL: exURL, Data: []byte(`{"id":"BTC-USD","quote_increment":"0.01","base_increment":"0.00000001"}`)}, col2.Emit)
	var infos []int64
	for _, ev := range col2.Events {
		if info := ev.GetInfo(); info != nil {
			infos = append(infos, info.GetTickSize())
		}
	}
	if len(infos) != 2 || infos[0] != 0 || infos[1] != 1 {
		t.Errorf("infos announced, tick sizes %v: want 0 then 1", infos)
	}
}
