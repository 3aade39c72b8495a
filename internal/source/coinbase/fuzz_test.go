package coinbase

import (
	"testing"

	"github.com/tickwire/tickwire/internal/source"
	"github.com/tickwire/tickwire/internal/source/sourcetest"
)

var (
	exchangeSnapshot = []byte(`{"type":"snapshot","product_id":"BAND-GBP","asks":[["14.8024","12.77"]],"bids":[["14.7550","1.00"]]}`)
	advancedSnapshot = []byte(`{"channel":"l2_data","client_id":"","timestamp":"2023-11-14T22:13:20.010000Z","sequence_num":1,"events":[{"type":"snapshot","product_id":"BTC-USD","updates":[{"side":"bid","event_time":"1970-01-01T00:00:00Z","price_level":"36500.01","new_quantity":"0.50000000"},{"side":"offer","event_time":"1970-01-01T00:00:00Z","price_level":"36500.50","new_quantity":"0.10000000"}]}]}`)
)

// FuzzHandleExchange feeds any frame to an Exchange-feed handler holding a book; seeds are
// frames of the recorded capture (testdata/fuzz).
func FuzzHandleExchange(f *testing.F) {
	f.Add([]byte(`{"type":"l2update","product_id":"BAND-GBP","changes":[["buy","14.7600","3.10"]],"time":"2021-04-17T16:43:37.075687Z"}`))
	f.Add([]byte(`{"type":"match","trade_id":280232,"side":"sell","size":"985","price":"14.80","product_id":"BAND-GBP","sequence":177100030,"time":"2021-04-17T16:43:37.089723Z"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		h, _ := New(Config{Feed: Exchange}, nil)
		sourcetest.FuzzHandler(t, h, []source.Frame{{Data: exchangeSnapshot}}, data)
	})
}

// FuzzHandleAdvanced feeds any frame to an Advanced Trade handler holding a book.
func FuzzHandleAdvanced(f *testing.F) {
	for _, r := range sourcetest.Records(f, "testdata/advanced_frames.ndjson") {
		f.Add(r.Msg)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		h, _ := New(Config{Feed: Advanced}, nil)
		sourcetest.FuzzHandler(t, h, []source.Frame{{Data: advancedSnapshot}}, data)
	})
}
