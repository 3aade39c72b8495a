package binance

import (
	"testing"

	"github.com/tickwire/tickwire/internal/source"
	"github.com/tickwire/tickwire/internal/source/sourcetest"
)

// BenchmarkHandleSpot replays the 2024 BTCUSDT capture: depth diffs joined to the inline REST
// snapshot (1000x1000), bookTicker and trades.
func BenchmarkHandleSpot(b *testing.B) {
	frames := sourcetest.Frames(sourcetest.Records(b, sourcetest.Path(b, "binance-spot-2024-hftbacktest", "btcusdt_first60s.ndjson")))
	sourcetest.BenchHandler(b, frames, func() source.Handler { h, _ := New(Config{Market: Spot}, nil); return h })
}
