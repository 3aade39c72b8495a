package loadgen

import (
	"math"
	"math/bits"
	"sync/atomic"
	"time"
)

// Latency histogram: log-linear buckets over nanoseconds, as HDR histograms do. Values below
// 2^histSubBits fall in exact buckets; above, each power of two is split into 2^histSubBits
// linear sub-buckets, so a bucket's width is at most 1/32 of its lower bound (quantiles are
// within about 3%). Values at or above 2^histMaxBits ns (about 69 s) are clamped into the last
// bucket: a run is bounded well below that.
const (
	histSubBits = 5
	histSub     = 1 << histSubBits
	histMaxBits = 36
	// histBuckets covers [0, 2^histMaxBits): 32 exact buckets, then 32 per power of two from
	// 2^5 up to 2^35.
	histBuckets = (histMaxBits - histSubBits + 1) * histSub
)

// bucketOf returns the bucket index of v (ns).
func bucketOf(v int64) int {
	if v < histSub {
		if v < 0 {
			return 0
		}
		return int(v)
	}
	if v >= 1<<histMaxBits {
		return histBuckets - 1
	}
	msb := bits.Len64(uint64(v)) - 1
	shift := msb - histSubBits
	return (shift+1)<<histSubBits + int(uint64(v)>>shift) - histSub
}

// bucketBounds returns the smallest and largest value of bucket i.
func bucketBounds(i int) (lo, hi int64) {
	if i < histSub {
		return int64(i), int64(i)
	}
	shift := i>>histSubBits - 1
	base := int64(histSub + i&(histSub-1))
	lo = base << shift
	hi = lo + int64(1)<<shift - 1
	return lo, hi
}

// Histogram counts latencies. Record is safe for one writer concurrent with Snapshot from
// other goroutines: counts are atomics, and a snapshot taken at two instants gives the
// window's distribution by difference (Sub), so the hot path never takes a lock or resets.
type Histogram struct {
	counts [histBuckets]atomic.Uint32 // cumulative; wraps after 4 G records, which Sub tolerates
	max    atomic.Int64               // largest value since the last TakeMax
}

// Record adds one value in nanoseconds.
func (h *Histogram) Record(ns int64) {
	h.counts[bucketOf(ns)].Add(1)
	if ns > h.max.Load() {
		for {
			m := h.max.Load()
			if ns <= m || h.max.CompareAndSwap(m, ns) {
				break
			}
		}
	}
}

// TakeMax returns the largest value recorded since the previous call and resets it.
func (h *Histogram) TakeMax() int64 { return h.max.Swap(0) }

// Snapshot copies the cumulative counts into s (which it resizes).
func (h *Histogram) Snapshot(s *HistSnapshot) {
	if len(s.Counts) != histBuckets {
		s.Counts = make([]uint64, histBuckets)
	}
	for i := range h.counts {
		s.Counts[i] = uint64(h.counts[i].Load())
	}
}

// HistSnapshot is a plain copy of a histogram's counts; snapshots merge by addition and a
// window is the difference of two snapshots of the same histogram.
type HistSnapshot struct {
	Counts []uint64
	Max    int64 // exact maximum when known (0: use the highest bucket's upper bound)
}

// NewHistSnapshot returns an empty snapshot.
func NewHistSnapshot() *HistSnapshot { return &HistSnapshot{Counts: make([]uint64, histBuckets)} }

// Add adds value ns once (for tests and for building references).
func (s *HistSnapshot) Add(ns int64) {
	s.Counts[bucketOf(ns)]++
	s.Max = max(s.Max, ns)
}

// Merge adds o's counts to s.
func (s *HistSnapshot) Merge(o *HistSnapshot) {
	for i, c := range o.Counts {
		s.Counts[i] += c
	}
	s.Max = max(s.Max, o.Max)
}

// MergeDiff adds (now - before) to s, per bucket, modulo 2^32 as the live counts wrap.
func (s *HistSnapshot) MergeDiff(now, before *HistSnapshot) {
	for i := range now.Counts {
		s.Counts[i] += uint64(uint32(now.Counts[i] - before.Counts[i]))
	}
}

// Total returns the number of values.
func (s *HistSnapshot) Total() uint64 {
	var n uint64
	for _, c := range s.Counts {
		n += c
	}
	return n
}

// Quantile returns the value at quantile q (0..1): the upper bound of the bucket holding the
// ceil(q*n)-th value, capped at Max when Max is known. 0 when empty.
func (s *HistSnapshot) Quantile(q float64) int64 {
	n := s.Total()
	if n == 0 {
		return 0
	}
	rank := uint64(math.Ceil(q * float64(n)))
	rank = min(max(rank, 1), n)
	var seen uint64
	for i, c := range s.Counts {
		seen += c
		if seen >= rank {
			_, hi := bucketBounds(i)
			if s.Max > 0 && hi > s.Max {
				return s.Max
			}
			return hi
		}
	}
	return s.Max
}

// MaxValue returns Max, or the upper bound of the highest non-empty bucket.
func (s *HistSnapshot) MaxValue() int64 {
	if s.Max > 0 {
		return s.Max
	}
	for i := len(s.Counts) - 1; i >= 0; i-- {
		if s.Counts[i] > 0 {
			_, hi := bucketBounds(i)
			return hi
		}
	}
	return 0
}

// Latencies is the summary of a histogram in a report.
type Latencies struct {
	Count uint64        `json:"count"`
	P50   time.Duration `json:"p50_ns"`
	P90   time.Duration `json:"p90_ns"`
	P99   time.Duration `json:"p99_ns"`
	P999  time.Duration `json:"p999_ns"`
	Max   time.Duration `json:"max_ns"`
}

// Summary returns the quantiles of s.
func (s *HistSnapshot) Summary() Latencies {
	return Latencies{
		Count: s.Total(),
		P50:   time.Duration(s.Quantile(0.50)),
		P90:   time.Duration(s.Quantile(0.90)),
		P99:   time.Duration(s.Quantile(0.99)),
		P999:  time.Duration(s.Quantile(0.999)),
		Max:   time.Duration(s.MaxValue()),
	}
}
