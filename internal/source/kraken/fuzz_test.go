package kraken

import (
	"testing"

	"github.com/tickwire/tickwire/internal/source"
	"github.com/tickwire/tickwire/internal/source/sourcetest"
)

var (
	v1Snapshot = []byte(`[336,{"as":[["27120.00000","4.28732553","1693415327.935623"],["27127.30000","0.13827025","1693415325.205490"]],"bs":[["27119.90000","13.54067548","1693415328.088361"],["27119.30000","0.03686228","1693415326.213734"]]},"book-10","XBT/USD"]`)
	v2Snapshot = []byte(`{"channel":"book","type":"snapshot","data":[{"symbol":"BTC/USD","bids":[{"price":45283.5,"qty":0.10000000}],"asks":[{"price":45285.2,"qty":0.00100000}],"checksum":0}]}`)
)

// FuzzHandleV1 feeds any frame to a v1 handler holding a book; seeds are frames of the
// recorded captures (testdata/fuzz).
func FuzzHandleV1(f *testing.F) {
	f.Add(v1Snapshot)
	f.Add([]byte(`[336,{"a":[["27120.00000","0.00000000","1693415330.1"]],"c":"123"},"book-10","XBT/USD"]`))
	f.Fuzz(func(t *testing.T, data []byte) {
		h, _ := New(Config{Version: 1}, nil)
		sourcetest.FuzzHandler(t, h, []source.Frame{{Data: v1Snapshot}}, data)
	})
}

// FuzzHandleV2 feeds any frame to a v2 handler.
func FuzzHandleV2(f *testing.F) {
	f.Add(v2Snapshot)
	f.Add([]byte(`{"channel":"trade","type":"update","data":[{"symbol":"BTC/USD","side":"sell","price":45283.5,"qty":0.5,"ord_type":"market","trade_id":4665906,"timestamp":"2023-09-25T07:49:37.708706Z"}]}`))
	f.Add([]byte(`{"channel":"ticker","type":"snapshot","data":[{"symbol":"BTC/USD","bid":45283.5,"bid_qty":0.1,"ask":45285.2,"ask_qty":0.001,"last":45284,"volume":1.5}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		h, _ := New(Config{Version: 2}, nil)
		sourcetest.FuzzHandler(t, h, []source.Frame{{Data: v2Snapshot}}, data)
	})
}
