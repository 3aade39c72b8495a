package ingest_test

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/tickwire/tickwire/internal/bus"
	"github.com/tickwire/tickwire/internal/bus/bustest"
	"github.com/tickwire/tickwire/internal/ingest"
	"github.com/tickwire/tickwire/internal/lease"
	"github.com/tickwire/tickwire/internal/testwait"
	tickwirev1 "github.com/tickwire/tickwire/pkg/proto/tickwire/v1"
)

// natsReplica is an ingest process on real NATS: its own connection as the ingest user, a
// real lease, a pipeline over a scripted source.
type natsReplica struct {
	b           *bus.Bus
	src         *scriptSource
	l           *lease.Lease
	stopLease   context.CancelFunc
	stopPipe    context.CancelFunc
	pipe, lDone chan error
	once        sync.Once
}

func startNATSReplica(t *testing.T, s *bus.Embedded, evs []*tickwirev1.Event, who string) *natsReplica {
	t.Helper()
	return startNATSReplicaVia(t, s, s.ClientURL(), evs, who)
}

// startNATSReplicaVia is startNATSReplica connecting to url (a proxy in front of s), wired
// as cmd/ingest wires a process with --lease: fenced publishing, fenced when the lease is lost.
func startNATSReplicaVia(t *testing.T, s *bus.Embedded, url string, evs []*tickwirev1.Event, who string) *natsReplica {
	t.Helper()
	b, err := bus.Connect(context.Background(), bus.Config{URL: url, Name: who, Auth: s.Auth(string(bus.RoleIngest)),
		FencedPublishing: true, ReconnectWait: 50 * time.Millisecond}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	r := &natsReplica{b: b, src: newScriptSource(evs), pipe: make(chan error, 1), lDone: make(chan error, 1)}
	js, err := jetstream.New(r.b.Conn())
	if err != nil {
		t.Fatal(err)
	}
	if r.l, err = lease.New(context.Background(), js, lease.Config{Name: "ingest.script", Holder: who, TTL: time.Second,
		OnChange: ingest.FenceOnLoss(r.b, nil)}, nil, nil); err != nil {
		t.Fatal(err)
	}
	p, err := ingest.New(r.src, r.b, r.b, ingest.Config{Lease: r.l, Stored: r.b}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	r.b.SetPublishErrorHandler(p.OnPublishError)
	lctx, stopLease := context.WithCancel(context.Background())
	pctx, stopPipe := context.WithCancel(context.Background())
	r.stopLease, r.stopPipe = stopLease, stopPipe
	go func() { r.lDone <- r.l.Run(lctx) }()
	go func() { r.pipe <- p.Run(pctx) }()
	t.Cleanup(r.stop)
	return r
}

// stop stops the pipeline, then the lease (idempotent).
func (r *natsReplica) stop() {
	r.once.Do(func() {
		r.stopPipe()
		<-r.pipe
		r.stopLease()
		<-r.lDone
	})
}

// TestFailoverOnNATS: two ingest processes for one source on a real NATS server with a real
// lease. The active one is cut off from NATS after publishing part of the venue's events
// (its renewals fail; it never releases); the standby gains the lease once the key expires
// and the stream holds each instrument's events exactly once, in one epoch.
func TestFailoverOnNATS(t *testing.T) {
	s := bustest.Start(t)
	reader := bustest.Connect(t, s) // creates the stream
	evs := venueScript(200, 1, 1)
	a := startNATSReplica(t, s, evs, "a")
	testwait.For(t, 10*time.Second, "a holds the lease", a.l.Held)
	b := startNATSReplica(t, s, evs, "b")

	a.src.upTo(t, 150)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := a.b.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	b.src.upTo(t, 170)
	if b.l.Held() {
		t.Fatal("b holds the lease while a renews it")
	}
	_ = a.b.Close() // a dies: no more renewals, no release
	testwait.For(t, 10*time.Second, "b holds the lease", b.l.Held)
	b.src.upTo(t, len(evs))
	if err := b.b.Flush(ctx); err != nil {
		t.Fatal(err)
	}

	stream := &memStream{evs: storedEvents(ctx, t, reader)}
	for _, inst := range []string{"test:X", "test:Y"} {
		wantChain(t, stream, inst, evs)
	}
}

// TestFailoverFencesCutOffHolder: the active ingest is cut off from NATS (a proxy resets its
// connections and refuses new ones) after publishing part of the venue's events, and goes on
// publishing into its connection's reconnect buffer until its lease runs out. The standby
// takes over and publishes the rest. When the link comes back, long after the stream's
// de-duplication window, what the old holder buffered must not be stored: losing the lease
// fenced its publish connection. Without the fence (FenceOnLoss not wired) its buffered
// events were stored again behind the new holder's, each instrument's positions twice.
func TestFailoverFencesCutOffHolder(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s := bustest.Start(t)
	reader := bustest.ConnectAs(t, s, bustest.TestUser)
	const window = 200 * time.Millisecond // the stream's de-duplication window, short for the test
	if err := reader.EnsureStream(ctx, bus.StreamConfig{Duplicates: window}); err != nil {
		t.Fatal(err)
	}
	proxy := bustest.Proxy(t, s)

	evs := venueScript(200, 1, 1)
	a := startNATSReplicaVia(t, s, "nats://"+proxy.Addr(), evs, "a")
	testwait.For(t, 10*time.Second, "a holds the lease", a.l.Held)
	b := startNATSReplica(t, s, evs, "b")
	a.src.upTo(t, 150)
	if err := a.b.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	b.src.upTo(t, 170)

	proxy.Cut()
	testwait.For(t, 5*time.Second, "a sees the cut", func() bool { return !a.b.Connected() })
	a.src.upTo(t, 170) // still the holder for a moment: into the reconnect buffer
	if !a.l.Held() {
		t.Skip("a's lease ran out before it published into the reconnect buffer (a slow machine): nothing to fence")
	}
	testwait.For(t, 10*time.Second, "a loses the lease", func() bool { return !a.l.Held() })
	testwait.For(t, 10*time.Second, "b holds the lease", b.l.Held)
	b.src.upTo(t, len(evs))
	if err := b.b.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * window) // b's message ids leave the window: a late copy would be stored

	proxy.Restore()
	testwait.For(t, 10*time.Second, "a reconnects", a.b.Connected)
	// What a's publish connection held would be sent right after reconnecting, before this
	// event (of another instrument) on the same connection.
	if err := a.b.Publish(ctx, info("test:Z")); err != nil {
		t.Fatal(err)
	}
	if err := a.b.Flush(ctx); err != nil && !errors.Is(err, bus.ErrPublish) { // its publishes while cut failed
		t.Fatal(err)
	}
	stream := &memStream{evs: storedEvents(ctx, t, reader)}
	for _, inst := range []string{"test:X", "test:Y"} {
		wantChain(t, stream, inst, evs)
	}
}

// storedEvents returns every event r's stream holds, in stream order.
func storedEvents(ctx context.Context, t *testing.T, r *bus.Bus) []*tickwirev1.Event {
	t.Helper()
	var (
		mu  sync.Mutex
		got []*tickwirev1.Event
	)
	c, err := r.ConsumeEvents(ctx, bus.ConsumeOptions{}, func(ev *tickwirev1.Event) error {
		mu.Lock()
		defer mu.Unlock()
		got = append(got, ev)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Stop()
	select {
	case <-c.CaughtUp():
	case <-ctx.Done():
		t.Fatal("the reader did not catch up")
	}
	mu.Lock()
	defer mu.Unlock()
	return slices.Clone(got)
}
