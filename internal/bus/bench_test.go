package bus_test

import (
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tickwire/tickwire/internal/bus"
	"github.com/tickwire/tickwire/internal/bus/bustest"
	"github.com/tickwire/tickwire/internal/profile"
	pb "github.com/tickwire/tickwire/pkg/proto/tickwire/v1"
)

// BenchmarkPublishCore measures publishing one encoded event on core NATS (the replay path:
// no JetStream, no ack), server in the same process. Compare BenchmarkPublish in
// internal/ingest, the JetStream path with acks.
func BenchmarkPublishCore(b *testing.B) {
	srv := bustest.Start(b)
	bb := bustest.Connect(b, srv)
	ev := &pb.Event{Instrument: "bench:ABC", Epoch: 1, Seq: 1, IngestTimeNs: 1, VenueTimeNs: 1,
		Body: &pb.Event_Quote{Quote: &pb.Quote{BidPrice: 1234500, BidSize: 10, AskPrice: 1234600, AskSize: 20}}}
	b.ReportAllocs()
	for b.Loop() {
		ev.Seq++
		if err := bb.PublishReplayEvent("bench", ev); err != nil {
			b.Fatal(err)
		}
	}
	if err := bb.Flush(b.Context()); err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkConsumeEvents measures reading stored events through ConsumeEvents (the feed's
// intake), one event per message, 100 instruments in turn, server in the same process; with
// Live the consumer also observes tickwire_bus_consume_lag_seconds (a clock read and two
// histogram observations per event).
func BenchmarkConsumeEvents(b *testing.B) {
	for _, live := range []bool{false, true} {
		b.Run(fmt.Sprintf("live=%v", live), func(b *testing.B) {
			srv := bustest.Start(b)
			bb, _, release := heldBus(b, srv, bustest.TestUser, bus.Config{MaxReorder: -1}) // never regrouped: one event per message
			release()
			if err := bb.EnsureStream(b.Context(), bus.StreamConfig{}); err != nil {
				b.Fatal(err)
			}
			ctx := b.Context()
			for i := range b.N {
				ev := &pb.Event{Instrument: fmt.Sprintf("bench:I%03d", i%100), Epoch: 1, Seq: uint64(i/100 + 1), IngestTimeNs: time.Now().UnixNano(),
					Body: &pb.Event_Quote{Quote: &pb.Quote{BidPrice: 1234500, BidSize: 10, AskPrice: 1234600, AskSize: 20}}}
				if err := bb.Publish(ctx, ev); err != nil {
					b.Fatal(err)
				}
			}
			if err := bb.Flush(ctx); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			b.ResetTimer()
			var n atomic.Int64
			c, err := bb.ConsumeEvents(ctx, bus.ConsumeOptions{Live: live}, func(*pb.Event) error { n.Add(1); return nil })
			if err != nil {
				b.Fatal(err)
			}
			bustest.AwaitCaughtUp(b, c)
			b.StopTimer()
			c.Stop()
			if int(n.Load()) != b.N {
				b.Fatalf("consumed %d of %d events", n.Load(), b.N)
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
		})
	}
}

// BenchmarkLivePath measures the whole JetStream path of a live event in the firehose's shape
// (issue 13, target 5): one event per message over 1,000 instruments in turn, published as
// ingest publishes (acknowledged), stored, and delivered to a live ConsumeEvents on a second
// connection, with the server in this process. It reports the rate with the whole machine and
// the process's CPU per event, which covers the publisher, nats-server and the consumer
// together but not the feed's work on the event: a floor under what the firehose costs
// end to end (docs/BENCHMARKS.md, "What this machine cannot do").
func BenchmarkLivePath(b *testing.B) {
	const instruments = 1000
	srv := bustest.Start(b)
	pub, _, release := heldBus(b, srv, bustest.TestUser, bus.Config{MaxReorder: -1}) // never regrouped: one event per message
	release()
	sub := bustest.Connect(b, srv)
	ctx := b.Context()
	var n atomic.Int64
	all := make(chan struct{})
	c, err := sub.ConsumeEvents(ctx, bus.ConsumeOptions{Live: true}, func(*pb.Event) error {
		if n.Add(1) == int64(b.N) {
			close(all)
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Stop()
	evs := make([]*pb.Event, instruments)
	for i := range evs {
		evs[i] = &pb.Event{Instrument: fmt.Sprintf("bench:I%04d", i), Epoch: 1,
			Body: &pb.Event_Quote{Quote: &pb.Quote{BidPrice: 1234500, BidSize: 10, AskPrice: 1234600, AskSize: 20}}}
	}
	b.ReportAllocs()
	cpu0 := profile.CPUTime()
	b.ResetTimer()
	for i := range b.N {
		ev := evs[i%instruments]
		ev.Seq++
		ev.IngestTimeNs = time.Now().UnixNano()
		if err := pub.Publish(ctx, ev); err != nil {
			b.Fatal(err)
		}
	}
	select {
	case <-all:
	case <-time.After(time.Minute):
		b.Fatalf("consumed %d of %d events in a minute", n.Load(), b.N)
	}
	b.StopTimer()
	cpu := profile.CPUTime() - cpu0
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N), "cpu-ns/event")
}
