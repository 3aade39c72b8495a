package bus_test

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/tickwire/tickwire/internal/bus"
	"github.com/tickwire/tickwire/internal/bus/bustest"
	"github.com/tickwire/tickwire/internal/testwait"
	tickwirev1 "github.com/tickwire/tickwire/pkg/proto/tickwire/v1"
)

func trade(inst string, epoch, seq uint64) *tickwirev1.Event {
	return &tickwirev1.Event{Instrument: inst, Epoch: epoch, Seq: seq,
		Body: &tickwirev1.Event_Trade{Trade: &tickwirev1.Trade{Price: 100, Size: 1}}}
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestPublishDedupLastPositionConsume(t *testing.T) {
	ctx := ctxT(t)
	srv := bustest.Start(t)
	b := bustest.Connect(t, srv)

	// Empty stream: consumer is caught up at once.
	c0, err := b.ConsumeEvents(ctx, bus.ConsumeOptions{}, func(*tickwirev1.Event) error { return nil })
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-c0.CaughtUp():
	case <-time.After(5 * time.Second):
		t.Fatal("empty stream: not caught up")
	}
	c0.Stop()

	if _, _, found, err := b.LastPosition(ctx, "x:A"); err != nil || found {
		t.Fatalf("LastPosition on empty = %t, %v", found, err)
	}
	insts := []string{"x:A", "x:B/C"}
	for seq := uint64(1); seq <= 100; seq++ {
		for _, inst := range insts {
			if err := b.Publish(ctx, trade(inst, 7, seq)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := b.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	before, err := b.StreamState(ctx)
	if err != nil || before.Msgs < 2 || before.Msgs > 200 {
		t.Fatalf("stream state %+v, %v; want 200 events in 2 to 200 messages", before, err)
	}
	// A retried publish of an existing position is stored once. (Each is sent alone: Flush
	// sends what is queued before it.)
	for range 2 {
		if err := b.Publish(ctx, trade("x:D", 7, 1)); err != nil {
			t.Fatal(err)
		}
		if err := b.Flush(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if st, err := b.StreamState(ctx); err != nil || st.Msgs != before.Msgs+1 {
		t.Fatalf("stream state %+v, %v; want %d msgs", st, err, before.Msgs+1)
	}
	for _, inst := range insts {
		e, s, found, err := b.LastPosition(ctx, inst)
		if err != nil || !found || e != 7 || s != 100 {
			t.Fatalf("LastPosition(%s) = %d/%d %t %v", inst, e, s, found, err)
		}
	}
	// An undecodable message on an event subject is skipped.
	if _, err := b.Conn().Request("tickwire.events.x.A", []byte{0xff, 0xff}, 5*time.Second); err != nil {
		t.Fatal(err)
	}

	var mu sync.Mutex
	got := map[string]uint64{}
	c, err := b.ConsumeEvents(ctx, bus.ConsumeOptions{}, func(ev *tickwirev1.Event) error {
		mu.Lock()
		defer mu.Unlock()
		if want := got[ev.GetInstrument()] + 1; ev.GetSeq() != want {
			return fmt.Errorf("%s seq %d, want %d", ev.GetInstrument(), ev.GetSeq(), want)
		}
		got[ev.GetInstrument()] = ev.GetSeq()
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
	case <-time.After(10 * time.Second):
		t.Fatal("not caught up")
	}
	mu.Lock()
	if got["x:A"] != 100 || got["x:B/C"] != 100 || got["x:D"] != 1 {
		t.Fatalf("caught up at %v", got)
	}
	mu.Unlock()
	// Live events after catching up.
	if err := b.Publish(ctx, trade("x:A", 7, 101)); err != nil {
		t.Fatal(err)
	}
	testwait.For(t, 5*time.Second, "the live event", func() bool { mu.Lock(); defer mu.Unlock(); return got["x:A"] == 101 })
	// A handler error stops the consumer with that error.
	if err := b.Publish(ctx, trade("x:A", 7, 200)); err != nil {
		t.Fatal(err)
	}
	select {
	case <-c.Done():
		if c.Err() == nil {
			t.Fatal("no error")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("consumer did not stop on handler error")
	}
}

func TestConsumeFromSeq(t *testing.T) {
	ctx := ctxT(t)
	b := bustest.Connect(t, bustest.Start(t))
	for seq := uint64(1); seq <= 10; seq++ {
		if err := b.Publish(ctx, trade("x:A", 1, seq)); err != nil {
			t.Fatal(err)
		}
		// One message per event, so that stream seq 6 is event 6: Flush sends what is
		// queued before it (a batch is at least two events queued together).
		if err := b.Flush(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	var first uint64
	c, err := b.ConsumeEvents(ctx, bus.ConsumeOptions{StartSeq: 6}, func(ev *tickwirev1.Event) error {
		if first == 0 {
			first = ev.GetSeq()
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	<-c.CaughtUp()
	c.Stop()
	if first != 6 {
		t.Fatalf("first = %d", first)
	}
}

func TestEmbeddedShutdownIdempotent(t *testing.T) {
	s, err := bus.StartEmbedded(bus.EmbeddedConfig{Port: -1, DataDir: t.TempDir()}, nil)
	if err != nil {
		t.Fatal(err)
	}
	s.Shutdown()
	s.Shutdown()
	if _, err := bus.StartEmbedded(bus.EmbeddedConfig{Port: -1}, nil); !errors.Is(err, bus.ErrEmbedded) {
		t.Fatalf("no DataDir: %v", err)
	}
}

func TestConnectBeforeServer(t *testing.T) {
	// RetryOnFailedConnect: Connect succeeds with nothing listening; Close does not hang.
	b, err := bus.Connect(context.Background(), bus.Config{URL: "nats://127.0.0.1:1"}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if b.Connected() {
		t.Fatal("connected to nothing")
	}
	done := make(chan struct{})
	go func() { _ = b.Close(); _ = b.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Close hung")
	}
}

func TestConsumeFilteredAndNoLeaks(t *testing.T) {
	base := runtime.NumGoroutine()
	func() {
		ctx := ctxT(t)
		srv, err := bus.StartEmbedded(bus.EmbeddedConfig{Port: -1, DataDir: t.TempDir(), Users: bustest.Users()}, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer srv.Shutdown()
		b, err := bus.Connect(ctx, bus.Config{URL: srv.ClientURL(), Auth: srv.Auth(bustest.TestUser)}, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer b.Close()
		if err := b.EnsureStream(ctx, bus.StreamConfig{}); err != nil {
			t.Fatal(err)
		}
		for seq := uint64(1); seq <= 5; seq++ {
			for _, inst := range []string{"x:A", "x:B"} {
				if err := b.Publish(ctx, trade(inst, 1, seq)); err != nil {
					t.Fatal(err)
				}
			}
		}
		if err := b.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		subj, _ := bus.EventSubject("x:A")
		var n int
		c, err := b.ConsumeEvents(ctx, bus.ConsumeOptions{Subjects: []string{subj}}, func(ev *tickwirev1.Event) error {
			if ev.GetInstrument() != "x:A" {
				return fmt.Errorf("got %s", ev.GetInstrument())
			}
			n++
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		select {
		case <-c.CaughtUp():
		case <-time.After(5 * time.Second):
			t.Fatal("filtered consumer not caught up")
		}
		c.Stop()
		if n != 5 || c.Err() != nil {
			t.Fatalf("delivered %d, err %v", n, c.Err())
		}
	}()
	if !testwait.Until(5*time.Second, func() bool { return runtime.NumGoroutine() <= base }) {
		g := runtime.NumGoroutine()
		buf := make([]byte, 1<<16)
		t.Fatalf("%d goroutines after shutdown, %d before\n%s", g, base, buf[:runtime.Stack(buf, true)])
	}
}
