package loadgen

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

func TestBucketsCoverEveryValueOnce(t *testing.T) {
	prevHi := int64(-1)
	for i := range histBuckets {
		lo, hi := bucketBounds(i)
		if lo != prevHi+1 || hi < lo {
			t.Fatalf("bucket %d = [%d, %d], previous ended at %d", i, lo, hi, prevHi)
		}
		if bucketOf(lo) != i || bucketOf(hi) != i {
			t.Fatalf("bucket %d: bucketOf(%d)=%d bucketOf(%d)=%d", i, lo, bucketOf(lo), hi, bucketOf(hi))
		}
		// Relative width at most 1/32: quantiles within ~3%.
		if lo >= histSub && float64(hi-lo+1)/float64(lo) > 1.0/histSub+1e-9 {
			t.Fatalf("bucket %d too wide: [%d, %d]", i, lo, hi)
		}
		prevHi = hi
	}
	if prevHi != 1<<histMaxBits-1 {
		t.Fatalf("buckets end at %d, want 2^%d-1", prevHi, histMaxBits)
	}
	if bucketOf(-5) != 0 || bucketOf(math.MaxInt64) != histBuckets-1 {
		t.Fatal("out-of-range values not clamped")
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
			h.Snapshot(s)
			s.Max = h.TakeMax()
			if s.Total() != uint64(len(ref)) || s.Max != ref[len(ref)-1] {
				t.Fatalf("total %d max %d, want %d %d", s.Total(), s.Max, len(ref), ref[len(ref)-1])
			}
			for _, q := range []float64{0.5, 0.9, 0.99, 0.999, 1} {
				want := ref[int(math.Ceil(q*float64(len(ref))))-1]
				got := s.Quantile(q)
				// The answer is the upper bound of want's bucket: never below, at most 1/32 above.
				if got < want || float64(got-want) > float64(want)/histSub+1 {
					t.Errorf("q%.3f = %d, reference %d", q, got, want)
				}
			}
		})
	}
}

func TestSnapshotsMergeAndDiff(t *testing.T) {
	var a, b Histogram
	for i := range 1000 {
		a.Record(int64(i) * 1000)
	}
	s0 := NewHistSnapshot()
	a.Snapshot(s0)
	for i := range 500 {
		a.Record(int64(i) * 7)
		b.Record(5_000_000)
	}
	s1, sb := NewHistSnapshot(), NewHistSnapshot()
	a.Snapshot(s1)
	b.Snapshot(sb)
	win := NewHistSnapshot()
	win.MergeDiff(s1, s0)
	if win.Total() != 500 || win.Quantile(1) > 3600 {
		t.Fatalf("window: total %d max %d", win.Total(), win.Quantile(1))
	}
	win.Merge(sb)
	if win.Total() != 1000 || win.Quantile(0.5) > 3600 || win.Quantile(0.51) < 5_000_000 {
		t.Fatalf("merged: total %d p50 %d p51 %d", win.Total(), win.Quantile(0.5), win.Quantile(0.51))
	}
	// Counters wrap at 2^32; the difference of two snapshots still holds.
	now, before := &HistSnapshot{Counts: make([]uint64, histBuckets)}, &HistSnapshot{Counts: make([]uint64, histBuckets)}
	before.Counts[3], now.Counts[3] = math.MaxUint32-1, 3
	w := NewHistSnapshot()
	w.MergeDiff(now, before)
	if w.Counts[3] != 5 {
		t.Fatalf("wrapped diff = %d, want 5", w.Counts[3])
	}
	if NewHistSnapshot().Quantile(0.5) != 0 {
		t.Fatal("empty quantile")
	}
}

func BenchmarkHistogramRecord(b *testing.B) {
	var h Histogram
	for i := range b.N {
		h.Record(int64(i&0xffff) * 1000)
	}
}
