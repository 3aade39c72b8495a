package main

import (
	"time"

	"github.com/tickwire/tickwire/internal/feed"
)

// candleFlags bound what GET /api/candles may cost (internal/feed/candles.go; docs/OPERATIONS.md,
// "Candle history"). The defaults are feed.CandlesConfig's (TestCandleFlagDefaults).
type candleFlags struct {
	StoreInterval int           `name:"candle-store-interval" default:"60" group:"Candle history" help:"Bar length of the feed's candle store, seconds (must divide a day; negative: no store). Intervals that are a multiple of it are answered from the store, without reading JetStream."`
	StoreSpan     time.Duration `name:"candle-store-span" default:"24h" group:"Candle history" help:"Event time of bars the candle store keeps per instrument (at most span/interval bars of 80 B each). Set it to the stream's max age: older bars are not served."`
	MaxBars       int           `name:"candles-max-bars" default:"10000" group:"Candle history" help:"Bars one /api/candles request may ask for (400 too_many_bars past it)."`
	MaxScanWindow time.Duration `name:"candles-max-scan-window" default:"15m" group:"Candle history" help:"Longest window read from JetStream, for an interval the store cannot answer (400 scan_window past it)."`
	MaxScanEvents int           `name:"candles-max-scan-events" default:"500000" group:"Candle history" help:"Events one request may read from JetStream (400 scan_events past it)."`
	MaxScans      int           `name:"candles-max-scans" default:"1" group:"Candle history" help:"JetStream reads for /api/candles running at once (429 scan_busy past it)."`
	MaxInFlight   int           `name:"candles-max-inflight" default:"4" group:"Candle history" help:"/api/candles requests answered at once (429 busy past it)."`
	Rate          float64       `name:"candles-rate" default:"5" group:"Candle history" help:"/api/candles requests per second per client address (429 rate_limited past it; negative: no limit)."`
	Burst         int           `name:"candles-burst" default:"20" group:"Candle history" help:"/api/candles requests one client address may make at once."`
	ScanTimeout   time.Duration `name:"candles-scan-timeout" default:"5s" group:"Candle history" help:"Bound on one request's JetStream reads (503 timeout past it)."`
}

func (f candleFlags) config() feed.CandlesConfig {
	return feed.CandlesConfig{StoreInterval: f.StoreInterval, StoreSpan: f.StoreSpan, MaxBars: f.MaxBars,
		MaxScanWindow: f.MaxScanWindow, MaxScanEvents: f.MaxScanEvents, MaxScans: f.MaxScans, MaxInFlight: f.MaxInFlight,
		Rate: f.Rate, Burst: f.Burst, ScanTimeout: f.ScanTimeout}
}
