package ingest_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/tickwire/tickwire/internal/ingest"
	"github.com/tickwire/tickwire/internal/testwait"
	tickwirev1 "github.com/tickwire/tickwire/pkg/proto/tickwire/v1"
)

// memStream is a stream both pipelines publish to and read positions from.
type memStream struct {
	mu  sync.Mutex
	evs []*tickwirev1.Event
}

func (m *memStream) Publish(_ context.Context, ev *tickwirev1.Event) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.evs = append(m.evs, proto.CloneOf(ev))
	return nil
}

func (m *memStream) Flush(context.Context) error { return nil }

func (m *memStream) LastEvent(_ context.Context, inst string) (*tickwirev1.Event, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for i := len(m.evs) - 1; i >= 0; i-- {
		if m.evs[i].GetInstrument() == inst {
			return proto.CloneOf(m.evs[i]), nil
		}
	}
	return nil, nil
}

func (m *memStream) LastPosition(ctx context.Context, inst string) (epoch, seq uint64, found bool, err error) {
	ev, err := m.LastEvent(ctx, inst)
	if ev == nil {
		return 0, 0, false, err
	}
	return ev.GetEpoch(), ev.GetSeq(), true, nil
}

func (m *memStream) of(inst string) []*tickwirev1.Event {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []*tickwirev1.Event
	for _, ev := range m.evs {
		if ev.GetInstrument() == inst {
			out = append(out, ev)
		}
	}
	return out
}

func (m *memStream) len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.evs)
}

// venueScript is one venue's events for instruments test:X and test:Y, interleaved: each one's
// InstrumentInfo, book snapshot, then n deltas whose sizes are unique (size = i*mult + 1).
func venueScript(n int, multX, multY int64) []*tickwirev1.Event {
	var evs []*tickwirev1.Event
	for _, inst := range []string{"test:X", "test:Y"} {
		evs = append(evs, info(inst), bookEv(inst, true, 100, 1))
	}
	for i := range n {
		evs = append(evs, bookEv("test:X", false, 100+int64(i%5), int64(i)*multX+1), bookEv("test:Y", false, 200+int64(i%5), int64(i)*multY+1))
	}
	for _, ev := range evs {
		ev.IngestTimeNs = 0
	}
	return evs
}

// scriptSource emits its script up to a limit the test raises, counting what the pipeline took.
type scriptSource struct {
	evs   []*tickwirev1.Event
	limit chan int // raises the limit
	done  atomic.Int64
}

func newScriptSource(evs []*tickwirev1.Event) *scriptSource {
	return &scriptSource{evs: evs, limit: make(chan int, 16)}
}

func (s *scriptSource) Name() string { return "script" }

func (s *scriptSource) Run(ctx context.Context, emit func(*tickwirev1.Event) error) error {
	limit := 0
	for i := 0; ; i++ {
		for i >= limit || i >= len(s.evs) {
			select {
			case <-ctx.Done():
				return nil
			case limit = <-s.limit:
			}
		}
		if err := emit(proto.CloneOf(s.evs[i])); err != nil {
			return err
		}
		s.done.Store(int64(i + 1))
	}
}

// upTo lets the source emit events [0, n) and waits until the pipeline took them.
func (s *scriptSource) upTo(t *testing.T, n int) {
	t.Helper()
	s.limit <- n
	testwait.For(t, 10*time.Second, fmt.Sprintf("the pipeline took %d events", n), func() bool { return s.done.Load() >= int64(n) })
}

// holder is a lease the test holds or drops.
type holder struct{ held atomic.Bool }

func (h *holder) Held() bool { return h.held.Load() }

// clock is a replica's clock, which the test moves on.
type clock struct{ skew atomic.Int64 }

func (c *clock) now() time.Time          { return time.Now().Add(time.Duration(c.skew.Load())) }
func (c *clock) advance(d time.Duration) { c.skew.Add(int64(d)) }

// replica is one ingest process of two: its source, lease and pipeline, run until stop.
type replica struct {
	src    *scriptSource
	lease  *holder
	clock  *clock
	cancel context.CancelFunc
	done   chan error
	once   sync.Once
}

func startReplica(t *testing.T, stream *memStream, evs []*tickwirev1.Event, held bool) *replica {
	t.Helper()
	r := &replica{src: newScriptSource(evs), lease: &holder{}, clock: &clock{}, done: make(chan error, 1)}
	r.lease.held.Store(held)
	p, err := ingest.New(r.src, stream, stream, ingest.Config{Lease: r.lease, Stored: stream, TakeoverWait: 5 * time.Second, Now: r.clock.now}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	go func() { r.done <- p.Run(ctx) }()
	t.Cleanup(r.stop)
	return r
}

// stop ends the replica's pipeline and waits for it (idempotent).
func (r *replica) stop() {
	r.once.Do(func() {
		r.cancel()
		if err := <-r.done; err != nil {
			panic(err)
		}
	})
}

// contentOf is an event without its position and receive time, for comparing with the script.
func contentOf(ev *tickwirev1.Event) string {
	c := proto.CloneOf(ev)
	c.Epoch, c.Seq, c.IngestTimeNs = 0, 0, 0
	b, _ := proto.MarshalOptions{Deterministic: true}.Marshal(c)
	return string(b)
}

// wantChain checks that inst's stored events are exactly want's events of inst, in order, in
// one epoch from seq 1.
func wantChain(t *testing.T, stream *memStream, inst string, want []*tickwirev1.Event) {
	t.Helper()
	var exp []string
	for _, ev := range want {
		if ev.GetInstrument() == inst {
			exp = append(exp, contentOf(ev))
		}
	}
	got := stream.of(inst)
	if len(got) != len(exp) {
		t.Fatalf("%s: %d events stored, want %d", inst, len(got), len(exp))
	}
	for i, ev := range got {
		if ev.GetEpoch() != got[0].GetEpoch() || ev.GetSeq() != uint64(i+1) {
			t.Fatalf("%s: event %d at %d/%d; want %d/%d", inst, i, ev.GetEpoch(), ev.GetSeq(), got[0].GetEpoch(), i+1)
		}
		if contentOf(ev) != exp[i] {
			t.Fatalf("%s: event %d (seq %d) is not the script's", inst, i, ev.GetSeq())
		}
	}
}

// TestStandbyContinuesWithoutGap: the standby saw the same venue events as the active one;
// it takes over after the active stops, whether it was ahead of or behind the active's last
// published event, and each instrument's stored chain is the venue's events exactly once, in
// one epoch.
func TestStandbyContinuesWithoutGap(t *testing.T) {
	evs := venueScript(100, 1, 1)
	for _, tc := range []struct {
		name     string
		activeAt int // events the active published before it stopped
		standby  int // events the standby had seen by then
	}{
		{"standby ahead", 80, 95},
		{"standby behind", 80, 60},
		{"standby level", 80, 80},
		{"active stopped after the first events", 3, 50},
	} {
		t.Run(tc.name, func(t *testing.T) {
			stream := &memStream{}
			a := startReplica(t, stream, evs, true)
			b := startReplica(t, stream, evs, false)
			a.src.upTo(t, tc.activeAt)
			b.src.upTo(t, tc.standby)
			if n := stream.len(); n != tc.activeAt {
				t.Fatalf("%d events stored while a alone held the lease; want %d (the standby published?)", n, tc.activeAt)
			}
			a.stop()
			b.lease.held.Store(true)
			b.src.upTo(t, len(evs))
			b.stop()
			wantChain(t, stream, "test:X", evs)
			wantChain(t, stream, "test:Y", evs)
		})
	}
}

// TestTakeoverWithoutProofStartsNewEpoch: the standby's view of test:Y differs from what the
// active published (another market, or events lost between the two): test:Y alone starts a
// new epoch, from the standby's InstrumentInfo and snapshot; test:X continues.
func TestTakeoverWithoutProofStartsNewEpoch(t *testing.T) {
	evs := venueScript(100, 1, 1)
	other := venueScript(100, 1, 7) // test:Y's sizes differ
	stream := &memStream{}
	a := startReplica(t, stream, evs, true)
	b := startReplica(t, stream, other, false)
	a.src.upTo(t, 80)
	b.src.upTo(t, 90)
	a.stop()
	b.lease.held.Store(true)
	b.src.upTo(t, 94)
	if n := len(stream.of("test:Y")); n != 40 {
		t.Fatalf("test:Y: %d events stored; want the active's 40 while the standby waits for its proof", n)
	}
	b.clock.advance(6 * time.Second) // past TakeoverWait: no proof is coming
	b.src.upTo(t, len(evs))
	b.stop()

	wantChain(t, stream, "test:X", evs)
	ys := stream.of("test:Y")
	old := ys[0].GetEpoch()
	i := 0
	for i < len(ys) && ys[i].GetEpoch() == old {
		if ys[i].GetSeq() != uint64(i+1) {
			t.Fatalf("test:Y old epoch: event %d at seq %d", i, ys[i].GetSeq())
		}
		i++
	}
	var n int
	for _, ev := range evs[:80] {
		if ev.GetInstrument() == "test:Y" {
			n++
		}
	}
	if i != n {
		t.Fatalf("test:Y: %d events in the old epoch, want the active's %d", i, n)
	}
	rest := ys[i:]
	if len(rest) == 0 || rest[0].GetEpoch() <= old {
		t.Fatalf("test:Y: no new epoch after the takeover")
	}
	var want []*tickwirev1.Event
	for _, ev := range other {
		if ev.GetInstrument() == "test:Y" {
			want = append(want, ev)
		}
	}
	if len(rest) != len(want) {
		t.Fatalf("test:Y new epoch: %d events, want the standby's whole chain of %d", len(rest), len(want))
	}
	for k, ev := range rest {
		if ev.GetEpoch() != rest[0].GetEpoch() || ev.GetSeq() != uint64(k+1) || contentOf(ev) != contentOf(want[k]) {
			t.Fatalf("test:Y new epoch: event %d at %d/%d is not the standby's chain", k, ev.GetEpoch(), ev.GetSeq())
		}
	}
	if rest[0].GetInfo() == nil || !rest[1].GetBook().GetSnapshot() {
		t.Fatal("test:Y's new epoch does not start with its InstrumentInfo and book snapshot")
	}
}

// TestLostLeaseStopsPublishing: a holder whose lease lapses publishes nothing more.
func TestLostLeaseStopsPublishing(t *testing.T) {
	evs := venueScript(100, 1, 1)
	stream := &memStream{}
	a := startReplica(t, stream, evs, true)
	a.src.upTo(t, 50)
	a.lease.held.Store(false)
	a.src.upTo(t, len(evs))
	if n := stream.len(); n != 50 {
		t.Fatalf("%d events stored; want the 50 published while the lease was held", n)
	}
}
