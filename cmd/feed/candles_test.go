package main

import (
	"testing"
	"time"

	"github.com/alecthomas/kong"

	"github.com/tickwire/tickwire/internal/feed"
)

func parseCandleFlags(t *testing.T, args ...string) candleFlags {
	t.Helper()
	var f candleFlags
	p, err := kong.New(&f, kong.Name("feed"), kong.Exit(func(int) { t.Fatal("kong exit") }))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Parse(args); err != nil {
		t.Fatal(err)
	}
	return f
}

// TestCandleFlagDefaults: the flags' defaults are the feed's own, so a default run and a
// zero feed.Config bound /api/candles alike.
func TestCandleFlagDefaults(t *testing.T) {
	got := parseCandleFlags(t).config()
	want := feed.CandlesConfig{StoreInterval: 60, StoreSpan: 24 * time.Hour, MaxBars: 10_000, MaxScanWindow: 5 * time.Minute,
		MaxScanEvents: 50_000, ScanRate: 10_000, MaxScans: 1, MaxInFlight: 4, Rate: 5, Burst: 20, GlobalRate: 50, GlobalBurst: 50,
		ScanTimeout: 5 * time.Second}
	if got != want {
		t.Fatalf("flag defaults %+v\nwant %+v", got, want)
	}
	if err := (feed.Config{Candles: got}).Validate(); err != nil {
		t.Fatal(err)
	}
}

// TestCandleFlags: each flag reaches the feed's config, and a bad store interval is refused at
// start.
func TestCandleFlags(t *testing.T) {
	got := parseCandleFlags(t, "--candle-store-interval=300", "--candle-store-span=48h", "--candles-max-bars=500",
		"--candles-max-scan-window=5m", "--candles-max-scan-events=1000", "--candles-scan-rate=-1", "--candles-max-scans=2", "--candles-max-inflight=8",
		"--candles-rate=-1", "--candles-burst=3", "--candles-global-rate=7", "--candles-global-burst=9",
		"--candles-scan-timeout=2s").config()
	want := feed.CandlesConfig{StoreInterval: 300, StoreSpan: 48 * time.Hour, MaxBars: 500, MaxScanWindow: 5 * time.Minute,
		MaxScanEvents: 1000, ScanRate: -1, MaxScans: 2, MaxInFlight: 8, Rate: -1, Burst: 3, GlobalRate: 7, GlobalBurst: 9,
		ScanTimeout: 2 * time.Second}
	if got != want {
		t.Fatalf("%+v\nwant %+v", got, want)
	}
	bad := parseCandleFlags(t, "--candle-store-interval=7").config()
	if err := (feed.Config{Candles: bad}).Validate(); err == nil {
		t.Fatal("a store interval that does not divide a day was accepted")
	}
}
