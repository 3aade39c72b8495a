package kraken

import (
	"fmt"
	"testing"

	"github.com/tickwire/tickwire/internal/source"
	"github.com/tickwire/tickwire/internal/source/sourcetest"
)

// BenchmarkHandleV1 replays the 2021 v1 capture (10 pairs, book-1000, checksum verified on
// every update).
func BenchmarkHandleV1(b *testing.B) {
	frames := sourcetest.Frames(sourcetest.Records(b, sourcetest.Path(b, "kraken-v1-2021-cryptofeed", "ws_frames.ndjson")))
	sourcetest.BenchHandler(b, frames, func() source.Handler { h, _ := New(Config{Version: 1}, nil); return h })
}

// BenchmarkHandleV2 replays v2 frames: a 10-level snapshot and 1000 two-level updates, each
// with its checksum (no v2 recording exists; the frames are built from the documented form).
func BenchmarkHandleV2(b *testing.B) {
	frames := []source.Frame{{Data: []byte(`{"channel":"book","type":"snapshot","data":[{"symbol":"BTC/USD","bids":[{"price":45283.5,"qty":0.10000000},{"price":45283.4,"qty":1.54582015},{"price":45282.1,"qty":0.10000000},{"price":45281.0,"qty":0.10000000},{"price":45280.3,"qty":1.54592586},{"price":45279.0,"qty":0.07990000},{"price":45277.6,"qty":0.03310103},{"price":45277.5,"qty":0.30000000},{"price":45277.3,"qty":1.54602737},{"price":45276.6,"qty":0.15445238}],"asks":[{"price":45285.2,"qty":0.00100000},{"price":45286.4,"qty":1.54571953},{"price":45286.6,"qty":1.54571109},{"price":45289.6,"qty":1.54560911},{"price":45290.2,"qty":0.15890660},{"price":45291.8,"qty":1.54553491},{"price":45294.7,"qty":0.04454749},{"price":45296.1,"qty":0.35380000},{"price":45297.5,"qty":0.09945542},{"price":45299.5,"qty":0.18772827}],"checksum":3310070434}]}`)}}
	h, _ := New(Config{Version: 2}, nil)
	var col sourcetest.Collector
	if err := h.Handle(&frames[0], col.Emit); err != nil || len(col.Events) != 2 {
		b.Fatalf("snapshot: %v %v", err, h.Stats().Snapshot())
	}
	bk, prec, in := h.BookOf("BTC/USD")
	for i := range 1000 {
		size := fmt.Sprintf("0.%08d", 10000000+i)
		price := int64(452835)
		bk.Set(0, price, int64(10000000+i))
		sum, _ := Checksum(bk.Bids(), bk.Asks(), in.PriceScale, in.SizeScale, prec)
		frames = append(frames, source.Frame{Data: []byte(fmt.Sprintf(`{"channel":"book","type":"update","data":[{"symbol":"BTC/USD","bids":[{"price":45283.5,"qty":%s}],"asks":[],"checksum":%d,"timestamp":"2023-10-06T17:35:55.440295Z"}]}`, size, sum))})
	}
	sourcetest.BenchHandler(b, frames, func() source.Handler { h, _ := New(Config{Version: 2}, nil); return h })
}
