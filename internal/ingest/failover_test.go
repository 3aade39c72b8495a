package ingest_test

import (
	"context"
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
	r := &natsReplica{b: bustest.ConnectAs(t, s, string(bus.RoleIngest)), src: newScriptSource(evs),
		pipe: make(chan error, 1), lDone: make(chan error, 1)}
	js, err := jetstream.New(r.b.Conn())
	if err != nil {
		t.Fatal(err)
	}
	if r.l, err = lease.New(context.Background(), js, lease.Config{Name: "ingest.script", Holder: who, TTL: time.Second}, nil, nil); err != nil {
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

	got := map[string][]*tickwirev1.Event{}
	var mu sync.Mutex
	c, err := reader.ConsumeEvents(ctx, bus.ConsumeOptions{}, func(ev *tickwirev1.Event) error {
		mu.Lock()
		defer mu.Unlock()
		got[ev.GetInstrument()] = append(got[ev.GetInstrument()], ev)
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
	stream := &memStream{}
	for _, inst := range []string{"test:X", "test:Y"} {
		stream.evs = append(stream.evs, got[inst]...)
		wantChain(t, stream, inst, evs)
	}
}
