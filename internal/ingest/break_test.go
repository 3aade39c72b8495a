package ingest_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/tickwire/tickwire/internal/ingest"
	tickwirev1 "github.com/tickwire/tickwire/pkg/proto/tickwire/v1"
)

// memPublisher keeps published events.
type memPublisher struct{ evs []*tickwirev1.Event }

func (m *memPublisher) Publish(_ context.Context, ev *tickwirev1.Event) error {
	m.evs = append(m.evs, ev)
	return nil
}
func (m *memPublisher) Flush(context.Context) error { return nil }

// breakingSource emits two instruments' books, then reports a break of one and sends its
// recovering snapshot.
type breakingSource struct{ onBreak func(string) }

func (s *breakingSource) Name() string                   { return "breaking" }
func (s *breakingSource) SetBreakHandler(f func(string)) { s.onBreak = f }

func info(id string) *tickwirev1.Event {
	return &tickwirev1.Event{Instrument: id, Body: &tickwirev1.Event_Info{Info: &tickwirev1.InstrumentInfo{
		Id: id, Venue: "test", Symbol: id[len("test:"):], PriceScale: 2, SizeScale: 0, TickSize: 1, LotSize: 1}}}
}

func bookEv(id string, snapshot bool, price, size int64) *tickwirev1.Event {
	return &tickwirev1.Event{Instrument: id, IngestTimeNs: 42, Body: &tickwirev1.Event_Book{Book: &tickwirev1.BookUpdate{
		Snapshot: snapshot, Bids: []*tickwirev1.Level{{Price: price, Size: size}}}}}
}

func (s *breakingSource) Run(_ context.Context, emit func(*tickwirev1.Event) error) error {
	for _, ev := range []*tickwirev1.Event{info("test:A"), info("test:B"), bookEv("test:A", true, 100, 1), bookEv("test:B", true, 200, 1),
		bookEv("test:A", false, 101, 2), bookEv("test:B", false, 201, 2)} {
		if err := emit(ev); err != nil {
			return err
		}
	}
	s.onBreak("test:A")
	for _, ev := range []*tickwirev1.Event{bookEv("test:A", true, 102, 3), bookEv("test:B", false, 202, 3), bookEv("test:A", false, 103, 4)} {
		if err := emit(ev); err != nil {
			return err
		}
	}
	return nil
}

func TestSourceBreakStartsNewEpoch(t *testing.T) {
	pub := &memPublisher{}
	clock := time.Unix(1_700_000_000, 0)
	p, err := ingest.New(&breakingSource{}, pub, nil, ingest.Config{Now: func() time.Time { clock = clock.Add(time.Second); return clock }}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	type pos struct{ epoch, seq uint64 }
	got := map[string][]pos{}
	for _, ev := range pub.evs {
		got[ev.Instrument] = append(got[ev.Instrument], pos{ev.Epoch, ev.Seq})
		if ev.GetBook() != nil && ev.IngestTimeNs != 42 {
			t.Errorf("source receive time not kept: %d", ev.IngestTimeNs)
		}
	}
	a, b := got["test:A"], got["test:B"]
	if len(a) != 5 || len(b) != 4 {
		t.Fatalf("positions %v", got)
	}
	if a[3].epoch <= a[2].epoch || a[3].seq != 1 || a[4] != (pos{a[3].epoch, 2}) {
		t.Errorf("A after its break: %v, want a new epoch from seq 1", a)
	}
	for i := 1; i < len(b); i++ {
		if b[i] != (pos{b[0].epoch, b[0].seq + uint64(i)}) {
			t.Errorf("B must go on in its epoch: %v", b)
		}
	}
}

// failedEarlier is a publisher whose publishes of long ago failed (reported to the pipeline
// then, as OnPublishError does), so that its final Flush reports them again.
type failedEarlier struct{ memPublisher }

func (f *failedEarlier) Flush(context.Context) error {
	return fmt.Errorf("%w: 12 since last flush, first: no response from stream", errPublish)
}

var errPublish = errors.New("bus: publish failed")

// TestShutdownAfterHandledPublishFailures: publishes that failed earlier, whose instruments the
// pipeline already moved to a new epoch, do not make a graceful stop fail (ingest exited 1,
// "ingest failed", after a NATS node leading the stream was killed and restarted long before).
// Publishes still pending when the flush times out do.
func TestShutdownAfterHandledPublishFailures(t *testing.T) {
	p, err := ingest.New(&breakingSource{}, &failedEarlier{}, nil, ingest.Config{}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Run(context.Background()); err != nil {
		t.Fatalf("Run: %v; want nil (the failures were handled as they happened)", err)
	}
	p, err = ingest.New(&breakingSource{}, &pendingForever{}, nil, ingest.Config{FlushTimeout: 10 * time.Millisecond}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Run(context.Background()); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Run: %v; want the flush's timeout (publishes still pending)", err)
	}
}

// pendingForever is a publisher whose publishes are never answered.
type pendingForever struct{ memPublisher }

func (*pendingForever) Flush(ctx context.Context) error {
	<-ctx.Done()
	return fmt.Errorf("bus: flush: 3 publishes still pending: %w", ctx.Err())
}
