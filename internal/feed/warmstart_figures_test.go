package feed

import (
	"context"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/tickwire/tickwire/internal/bus"
	"github.com/tickwire/tickwire/internal/bus/bustest"
	"github.com/tickwire/tickwire/internal/source/synthetic"
)

// TestWarmStartFigures fills JetStream (embedded, file storage in a temporary directory) with
// TICKWIRE_WARMSTART_EVENTS synthetic events of 50 instruments and times a feed's start to
// ready: the full replay (the first start: no checkpoint), then, after that feed wrote its
// checkpoint and TICKWIRE_WARMSTART_TAIL more events (default 10000) arrived, the warm start
// from the checkpoint plus that tail. Skipped without the variable. docs/BENCHMARKS.md has the
// figures and the command:
//
//	TICKWIRE_WARMSTART_EVENTS=1000000 go test -run TestWarmStartFigures -v -timeout 2h ./internal/feed/
func TestWarmStartFigures(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("TICKWIRE_WARMSTART_EVENTS"))
	if n <= 0 {
		t.Skip("set TICKWIRE_WARMSTART_EVENTS=N to time a feed's start with N stored events, with and without a checkpoint")
	}
	warmReadyWithin = time.Hour
	tail := 10000
	if v, err := strconv.Atoi(os.Getenv("TICKWIRE_WARMSTART_TAIL")); err == nil && v >= 0 {
		tail = v
	}
	nats := bustest.Start(t)
	b := bustest.Connect(t, nats)
	m, err := synthetic.NewMarket(synthetic.Config{Instruments: 50, Seed: 7})
	if err != nil {
		t.Fatal(err)
	}
	seq := map[string]uint64{}
	clock := time.Now().Add(-24 * time.Hour).UnixNano()
	fill := func(k int) {
		ctx := context.Background()
		for range k {
			clock += 1e6
			ev := m.Next(clock)
			seq[ev.Instrument]++
			ev.Epoch, ev.Seq, ev.IngestTimeNs = 1, seq[ev.Instrument], clock
			if err := b.Publish(ctx, ev); err != nil {
				t.Fatal(err)
			}
		}
		flush(t, b)
	}
	start := time.Now()
	fill(n)
	st, err := b.StreamState(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("filled %d events (%d MB stored) in %s: %.0f events/s", st.Msgs, st.Bytes>>20,
		time.Since(start).Round(time.Second), float64(n)/time.Since(start).Seconds())

	timed := func(interval time.Duration) (*warmFeed, time.Duration) {
		t0 := time.Now()
		f := startWarm(t, b, interval)
		return f, time.Since(t0)
	}
	full, took := timed(time.Nanosecond)
	t.Logf("full replay (no checkpoint): ready in %s: %.0f events/s", took.Round(time.Millisecond), float64(n)/took.Seconds())
	// One event after ready takes the checkpoint.
	var have []bus.CheckpointInfo
	for have == nil {
		fill(1)
		var err error
		if have, err = b.Checkpoints(context.Background()); err != nil {
			t.Fatal(err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	full.stop()
	t.Logf("checkpoint at stream seq %d: %d bytes, %d chunks", have[0].StreamSeq, have[0].Size, have[0].Chunks)
	fill(tail)
	warm, took := timed(time.Hour)
	w := warm.srv.warmup.Load()
	t.Logf("warm start (checkpoint + %d tail events): ready in %s (from checkpoint %v, %d events consumed)",
		tail, took.Round(time.Millisecond), w.fromCheckpoint, w.events.Load())
	if !w.fromCheckpoint {
		t.Error("the warm start did not load the checkpoint")
	}
}
