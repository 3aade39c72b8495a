// Package replaytest fills a test event store with a deterministic synthetic market at fixed
// past times, for tests of export, import and replay.
package replaytest

import (
	"context"
	"testing"
	"time"

	"github.com/tickwire/tickwire/internal/bus"
	"github.com/tickwire/tickwire/internal/source/synthetic"
	tickwirev1 "github.com/tickwire/tickwire/pkg/proto/tickwire/v1"
)

// T0 is the venue time of the first generated event: a fixed past instant, so windows can be
// written as offsets from it.
var T0 = time.Date(2025, 3, 14, 15, 9, 26, 0, time.UTC)

// Config shapes the generated market.
type Config struct {
	Instruments int           // default 5
	Events      int           // default 4000
	Step        time.Duration // venue time between events; default 1 ms
	Checkpoint  time.Duration // synthetic checkpoint interval; default 1 s
	Seed        uint64
}

func (c Config) withDefaults() Config {
	if c.Instruments == 0 {
		c.Instruments = 5
	}
	if c.Events == 0 {
		c.Events = 4000
	}
	if c.Step == 0 {
		c.Step = time.Millisecond
	}
	if c.Checkpoint == 0 {
		c.Checkpoint = time.Second
	}
	return c
}

// Events generates the events of cfg as ingest would store them: venue time T0 + i*Step,
// ingest time 100 µs later, one epoch per instrument, seq from 1.
func Events(t testing.TB, cfg Config) []*tickwirev1.Event {
	t.Helper()
	cfg = cfg.withDefaults()
	m, err := synthetic.NewMarket(synthetic.Config{Instruments: cfg.Instruments, Seed: cfg.Seed, CheckpointInterval: cfg.Checkpoint, Depth: 20})
	if err != nil {
		t.Fatal(err)
	}
	epoch := uint64(T0.Unix())
	seqs := map[string]uint64{}
	out := make([]*tickwirev1.Event, cfg.Events)
	for i := range out {
		now := T0.Add(time.Duration(i) * cfg.Step).UnixNano()
		ev := m.Next(now)
		seqs[ev.Instrument]++
		ev.Epoch, ev.Seq, ev.IngestTimeNs = epoch, seqs[ev.Instrument], now+100_000
		out[i] = ev
	}
	return out
}

// Publish stores evs through b and waits for every ack.
func Publish(t testing.TB, b *bus.Bus, evs []*tickwirev1.Event) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, ev := range evs {
		if err := b.Publish(ctx, ev); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Flush(ctx); err != nil {
		t.Fatal(err)
	}
}

// Fill generates cfg's events, stores them through b and returns them.
func Fill(t testing.TB, b *bus.Bus, cfg Config) []*tickwirev1.Event {
	t.Helper()
	evs := Events(t, cfg)
	Publish(t, b, evs)
	return evs
}
