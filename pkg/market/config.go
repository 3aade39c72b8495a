package market

import (
	"fmt"
	"slices"
)

// Config is the shape of an instrument's state. The zero value means the defaults.
type Config struct {
	// Depths are the book depths offered to subscribers, per side. Each is its own stream, so a
	// delta is encoded once per depth rather than once per subscriber. Default {10, 50}.
	Depths []uint32
	// TradeHistory is how many recent trades are kept. Default 100.
	TradeHistory int
	// CandleIntervals are the candle lengths in seconds. Default {1, 60}.
	CandleIntervals []uint32
	// CandleHistory is how many bars of each interval are kept. Default 300 (5 min of 1 s bars).
	CandleHistory int
}

// MaxDepth bounds Depths: deeper books cost more per update than a live stream should carry.
const MaxDepth = 1000

// WithDefaults returns c with every unset field at its default, sorted and de-duplicated.
func (c Config) WithDefaults() Config {
	if len(c.Depths) == 0 {
		c.Depths = []uint32{10, 50}
	}
	if c.TradeHistory == 0 {
		c.TradeHistory = 100
	}
	if len(c.CandleIntervals) == 0 {
		c.CandleIntervals = []uint32{1, 60}
	}
	if c.CandleHistory == 0 {
		c.CandleHistory = 300
	}
	c.Depths = slices.Compact(slices.Sorted(slices.Values(c.Depths)))
	c.CandleIntervals = slices.Compact(slices.Sorted(slices.Values(c.CandleIntervals)))
	return c
}

// Validate reports the first invalid field of c (after defaults).
func (c Config) Validate() error {
	c = c.WithDefaults()
	for _, d := range c.Depths {
		if d < 1 || d > MaxDepth {
			return fmt.Errorf("market: book depth %d outside 1..%d", d, MaxDepth)
		}
	}
	if c.TradeHistory < 1 || c.TradeHistory > 100_000 {
		return fmt.Errorf("market: trade history %d outside 1..100000", c.TradeHistory)
	}
	for _, iv := range c.CandleIntervals {
		if iv < 1 || iv > 86400 || 86400%iv != 0 {
			return fmt.Errorf("market: candle interval %ds must divide a day", iv)
		}
	}
	if c.CandleHistory < 1 || c.CandleHistory > 100_000 {
		return fmt.Errorf("market: candle history %d outside 1..100000", c.CandleHistory)
	}
	return nil
}

// DepthIndex returns the index in c.Depths of the depth granted for a requested depth: the
// smallest offered depth at least as deep, or the deepest; 0 asks for the smallest. c must have
// its defaults applied.
func (c Config) DepthIndex(requested uint32) int {
	for i, d := range c.Depths {
		if d >= requested {
			return i
		}
	}
	return len(c.Depths) - 1
}

// ChecksumDepth returns how many levels per side the checksum covers for a book of depth d.
func ChecksumDepth(d uint32) int {
	return min(int(d), bookChecksumDepth)
}
