package coinbase

import (
	"testing"

	"github.com/tickwire/tickwire/internal/source"
	"github.com/tickwire/tickwire/internal/source/sourcetest"
)

// BenchmarkHandleExchange replays the 2021 Exchange capture (10 products).
func BenchmarkHandleExchange(b *testing.B) {
	frames := sourcetest.Frames(sourcetest.Records(b, sourcetest.Path(b, "coinbase-exchange-2021", "ws_frames.ndjson")))
	sourcetest.BenchHandler(b, frames, func() source.Handler { h, _ := New(Config{Feed: Exchange}, nil); return h })
}

// BenchmarkHandleAdvanced replays the hand-written Advanced Trade frames.
func BenchmarkHandleAdvanced(b *testing.B) {
	frames := sourcetest.Frames(sourcetest.Records(b, "testdata/advanced_frames.ndjson"))
	sourcetest.BenchHandler(b, frames, func() source.Handler { h, _ := New(Config{Feed: Advanced}, nil); return h })
}
