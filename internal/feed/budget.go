package feed

import (
	"sync"
	"time"
)

// snapBudget is one connection's budget for the snapshots it asks for (Subscribe, Resync): a
// token bucket in encoded bytes, holding at most burst and refilling at rate bytes/s, full at
// its first use. Snapshots are charged their encoded size when queued, so the cost a client can
// cause is what it makes us encode and write, whatever its commands cost. Shared by the owners,
// which charge it from their goroutines.
type snapBudget struct {
	mu sync.Mutex
	// guarded by mu:
	tokens float64   // bytes; below zero after a snapshot larger than the burst
	last   time.Time // when tokens was brought up to date; zero: never used (full)
}

// budgetLimits are a snapBudget's parameters (Config.SnapshotRate, SnapshotBurst).
type budgetLimits struct {
	rate  float64 // bytes per second; negative: no budget
	burst float64 // bytes
}

func (c Config) snapshotLimits() budgetLimits {
	return budgetLimits{rate: float64(c.SnapshotRate), burst: float64(c.SnapshotBurst)}
}

// refillLocked brings tokens up to now. b.mu must be held.
func (b *snapBudget) refillLocked(now time.Time, l budgetLimits) {
	if b.last.IsZero() {
		b.tokens, b.last = l.burst, now
		return
	}
	if dt := now.Sub(b.last); dt > 0 {
		b.tokens = min(l.burst, b.tokens+dt.Seconds()*l.rate)
		b.last = now
	}
}

// take charges n bytes if the bucket holds them, or if it is full (so that a snapshot larger
// than the burst is not refused for ever: it leaves the bucket that much below zero), and
// reports whether it did.
func (b *snapBudget) take(now time.Time, n int, l budgetLimits) bool {
	if l.rate < 0 {
		return true
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.refillLocked(now, l)
	if float64(n) <= b.tokens || b.tokens >= l.burst {
		b.tokens -= float64(n)
		return true
	}
	return false
}

// holds reports whether take(now, n) would succeed, without charging anything.
func (b *snapBudget) holds(now time.Time, n int, l budgetLimits) bool {
	if l.rate < 0 {
		return true
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.refillLocked(now, l)
	return float64(n) <= b.tokens || b.tokens >= l.burst
}
