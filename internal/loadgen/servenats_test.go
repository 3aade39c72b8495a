package loadgen

import (
	"bytes"
	"context"
	"math"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// serve-nats --profile writes a CPU profile of the run and the heap at its end, both gzipped
// pprof protos that go tool pprof reads.
func TestServeNATSProfiles(t *testing.T) {
	dir := t.TempDir()
	prof := filepath.Join(dir, "nats.prof")
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		done <- serveNATS(ctx, -1, filepath.Join(dir, "store"), filepath.Join(dir, "auth"), prof, ready)
	}()
	select {
	case <-ready:
	case err := <-done:
		t.Fatalf("serveNATS ended before serving: %v", err)
	case <-time.After(20 * time.Second):
		t.Fatal("NATS not serving after 20 s")
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{prof, prof + ".heap"} {
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.HasPrefix(data, []byte{0x1f, 0x8b}) {
			t.Fatalf("%s: %d bytes, not a gzipped profile", p, len(data))
		}
	}
}

func TestHistQuantile(t *testing.T) {
	inf := math.Inf(1)
	before := map[float64]float64{0.001: 10, 0.002: 10, 0.004: 10, inf: 10}
	tests := []struct {
		name  string
		after map[float64]float64
		q     float64
		want  time.Duration
	}{
		{"nothing observed", map[float64]float64{0.001: 10, 0.002: 10, 0.004: 10, inf: 10}, 0.5, 0},
		{"all in the first bucket: interpolated from 0", map[float64]float64{0.001: 110, 0.002: 110, 0.004: 110, inf: 110}, 0.5, 500 * time.Microsecond},
		{"median at the first bound", map[float64]float64{0.001: 60, 0.002: 110, 0.004: 110, inf: 110}, 0.5, 1 * time.Millisecond},
		{"p99 in the third bucket", map[float64]float64{0.001: 10, 0.002: 10, 0.004: 110, inf: 110}, 0.99, 3980 * time.Microsecond},
		{"past the last finite bound", map[float64]float64{0.001: 10, 0.002: 10, 0.004: 10, inf: 110}, 0.5, 0},
		{"no scrape", map[float64]float64{}, 0.5, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := histQuantile(before, tc.after, tc.q)
			if d := got - tc.want; d < -time.Microsecond || d > time.Microsecond {
				t.Fatalf("histQuantile = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestHistSeries(t *testing.T) {
	tests := []struct {
		line, series string
		le           float64
		ok           bool
	}{
		{`tickwire_feed_ingest_to_apply_seconds_bucket{le="0.0001"}`, histApply, 0.0001, true},
		{`tickwire_bus_consume_lag_seconds_bucket{part="ingest_to_store",le="+Inf"}`, histToStore, math.Inf(1), true},
		{`tickwire_bus_consume_lag_seconds_bucket{part="store_to_consume",le="0.0016"}`, histFromStore, 0.0016, true},
		{`tickwire_feed_ingest_to_apply_seconds_sum`, "", 0, false},
		{`x_bucket{le="nope"}`, "", 0, false},
	}
	for _, tc := range tests {
		series, le, ok := histSeries(tc.line)
		if series != tc.series || le != tc.le || ok != tc.ok {
			t.Errorf("histSeries(%s) = %q %v %v, want %q %v %v", tc.line, series, le, ok, tc.series, tc.le, tc.ok)
		}
	}
}
