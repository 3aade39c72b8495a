package source_test

import (
	"testing"

	"github.com/tickwire/tickwire/internal/source"
	"github.com/tickwire/tickwire/internal/source/binance"
	"github.com/tickwire/tickwire/internal/source/coinbase"
	"github.com/tickwire/tickwire/internal/source/kraken"
	"github.com/tickwire/tickwire/internal/source/sourcetest"
	tickwirev1 "github.com/tickwire/tickwire/pkg/proto/tickwire/v1"
)

// The venues' REST reference data carries a trading status: an instrument takes it, and a
// change (a refresh) is announced as a new InstrumentInfo. The answers are written by hand in
// the shapes of the venues' documentation, with the statuses under test.
func TestReferenceStatus(t *testing.T) {
	const (
		halted = tickwirev1.InstrumentStatus_INSTRUMENT_STATUS_HALTED
		closed = tickwirev1.InstrumentStatus_INSTRUMENT_STATUS_CLOSED
	)
	bh, _ := binance.New(binance.Config{Market: binance.Spot}, nil)
	ch, _ := coinbase.New(coinbase.Config{Feed: coinbase.Exchange}, nil)
	kh, _ := kraken.New(kraken.Config{Version: 1}, nil)
	for _, tc := range []struct {
		name   string
		h      source.Handler
		symbol string
		frames []source.Frame // a stream frame defining the instrument, then REST answers
		want   tickwirev1.InstrumentStatus
	}{
		{"binance BREAK", bh, "BTCUSDT", []source.Frame{
			{Data: []byte(`{"u":1,"s":"BTCUSDT","b":"56814.01000000","B":"1.00000000","a":"56814.02000000","A":"0.50000000"}`)},
			{URL: "https://api.binance.com/api/v3/exchangeInfo", Data: []byte(`{"symbols":[{"symbol":"BTCUSDT","status":"BREAK","filters":[` +
				`{"filterType":"PRICE_FILTER","tickSize":"0.01000000"},{"filterType":"LOT_SIZE","stepSize":"0.00001000"}]}]}`)},
		}, closed},
		{"coinbase trading_disabled", ch, "BTC-USD", []source.Frame{
			{Data: []byte(`{"type":"snapshot","product_id":"BTC-USD","bids":[["60000.01","0.50000000"]],"asks":[["60000.02","0.25000000"]]}`)},
			{URL: "https://api.exchange.coinbase.com/products/BTC-USD", Data: []byte(`{"id":"BTC-USD","quote_increment":"0.01","base_increment":"0.00000001","status":"online","trading_disabled":true}`)},
		}, halted},
		{"kraken cancel_only", kh, "XBT/USD", []source.Frame{
			{Data: []byte(`[336,{"as":[["27120.00000","4.28732553","1693415327.935623"]],"bs":[["27119.90000","13.54067548","1693415328.088361"]]},"book-10","XBT/USD"]`)},
			{URL: "https://api.kraken.com/0/public/AssetPairs", Data: []byte(`{"error":[],"result":{"XXBTZUSD":{"wsname":"XBT/USD","pair_decimals":1,"lot_decimals":8,"tick_size":"0.1","status":"cancel_only"}}}`)},
		}, halted},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var col sourcetest.Collector
			for i := range tc.frames {
				if err := tc.h.Handle(&tc.frames[i], col.Emit); err != nil {
					t.Fatal(err)
				}
			}
			var statuses []tickwirev1.InstrumentStatus
			for _, ev := range col.Events {
				if info := ev.GetInfo(); info != nil {
					statuses = append(statuses, info.GetStatus())
				}
			}
			if len(statuses) != 2 || statuses[0] != tickwirev1.InstrumentStatus_INSTRUMENT_STATUS_TRADING || statuses[1] != tc.want {
				t.Errorf("infos announced with statuses %v, want TRADING then %v; %s", statuses, tc.want, tc.h.Stats().Snapshot())
			}
		})
	}
}
