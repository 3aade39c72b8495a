package binance

import (
	"testing"

	"github.com/tickwire/tickwire/internal/source"
	"github.com/tickwire/tickwire/internal/source/sourcetest"
)

var synced = []source.Frame{
	{Data: []byte(`{"stream":"btcusdt@depth@100ms","data":{"e":"depthUpdate","E":1723161255208,"s":"BTCUSDT","U":100,"u":102,"b":[["61737.63000000","1.00000000"]],"a":[["61837.64000000","1.54698000"]]}}`)},
	{URL: "https://api.binance.com/api/v3/depth?symbol=BTCUSDT&limit=1000", Data: []byte(`{"lastUpdateId":101,"bids":[["61737.63000000","2.00000000"]],"asks":[["61837.64000000","1.00000000"]]}`)},
}

// FuzzHandle feeds any frame to a spot handler whose BTCUSDT book is in sync; seeds are frames
// of the recorded captures (testdata/fuzz).
func FuzzHandle(f *testing.F) {
	f.Add([]byte(`{"stream":"btcusdt@depth@100ms","data":{"e":"depthUpdate","E":1723161255308,"s":"BTCUSDT","U":103,"u":107,"b":[["55653.87000000","0.00000000"]],"a":[]}}`))
	f.Add([]byte(`{"u":50093239212,"s":"BTCUSDT","b":"61837.63000000","B":"3.78826000","a":"61837.64000000","A":"1.54698000"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		h, _ := New(Config{Market: Spot}, nil)
		sourcetest.FuzzHandler(t, h, synced, data)
	})
}

// FuzzHandleFutures is FuzzHandle on the futures chain (pu).
func FuzzHandleFutures(f *testing.F) {
	f.Add([]byte(`{"e":"depthUpdate","E":1,"T":1,"s":"BTCUSDT","U":103,"u":107,"pu":102,"b":[],"a":[["61837.64000000","0"]]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		h, _ := New(Config{Market: Futures}, nil)
		sourcetest.FuzzHandler(t, h, synced, data)
	})
}
