package e2e

import (
	"context"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tickwire/tickwire/internal/bus/bustest"
	"github.com/tickwire/tickwire/internal/feed"
	"github.com/tickwire/tickwire/internal/source/synthetic"
)

// BenchmarkWarmStart measures how long a feed takes to rebuild every instrument from the event
// store and report ready. TICKWIRE_WARM_EVENTS sets the stored events (default 1,000,000).
//
//	go test -run '^$' -bench WarmStart -benchtime 1x ./internal/e2e
func BenchmarkWarmStart(b *testing.B) {
	n := 1_000_000
	if v, err := strconv.Atoi(os.Getenv("TICKWIRE_WARM_EVENTS")); err == nil && v > 0 {
		n = v
	}
	nats := bustest.Start(b)
	bs := bustest.Connect(b, nats)
	m, err := synthetic.NewMarket(synthetic.Config{Instruments: 50, Seed: 1})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	seq := map[string]uint64{}
	clock := time.Now().Add(-time.Hour).UnixNano()
	start := time.Now()
	for range n {
		clock += 100_000
		ev := m.Next(clock)
		seq[ev.Instrument]++
		ev.Epoch, ev.Seq, ev.IngestTimeNs = 1, seq[ev.Instrument], clock
		if err := bs.Publish(ctx, ev); err != nil {
			b.Fatal(err)
		}
	}
	if err := bs.Flush(ctx); err != nil {
		b.Fatal(err)
	}
	b.Logf("stored %d events in %v", n, time.Since(start).Round(time.Millisecond))

	b.ResetTimer()
	for b.Loop() {
		srv, err := feed.New(feed.Config{}, nil, prometheus.NewRegistry())
		if err != nil {
			b.Fatal(err)
		}
		svc, err := feed.NewService(srv, bs, "127.0.0.1:0", srv.Handler(nil), nil)
		if err != nil {
			b.Fatal(err)
		}
		rctx, cancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		t0 := time.Now()
		go func() { done <- svc.Run(rctx, 5*time.Second) }()
		for !ready(svc) {
			time.Sleep(time.Millisecond)
		}
		took := time.Since(t0)
		b.ReportMetric(took.Seconds(), "s/warm-start")
		b.ReportMetric(float64(n)/took.Seconds(), "events/s")
		if len(srv.Instruments()) != 50 {
			b.Fatalf("%d instruments after warm start", len(srv.Instruments()))
		}
		cancel()
		if err := <-done; err != nil {
			b.Fatal(err)
		}
	}
}

func ready(svc *feed.Service) bool {
	return svc.Server.Ready()
}
