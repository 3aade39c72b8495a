package loadgen

import (
	"math"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"
)

// withinPrecision reports whether got is what hist.go documents for a true value want: the
// upper bound of want's bucket, never below it, at most 1/128 above (exact below 256 ns).
func withinPrecision(got, want int64) bool {
	return got >= want && float64(got-want) <= float64(want)/128
}

func TestPrecisionOverTheRange(t *testing.T) {
	for v := int64(0); v < 1<<36; v = v*21/20 + 1 {
		s := NewHistSnapshot()
		s.Add(v)
		s.Add(2 * v) // Max above v: the median is the bucket's bound, not capped
		if got := s.Quantile(0.5); !withinPrecision(got, v) || (v < 256 && got != v) {
			t.Fatalf("median of {%d, %d} = %d", v, 2*v, got)
		}
	}
}

func TestQuantilesAgainstSortedReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, dist := range []struct {
		name string
		gen  func() int64
	}{
		{"uniform 0-10ms", func() int64 { return rng.Int64N(10_000_000) }},
		{"lognormal around 1ms", func() int64 { return int64(math.Exp(rng.NormFloat64()*1.5) * 1e6) }},
		{"small exact", func() int64 { return rng.Int64N(20) }},
	} {
		t.Run(dist.name, func(t *testing.T) {
			var h Histogram
			var ref []int64
			for range 100_000 {
				v := dist.gen()
				h.Record(v)
				ref = append(ref, v)
			}
			slices.Sort(ref)
			s := NewHistSnapshot()
			h.Take(s)
			if s.Total() != uint64(len(ref)) || s.Max != ref[len(ref)-1] {
				t.Fatalf("total %d max %d, want %d %d", s.Total(), s.Max, len(ref), ref[len(ref)-1])
			}
			for _, q := range []float64{0.5, 0.9, 0.99, 0.999, 1} {
				want := ref[int(math.Ceil(q*float64(len(ref))))-1] // q*n is whole here: every rank rule agrees
				if got := s.Quantile(q); !withinPrecision(got, want) {
					t.Errorf("q%.3f = %d, reference %d", q, got, want)
				}
			}
			sum := s.Summary()
			if sum.Count != uint64(len(ref)) || sum.Max != time.Duration(ref[len(ref)-1]) || sum.P50 > sum.P90 || sum.P90 > sum.P99 || sum.P99 > sum.P999 || sum.P999 > sum.Max {
				t.Errorf("summary %+v", sum)
			}
		})
	}
}

func TestOutOfRangeValuesCount(t *testing.T) {
	var h Histogram
	h.Record(-5)
	h.Record(100 * int64(time.Second)) // above the 2^36 ns range: clamped, max exact
	s := NewHistSnapshot()
	h.Take(s)
	if s.Total() != 2 || s.Quantile(0.5) != 0 || s.Max != 100*int64(time.Second) || s.Summary().Max != 100*time.Second {
		t.Fatalf("total %d p50 %d max %d", s.Total(), s.Quantile(0.5), s.Max)
	}
	if got := s.Quantile(1); got != histHighest {
		t.Fatalf("clamped value's quantile %d, want %d", got, int64(histHighest))
	}
}

func TestTakeWindowsAndMerge(t *testing.T) {
	var a, b Histogram
	for i := range 1000 {
		a.Record(int64(i) * 1000)
	}
	a.Take(NewHistSnapshot()) // the window starts here
	for i := range 500 {
		a.Record(int64(i) * 7)
		b.Record(5_000_000)
	}
	win := NewHistSnapshot()
	a.Take(win)
	if win.Total() != 500 || win.Max != 499*7 || !withinPrecision(win.Quantile(1), 499*7) {
		t.Fatalf("window: total %d max %d q1 %d", win.Total(), win.Max, win.Quantile(1))
	}
	win.Merge(func() *HistSnapshot { s := NewHistSnapshot(); b.Take(s); return s }())
	if win.Total() != 1000 || win.Max != 5_000_000 || !withinPrecision(win.Quantile(0.5), 499*7) || !withinPrecision(win.Quantile(0.51), 5_000_000) {
		t.Fatalf("merged: total %d p50 %d p51 %d", win.Total(), win.Quantile(0.5), win.Quantile(0.51))
	}
	// Taking empties: the next window is empty.
	next := NewHistSnapshot()
	a.Take(next)
	b.Take(next)
	if next.Total() != 0 || next.Max != 0 || next.Quantile(0.5) != 0 || next.Summary() != (Latencies{}) {
		t.Fatalf("empty window: total %d max %d summary %+v", next.Total(), next.Max, next.Summary())
	}
}

// Record from several goroutines while another takes windows: nothing is lost or counted twice.
func TestRecordConcurrentWithTake(t *testing.T) {
	var h Histogram
	var wg sync.WaitGroup
	const writers, each = 4, 20_000
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				h.Record(int64(w*each + i))
			}
		}()
	}
	total := NewHistSnapshot()
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	for running := true; running; {
		select {
		case <-done:
			running = false
		default:
		}
		w := NewHistSnapshot()
		h.Take(w)
		total.Merge(w)
	}
	if total.Total() != writers*each || total.Max != writers*each-1 {
		t.Fatalf("total %d max %d", total.Total(), total.Max)
	}
}

func BenchmarkHistogramRecord(b *testing.B) {
	var h Histogram
	for i := range b.N {
		h.Record(int64(i&0xffff) * 1000)
	}
}
