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
	MaxScanWindow time.Duration `name:"candles-max-scan-window" default:"5m" group:"Candle history" help:"Longest window read from JetStream, for an interval the store cannot answer (400 scan_window past it)."`
	MaxScanEvents int           `name:"candles-max-scan-events" default:"50000" group:"Candle history" help:"Events one request may read from JetStream (400 scan_events past it)."`
	ScanRate      float64       `name:"candles-scan-rate" default:"10000" group:"Candle history" help:"Events all /api/candles requests together may read from JetStream per second (429 scan_busy past it; negative: no cap)."`
	MaxScans      int           `name:"candles-max-scans" default:"1" group:"Candle history" help:"JetStream reads for /api/candles running at once (429 scan_busy past it)."`
	MaxInFlight   int           `name:"candles-max-inflight" default:"4" group:"Candle history" help:"/api/candles requests answered at once (429 busy past it)."`
	Rate          float64       `name:"candles-rate" default:"5" group:"Candle history" help:"/api/candles requests per second per client address (429 rate_limited past it; negative: no limit)."`
	Burst         int           `name:"candles-burst" default:"20" group:"Candle history" help:"/api/candles requests one client address may make at once."`
	GlobalRate    float64       `name:"candles-global-rate" default:"50" group:"Candle history" help:"/api/candles requests per second from all clients together: bounds the feed's CPU for candles (429 busy past it; negative: no limit)."`
	GlobalBurst   int           `name:"candles-global-burst" default:"50" group:"Candle history" help:"/api/candles requests all clients together may make at once."`
	ScanTimeout   time.Duration `name:"candles-scan-timeout" default:"5s" group:"Candle history" help:"Bound on one request's JetStream reads (503 timeout past it)."`
}

func (f candleFlags) config() feed.CandlesConfig {
	return feed.CandlesConfig{StoreInterval: f.StoreInterval, StoreSpan: f.StoreSpan, MaxBars: f.MaxBars,
		MaxScanWindow: f.MaxScanWindow, MaxScanEvents: f.MaxScanEvents, ScanRate: f.ScanRate, MaxScans: f.MaxScans, MaxInFlight: f.MaxInFlight,
		Rate: f.Rate, Burst: f.Burst, GlobalRate: f.GlobalRate, GlobalBurst: f.GlobalBurst, ScanTimeout: f.ScanTimeout}
}
