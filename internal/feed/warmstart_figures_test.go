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
	"github.com/tickwire/tickwire/internal/testwait"
)

// TestWarmStartFigures fills JetStream (embedded, file storage in a temporary directory) with
// TICKWIRE_WARMSTART_EVENTS synthetic events of 50 instruments and times a feed's start to
// ready: the full replay (the first start: no checkpoint), then, after that feed wrote its
// checkpoint and TICKWIRE_WARMSTART_TAIL more events (default 10000) arrived, the warm start
// from the checkpoint plus that tail. Skipped without the variable. docs/BENCHMARKS.md has the
// figures and the command:
//
//	TICKWIRE_WARMSTART_EVENTS=1000000 go test -run TestWarmStartFigures -v -timeout 2h ./internal/feed/
//
// With TICKWIRE_WARMSTART_LIVE=1 a feed follows the fill live instead, and its final checkpoint
// (written when it stops) is the one the warm start loads: no full replay, so 10 M events fit a
// run.
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
	timed := func(interval time.Duration) (*warmFeed, time.Duration) {
		t0 := time.Now()
		f := startWarm(t, b, interval)
		return f, time.Since(t0)
	}
	if os.Getenv("TICKWIRE_WARMSTART_LIVE") != "" {
		// A feed follows the fill live (as in production) and writes its final checkpoint when
		// stopped; the full replay, which at 10 M events outlasts a test run here, is skipped.
		live := startWarm(t, b, time.Minute)
		start := time.Now()
		fill(n)
		st, err := b.StreamState(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("filled %d events (%d MB stored) in %s, a feed following: %.0f events/s", st.Msgs, st.Bytes>>20,
			time.Since(start).Round(time.Second), float64(n)/time.Since(start).Seconds())
		testwait.For(t, time.Hour, "the live feed to apply every event", func() bool { return live.srv.warmup.Load().seq.Load() == st.LastSeq })
		live.stop()
		have, err := b.Checkpoints(context.Background())
		if err != nil || len(have) == 0 || have[0].StreamSeq != st.LastSeq {
			t.Fatalf("checkpoints after the live feed stopped: %+v %v", have, err)
		}
		t.Logf("checkpoint at stream seq %d: %d bytes, %d chunks", have[0].StreamSeq, have[0].Size, have[0].Chunks)
		fill(tail)
		warm, took := timed(time.Hour)
		w := warm.srv.warmup.Load()
		t.Logf("warm start with %d events stored (checkpoint + %d tail events): ready in %s (from checkpoint %v, %d events consumed)",
			st.Msgs+uint64(tail), tail, took.Round(time.Millisecond), w.fromCheckpoint, w.events.Load())
		if !w.fromCheckpoint || w.events.Load() != uint64(tail) {
			t.Errorf("the warm start: from checkpoint %v, %d events consumed, want the checkpoint and %d", w.fromCheckpoint, w.events.Load(), tail)
		}
		return
	}
	start := time.Now()
	fill(n)
	st, err := b.StreamState(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("filled %d events (%d MB stored) in %s: %.0f events/s", st.Msgs, st.Bytes>>20,
		time.Since(start).Round(time.Second), float64(n)/time.Since(start).Seconds())

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
