package loadgen

import (
	"sync"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"
)

// Latencies are counted in HDR histograms (github.com/HdrHistogram/hdrhistogram-go) over
// nanoseconds. The geometry keeps at least the precision of the log-linear histogram this
// package had before (exact below 32 ns, then 32 sub-buckets per power of two: buckets at most
// 1/32 of their lower bound wide, over [0, 2^36) ns):
//
//   - 2 significant figures: exact below 256 ns, then 128 sub-buckets per power of two, so a
//     bucket is at most 1/128 of its lower bound wide. (1 significant figure gives 16
//     sub-buckets per power of two: coarser than before.) A quantile is the upper bound of the
//     bucket holding it, as before: never below the true value, at most 1/128 (0.8 %) above it,
//     and never above the exact maximum.
//   - Range 1 ns to 2^36-1 ns (about 69 s), as before: larger values are clamped to 2^36-1
//     and negative ones to 0, so they still count; the exact maximum is kept apart.
const (
	histSigFigs = 2
	histHighest = 1<<36 - 1
)

func histClamp(ns int64) int64 { return min(max(ns, 0), histHighest) }

// Histogram records latencies; it is safe for concurrent use, and its zero value is ready.
// It holds what was recorded since the last Take, in a sparse HDR histogram (memory grows
// with the buckets in use, not with the range: a histogram per client stays small), and the
// exact maximum. Take drains it into a HistSnapshot, so two Takes bound a window.
type Histogram struct {
	mu  sync.Mutex
	h   *hdrhistogram.PackedHistogram // nil until the first Record
	max int64
}

// Record adds one value in nanoseconds.
func (h *Histogram) Record(ns int64) {
	h.mu.Lock()
	if h.h == nil {
		h.h = hdrhistogram.NewPacked(1, histHighest, histSigFigs)
	}
	_ = h.h.RecordValue(histClamp(ns)) // in range: cannot fail
	h.max = max(h.max, ns)
	h.mu.Unlock()
}

// Take adds to s what was recorded since the previous Take (its maximum included) and
// empties h.
func (h *Histogram) Take(s *HistSnapshot) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.h != nil {
		h.h.MergeInto(s.h)
		h.h.Reset()
	}
	s.Max = max(s.Max, h.max)
	h.max = 0
}

// HistSnapshot is the latencies of a window (or of several histograms merged): a dense HDR
// histogram of the geometry above and the exact maximum.
type HistSnapshot struct {
	h   *hdrhistogram.Histogram
	Max int64 // exact maximum (0 when nothing above 0 was recorded)
}

// NewHistSnapshot returns an empty snapshot.
func NewHistSnapshot() *HistSnapshot {
	return &HistSnapshot{h: hdrhistogram.New(1, histHighest, histSigFigs)}
}

// Add adds value ns once (for tests and for building references).
func (s *HistSnapshot) Add(ns int64) {
	_ = s.h.RecordValue(histClamp(ns))
	s.Max = max(s.Max, ns)
}

// Merge adds o's values to s.
func (s *HistSnapshot) Merge(o *HistSnapshot) {
	s.h.Merge(o.h)
	s.Max = max(s.Max, o.Max)
}

// Total returns the number of values.
func (s *HistSnapshot) Total() uint64 { return uint64(s.h.TotalCount()) }

// Quantile returns the value at quantile q (0..1): the upper bound of the bucket holding the
// value of rank q*n (rounded half up, HdrHistogram's rule; rank 1 at least), capped at Max.
// 0 when empty.
func (s *HistSnapshot) Quantile(q float64) int64 {
	v := s.h.ValueAtQuantile(q * 100)
	if s.Max > 0 && v > s.Max {
		return s.Max
	}
	return v
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
	m := s.Max
	if m <= 0 {
		m = s.Quantile(1)
	}
	return Latencies{
		Count: s.Total(),
		P50:   time.Duration(s.Quantile(0.50)),
		P90:   time.Duration(s.Quantile(0.90)),
		P99:   time.Duration(s.Quantile(0.99)),
		P999:  time.Duration(s.Quantile(0.999)),
		Max:   time.Duration(m),
	}
}
