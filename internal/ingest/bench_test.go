package ingest_test

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/protobuf/proto"

	"github.com/tickwire/tickwire/internal/bus"
	"github.com/tickwire/tickwire/internal/ingest"
	"github.com/tickwire/tickwire/internal/normalize"
	"github.com/tickwire/tickwire/internal/source/synthetic"
	tickwirev1 "github.com/tickwire/tickwire/pkg/proto/tickwire/v1"
)

func benchBus(b *testing.B, syncAlways bool, cfg bus.Config) *bus.Bus {
	srv, err := bus.StartEmbedded(bus.EmbeddedConfig{Port: -1, DataDir: b.TempDir(), SyncAlways: syncAlways}, nil)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(srv.Shutdown)
	cfg.URL, cfg.Auth = srv.ClientURL(), srv.Auth(string(bus.RoleIngest))
	bb, err := bus.Connect(context.Background(), cfg, nil, prometheus.NewRegistry())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = bb.Close() })
	if err := bb.EnsureStream(context.Background(), bus.StreamConfig{}); err != nil {
		b.Fatal(err)
	}
	return bb
}

// BenchmarkPublish measures Bus.Publish throughput of synthetic events (100 instruments)
// into an embedded JetStream file store, including waiting for every ack. With runs=R the
// same events come R of one instrument at a time (a busy book's burst, a venue message of
// several trades), which the bus may send as one message (internal/bus/batch.go); without,
// in the synthetic market's order, where consecutive events are seldom of one instrument.
func BenchmarkPublish(b *testing.B) {
	for _, bc := range []struct {
		name       string
		syncAlways bool
		runs       int
	}{{"sync=interval", false, 0}, {"sync=always", true, 0}, {"sync=interval/runs=8", false, 8}} {
		b.Run(bc.name, func(b *testing.B) {
			bb := benchBus(b, bc.syncAlways, bus.Config{})
			m, err := synthetic.NewMarket(synthetic.Config{Instruments: 100, Seed: 1})
			if err != nil {
				b.Fatal(err)
			}
			evs := make([]*tickwirev1.Event, 1<<14)
			for i := range evs {
				evs[i] = m.Next(int64(i))
			}
			if bc.runs > 0 {
				evs = inRuns(evs, bc.runs)
			}
			ctx := context.Background()
			var seq uint64
			b.ReportAllocs()
			for b.Loop() {
				seq++
				ev := evs[seq&(1<<14-1)]
				ev.Epoch, ev.Seq = 1, seq // unique message ids
				if err := bb.Publish(ctx, ev); err != nil {
					b.Fatal(err)
				}
			}
			if err := bb.Flush(ctx); err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
			reportPerMessage(b, bb)
		})
	}
}

// inRuns reorders evs into runs of n events of one instrument, taking the instruments in
// turn (each instrument's events keep their order).
func inRuns(evs []*tickwirev1.Event, n int) []*tickwirev1.Event {
	by := map[string][]*tickwirev1.Event{}
	var order []string
	for _, ev := range evs {
		id := ev.GetInstrument()
		if by[id] == nil {
			order = append(order, id)
		}
		by[id] = append(by[id], ev)
	}
	out := make([]*tickwirev1.Event, 0, len(evs))
	for len(out) < len(evs) {
		for _, id := range order {
			k := min(n, len(by[id]))
			out = append(out, by[id][:k]...)
			by[id] = by[id][k:]
		}
	}
	return out
}

// marketSource emits a synthetic market as fast as it can (no pacing), n events.
type marketSource struct {
	m *synthetic.Market
	n int
}

func (s *marketSource) Name() string { return "bench" }

func (s *marketSource) Run(ctx context.Context, emit func(*tickwirev1.Event) error) error {
	now := time.Now().UnixNano()
	for i := range s.n {
		if err := emit(s.m.Next(now + int64(i))); err != nil {
			return err
		}
	}
	return nil
}

// BenchmarkPipeline measures the whole ingest path (generate, validate, sequence, encode,
// publish, ack) into embedded JetStream, at several bus.Config.MaxReorder: how far apart in
// ingest time events of different instruments may be reordered to batch each instrument's
// (internal/bus/batch.go). The default is 1 ms; "never" batches only consecutive events of
// one instrument.
func BenchmarkPipeline(b *testing.B) {
	for _, bc := range []struct {
		name    string
		reorder time.Duration
	}{{"reorder=never", -1}, {"reorder=1ms", time.Millisecond}, {"reorder=5ms", 5 * time.Millisecond}} {
		b.Run(bc.name, func(b *testing.B) {
			bb := benchBus(b, false, bus.Config{MaxReorder: bc.reorder})
			runPipeline(b, bb, bb)
			reportPerMessage(b, bb)
		})
	}
}

// encodeOnly is a Publisher that encodes each event as bus.Bus does and drops it: the
// pipeline's own cost, without NATS.
type encodeOnly struct{ bytes int }

func (p *encodeOnly) Publish(_ context.Context, ev *tickwirev1.Event) error {
	b, err := proto.Marshal(ev)
	p.bytes += len(b)
	return err
}

func (p *encodeOnly) Flush(context.Context) error { return nil }

// BenchmarkPipelineEncodeOnly measures ingest's own work per event (generate, validate,
// sequence, encode) with the publish left out; BenchmarkPublishCore in internal/bus measures
// a core NATS publish, and BenchmarkPublish the JetStream path.
func BenchmarkPipelineEncodeOnly(b *testing.B) {
	runPipeline(b, &encodeOnly{}, nil)
}

// runPipeline runs ingest over b.N events of a 100-instrument synthetic market into pub (its
// last positions from positions, if not nil) and reports events/s.
func runPipeline(b *testing.B, pub ingest.Publisher, positions normalize.PositionStore) {
	b.Helper()
	m, err := synthetic.NewMarket(synthetic.Config{Instruments: 100, Seed: 1})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	p, err := ingest.New(&marketSource{m: m, n: b.N}, pub, positions, ingest.Config{}, slog.New(slog.DiscardHandler), prometheus.NewRegistry())
	if err != nil {
		b.Fatal(err)
	}
	if err := p.Run(context.Background()); err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}

// reportPerMessage reports the events per stored message of b.N events published through
// bb (several in a batch: internal/bus/batch.go).
func reportPerMessage(b *testing.B, bb *bus.Bus) {
	if st, err := bb.StreamState(context.Background()); err == nil && st.Msgs > 0 {
		b.ReportMetric(float64(b.N)/float64(st.Msgs), "events/msg")
	}
}
