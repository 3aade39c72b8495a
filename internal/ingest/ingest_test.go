package ingest_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/protobuf/proto"

	"github.com/tickwire/tickwire/internal/bus"
	"github.com/tickwire/tickwire/internal/bus/bustest"
	"github.com/tickwire/tickwire/internal/ingest"
	"github.com/tickwire/tickwire/internal/source/synthetic"
	tickwirev1 "github.com/tickwire/tickwire/pkg/proto/tickwire/v1"
)

// limited stops the pipeline (cancels) after n events of the wrapped source.
type limited struct {
	ingest.Source
	n      int
	cancel context.CancelFunc
}

func (l *limited) Run(ctx context.Context, emit func(*tickwirev1.Event) error) error {
	count := 0
	return l.Source.Run(ctx, func(ev *tickwirev1.Event) error {
		if count++; count == l.n {
			l.cancel()
		}
		return emit(ev)
	})
}

func runIngest(t *testing.T, b *bus.Bus, events int) {
	t.Helper()
	src, err := synthetic.NewSource(synthetic.Config{Instruments: 20, Seed: 1, Rate: 50_000}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	p, err := ingest.New(&limited{Source: src, n: events, cancel: cancel}, b, b, ingest.Config{}, slog.New(slog.DiscardHandler), prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	b.SetPublishErrorHandler(p.OnPublishError)
	if err := p.Run(ctx); err != nil {
		t.Fatalf("Run: %v", err)
	}
}

type chain struct {
	epoch, first, last uint64
	n                  int
}

// readAll consumes the whole stream and checks each instrument's chain is gapless in one epoch.
func readAll(t *testing.T, b *bus.Bus) map[string]*chain {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	chains := map[string]*chain{}
	var mu sync.Mutex
	c, err := b.ConsumeEvents(ctx, bus.ConsumeOptions{}, func(ev *tickwirev1.Event) error {
		mu.Lock()
		defer mu.Unlock()
		ch := chains[ev.GetInstrument()]
		if ch == nil {
			if ev.GetInfo() == nil {
				return fmt.Errorf("%s: first event %v is not InstrumentInfo", ev.GetInstrument(), ev)
			}
			chains[ev.GetInstrument()] = &chain{epoch: ev.GetEpoch(), first: ev.GetSeq(), last: ev.GetSeq(), n: 1}
			return nil
		}
		if ev.GetEpoch() != ch.epoch || ev.GetSeq() != ch.last+1 {
			return fmt.Errorf("%s: %d/%d after %d/%d", ev.GetInstrument(), ev.GetEpoch(), ev.GetSeq(), ch.epoch, ch.last)
		}
		if ev.GetIngestTimeNs() == 0 {
			return fmt.Errorf("%s: no ingest time", ev.GetInstrument())
		}
		ch.last, ch.n = ev.GetSeq(), ch.n+1
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Stop()
	select {
	case <-c.CaughtUp():
	case <-c.Done():
		t.Fatal(c.Err())
	case <-ctx.Done():
		t.Fatal("consumer did not catch up")
	}
	mu.Lock()
	defer mu.Unlock()
	return chains
}

func TestIngestGaplessRestartDedup(t *testing.T) {
	dir := t.TempDir()
	srv := bustest.StartDir(t, dir)
	b := bustest.Connect(t, srv)

	runIngest(t, b, 3000)
	first := readAll(t, b)
	if len(first) != 20 {
		t.Fatalf("%d instruments", len(first))
	}
	total := 0
	for inst, ch := range first {
		if ch.first != 1 {
			t.Fatalf("%s starts at seq %d", inst, ch.first)
		}
		total += ch.n
	}
	if total < 3000 {
		t.Fatalf("%d events stored", total)
	}

	// Publishing a position twice stores it once. (Each is sent alone: Flush sends what is
	// queued before it. A position first stored within a batch and re-sent alone would be a
	// new message, which readers drop as stale: internal/bus/batch.go.)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	before, err := b.StreamState(ctx)
	if err != nil {
		t.Fatal(err)
	}
	acme := first["synthetic:ACME"]
	dup := &tickwirev1.Event{Instrument: "synthetic:ACME", Epoch: acme.epoch, Seq: acme.last + 1, IngestTimeNs: time.Now().UnixNano(),
		Body: &tickwirev1.Event_Trade{Trade: &tickwirev1.Trade{Price: 1, Size: 1}}}
	for range 2 {
		if err := b.Publish(ctx, dup); err != nil {
			t.Fatal(err)
		}
		if err := b.Flush(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if after, _ := b.StreamState(ctx); after.Msgs != before.Msgs+1 {
		t.Fatalf("position published twice: %d -> %d msgs, want one more", before.Msgs, after.Msgs)
	}
	acme.last, acme.n = acme.last+1, acme.n+1

	// Restart ingest and the server on the same store: sequences continue in the same epoch.
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	srv.Shutdown()
	b2 := bustest.Connect(t, bustest.StartDir(t, dir))
	runIngest(t, b2, 2000)
	second := readAll(t, b2)
	for inst, ch := range second {
		f := first[inst]
		if ch.epoch != f.epoch || ch.first != 1 || ch.last <= f.last || ch.n != int(ch.last) {
			t.Fatalf("%s: after restart %+v, before %+v", inst, ch, f)
		}
	}
}

// script is a Source emitting fixed events, pausing after each for the test to act.
type script struct {
	events    []*tickwirev1.Event
	snapshots chan string
	step      chan struct{}
}

func (s *script) Name() string { return "script" }

func (s *script) RequestSnapshot(inst string) { s.snapshots <- inst }

func (s *script) Run(ctx context.Context, emit func(*tickwirev1.Event) error) error {
	for _, ev := range s.events {
		<-s.step
		if err := emit(ev); err != nil {
			return err
		}
		s.step <- struct{}{} // emitted
	}
	<-ctx.Done()
	return nil
}

type recorder struct {
	mu  sync.Mutex
	evs []*tickwirev1.Event
}

func (r *recorder) Publish(_ context.Context, ev *tickwirev1.Event) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.evs = append(r.evs, ev)
	return nil
}

func (r *recorder) Flush(context.Context) error { return nil }

func TestPublishFailureStartsNewEpochWithSnapshot(t *testing.T) {
	const inst = "test:X"
	info := &tickwirev1.Event{Instrument: inst, Body: &tickwirev1.Event_Info{Info: &tickwirev1.InstrumentInfo{
		Id: inst, Venue: "test", Symbol: "X", TickSize: 1, LotSize: 1}}}
	snap := &tickwirev1.Event{Instrument: inst, Body: &tickwirev1.Event_Book{Book: &tickwirev1.BookUpdate{Snapshot: true,
		Bids: []*tickwirev1.Level{{Price: 10, Size: 1}}, Asks: []*tickwirev1.Level{{Price: 11, Size: 1}}}}}
	delta := func() *tickwirev1.Event {
		return &tickwirev1.Event{Instrument: inst, Body: &tickwirev1.Event_Book{Book: &tickwirev1.BookUpdate{
			Bids: []*tickwirev1.Level{{Price: 10, Size: 2}}}}}
	}
	bad := &tickwirev1.Event{Instrument: inst, Body: &tickwirev1.Event_Trade{Trade: &tickwirev1.Trade{Price: 10, Size: 0}}}
	src := &script{events: []*tickwirev1.Event{info, snap, delta(), delta(), bad, proto.Clone(snap).(*tickwirev1.Event), delta()}, snapshots: make(chan string, 1), step: make(chan struct{})}
	rec := &recorder{}
	clock := time.Unix(1_700_000_000, 0)
	p, err := ingest.New(src, rec, nil, ingest.Config{Now: func() time.Time { return clock }}, nil, prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	next := func() { src.step <- struct{}{}; <-src.step }
	next() // info
	next() // snapshot
	next() // delta: published as seq 3
	p.OnPublishError(inst, uint64(clock.Unix()), 3, errors.New("ack timeout"))
	next() // delta: dropped, snapshot requested
	if got := <-src.snapshots; got != inst {
		t.Fatalf("snapshot requested for %q", got)
	}
	next() // bad trade: dropped while awaiting the snapshot
	next() // snapshot: new epoch, seq 1
	next() // delta: seq 2
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	e0 := uint64(clock.Unix())
	want := [][2]uint64{{e0, 1}, {e0, 2}, {e0, 3}, {e0 + 1, 1}, {e0 + 1, 2}}
	if len(rec.evs) != len(want) {
		t.Fatalf("published %d events, want %d", len(rec.evs), len(want))
	}
	for i, ev := range rec.evs {
		if ev.GetEpoch() != want[i][0] || ev.GetSeq() != want[i][1] {
			t.Fatalf("event %d at %d/%d, want %v", i, ev.GetEpoch(), ev.GetSeq(), want[i])
		}
	}
	if !rec.evs[3].GetBook().GetSnapshot() {
		t.Fatal("new epoch does not start with a snapshot")
	}
}
