package bus_test

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/tickwire/tickwire/internal/bus"
	"github.com/tickwire/tickwire/internal/bus/bustest"
	tickwirev1 "github.com/tickwire/tickwire/pkg/proto/tickwire/v1"
)

// heldBus connects as user with a batcher held until release is called, so that what is
// published meanwhile queues up and goes out in one pass.
func heldBus(t testing.TB, s *bus.Embedded, user string, cfg bus.Config) (b *bus.Bus, reg *prometheus.Registry, release func()) {
	t.Helper()
	hold := make(chan struct{})
	var once sync.Once
	cfg.URL, cfg.Auth = s.ClientURL(), s.Auth(user)
	bus.SetBeforePassForTest(&cfg, func() { <-hold })
	reg = prometheus.NewRegistry()
	b, err := bus.Connect(context.Background(), cfg, slog.New(slog.DiscardHandler), reg)
	if err != nil {
		t.Fatal(err)
	}
	release = func() { once.Do(func() { close(hold) }) }
	t.Cleanup(func() { release(); _ = b.Close() })
	return b, reg, release
}

// Consecutive events of an instrument queued together go out as one message (up to
// MaxBatchEvents) and come back, in order, through ConsumeEvents and LastEvent.
func TestBatchesThroughJetStream(t *testing.T) {
	ctx := ctxT(t)
	s := bustest.Start(t)
	b, reg, release := heldBus(t, s, bustest.TestUser, bus.Config{MaxBatchEvents: 100})
	if err := b.EnsureStream(ctx, bus.StreamConfig{}); err != nil {
		t.Fatal(err)
	}
	insts := []string{"x:A", "x:B/C", "x:D"}
	const perInst = 250 // 100 + 100 + 50 per instrument at MaxBatchEvents 100
	for _, inst := range insts {
		for seq := uint64(1); seq <= perInst; seq++ {
			if err := b.Publish(ctx, trade(inst, 3, seq)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if n := b.PublishPending(); n != perInst*len(insts) {
		t.Fatalf("PublishPending %d while held, want %d", n, perInst*len(insts))
	}
	release()
	if err := b.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	// Flush's marker is not an event: it must not count (tickwire_bus_publish_pending drifted
	// one below zero per Flush).
	if n := b.PublishPending(); n != 0 {
		t.Fatalf("PublishPending %d after Flush, want 0", n)
	}
	st, err := b.StreamState(ctx)
	if err != nil || st.Msgs != 3*uint64(len(insts)) {
		t.Fatalf("stream state %+v, %v; want %d messages", st, err, 3*len(insts))
	}
	if got := counterOf(t, reg, "tickwire_bus_published_total"); got != perInst*float64(len(insts)) {
		t.Fatalf("published_total %v, want %d", got, perInst*len(insts))
	}
	if got := counterOf(t, reg, "tickwire_bus_published_messages_total"); got != 3*float64(len(insts)) {
		t.Fatalf("published_messages_total %v, want %d", got, 3*len(insts))
	}

	got := map[string]uint64{}
	var mu sync.Mutex
	c, err := bustest.Connect(t, s).ConsumeEvents(ctx, bus.ConsumeOptions{}, func(ev *tickwirev1.Event) error {
		mu.Lock()
		defer mu.Unlock()
		if want := got[ev.GetInstrument()] + 1; ev.GetSeq() != want || ev.GetEpoch() != 3 || ev.GetTrade().GetPrice() != 100 {
			return fmt.Errorf("%s %d/%d, want seq %d", ev.GetInstrument(), ev.GetEpoch(), ev.GetSeq(), want)
		}
		got[ev.GetInstrument()] = ev.GetSeq()
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Stop()
	bustest.AwaitCaughtUp(t, c)
	mu.Lock()
	for _, inst := range insts {
		if got[inst] != perInst {
			t.Fatalf("caught up at %v, want %d of each", got, perInst)
		}
	}
	mu.Unlock()
	for _, inst := range insts {
		ev, err := b.LastEvent(ctx, inst)
		if err != nil || ev.GetSeq() != perInst {
			t.Fatalf("LastEvent(%s) = %v, %v", inst, ev, err)
		}
		if e, s, found, err := b.LastPosition(ctx, inst); err != nil || !found || e != 3 || s != perInst {
			t.Fatalf("LastPosition(%s) = %d/%d %t %v", inst, e, s, found, err)
		}
	}
}

// A batch that fails is reported event by event: to the error handler, in the counter and
// by Flush.
func TestBatchPublishErrorsPerEvent(t *testing.T) {
	ctx := ctxT(t)
	s := bustest.Start(t)
	if err := bustest.Connect(t, s).EnsureStream(ctx, bus.StreamConfig{}); err != nil {
		t.Fatal(err)
	}
	// The feed may not publish events: the server never acknowledges them.
	b, reg, release := heldBus(t, s, string(bus.RoleFeed), bus.Config{PublishAckTimeout: 300 * time.Millisecond})
	var mu sync.Mutex
	failed := map[uint64]int{}
	b.SetPublishErrorHandler(func(inst string, epoch, seq uint64, err error) {
		mu.Lock()
		defer mu.Unlock()
		if inst == "x:A" && epoch == 2 {
			failed[seq]++
		}
	})
	for seq := uint64(1); seq <= 5; seq++ {
		if err := b.Publish(ctx, trade("x:A", 2, seq)); err != nil {
			t.Fatal(err)
		}
	}
	release()
	if err := b.Flush(ctx); err == nil {
		t.Fatal("Flush after a refused batch: nil error")
	}
	mu.Lock()
	defer mu.Unlock()
	if len(failed) != 5 {
		t.Fatalf("failed positions %v, want seqs 1-5 once each", failed)
	}
	for seq := uint64(1); seq <= 5; seq++ {
		if failed[seq] != 1 {
			t.Fatalf("failed positions %v, want seqs 1-5 once each", failed)
		}
	}
	if got := counterOf(t, reg, "tickwire_bus_publish_errors_total"); got != 5 {
		t.Fatalf("publish_errors_total %v, want 5", got)
	}
}

// Close sends what is queued, and Publish after Close is refused.
func TestCloseSendsQueuedEvents(t *testing.T) {
	ctx := ctxT(t)
	s := bustest.Start(t)
	b, _, release := heldBus(t, s, bustest.TestUser, bus.Config{})
	if err := b.EnsureStream(ctx, bus.StreamConfig{}); err != nil {
		t.Fatal(err)
	}
	for seq := uint64(1); seq <= 50; seq++ {
		if err := b.Publish(ctx, trade("x:A", 1, seq)); err != nil {
			t.Fatal(err)
		}
	}
	release()
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if err := b.Publish(ctx, trade("x:A", 1, 51)); err == nil {
		t.Fatal("Publish after Close: nil error")
	}
	if n := events(t, s); n != 50 {
		t.Fatalf("%d events stored, want the 50 queued before Close", n)
	}
}

// A live consumer splits each event's way at the time JetStream stored it: per event with an
// ingest time (ingest_to_store) and per message (store_to_consume), both from the clocks of
// this machine, so neither is negative here. A reader of history observes nothing.
func TestConsumeLag(t *testing.T) {
	ctx := ctxT(t)
	s := bustest.Start(t)
	b, reg, release := heldBus(t, s, bustest.TestUser, bus.Config{})
	release()
	if err := b.EnsureStream(ctx, bus.StreamConfig{}); err != nil {
		t.Fatal(err)
	}
	const n = 20
	for seq := uint64(1); seq <= n; seq++ {
		ev := trade("x:A", 1, seq)
		if seq > n/2 {
			ev.IngestTimeNs = time.Now().UnixNano() // the first half have none
		}
		if err := b.Publish(ctx, ev); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	for _, live := range []bool{false, true} { // history first: it must leave no observation
		c, err := b.ConsumeEvents(ctx, bus.ConsumeOptions{Live: live}, func(*tickwirev1.Event) error { return nil })
		if err != nil {
			t.Fatal(err)
		}
		<-c.CaughtUp()
		c.Stop()
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]*dto.Histogram{}
	for _, mf := range mfs {
		if mf.GetName() != "tickwire_bus_consume_lag_seconds" {
			continue
		}
		for _, m := range mf.GetMetric() {
			got[m.GetLabel()[0].GetValue()] = m.GetHistogram()
		}
	}
	toStore, fromStore := got["ingest_to_store"], got["store_to_consume"]
	if toStore.GetSampleCount() != n/2 {
		t.Fatalf("ingest_to_store: %d observations, want %d (the events with an ingest time)", toStore.GetSampleCount(), n/2)
	}
	st, err := b.StreamState(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if fromStore.GetSampleCount() != st.Msgs {
		t.Fatalf("store_to_consume: %d observations, want one per message (%d)", fromStore.GetSampleCount(), st.Msgs)
	}
	if toStore.GetSampleSum() < 0 || fromStore.GetSampleSum() < 0 {
		t.Fatalf("negative lag: %v %v", toStore.GetSampleSum(), fromStore.GetSampleSum())
	}
}
