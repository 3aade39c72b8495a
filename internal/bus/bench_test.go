package bus_test

import (
	"testing"

	"github.com/tickwire/tickwire/internal/bus/bustest"
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
