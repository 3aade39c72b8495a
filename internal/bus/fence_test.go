package bus_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tickwire/tickwire/internal/bus"
	"github.com/tickwire/tickwire/internal/bus/bustest"
	"github.com/tickwire/tickwire/internal/chaos"
	"github.com/tickwire/tickwire/internal/testwait"
)

// A Bus publishing through a TCP proxy the test can cut, with fenced publishing.
func fencedBus(t *testing.T, s *bus.Embedded, cfg bus.Config) (*bus.Bus, *chaos.TCPProxy, *prometheus.Registry) {
	t.Helper()
	proxy := bustest.Proxy(t, s)
	cfg.URL, cfg.Auth = "nats://"+proxy.Addr(), s.Auth(string(bus.RoleIngest))
	cfg.FencedPublishing, cfg.ReconnectWait = true, 20*time.Millisecond
	reg := prometheus.NewRegistry()
	b, err := bus.Connect(context.Background(), cfg, nil, reg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	return b, proxy, reg
}

// Events published while the connection is cut wait in nats.go's reconnect buffer. nats.go
// reports them as failed (ErrDisconnected) at once, yet sends them when the connection comes
// back, however late, and they are stored: the case without a Fence shows it. Fence drops
// them, and the Bus publishes again afterwards on a new connection.
func TestFenceDropsWhatTheConnectionHolds(t *testing.T) {
	for _, fence := range []bool{false, true} {
		t.Run(fmt.Sprintf("fence=%v", fence), func(t *testing.T) {
			ctx := ctxT(t)
			s := bustest.Start(t)
			reader := bustest.Connect(t, s) // creates the stream
			b, proxy, _ := fencedBus(t, s, bus.Config{MaxBatchEvents: 1})

			if err := b.Publish(ctx, trade("x:A", 1, 1)); err != nil {
				t.Fatal(err)
			}
			if err := b.Flush(ctx); err != nil {
				t.Fatal(err)
			}
			proxy.Cut()
			// Published before nats.go sees the cut, they would be lost with the socket, not
			// buffered.
			testwait.For(t, 5*time.Second, "the publish connection sees the cut", func() bool { return bus.PublishConnDownForTest(b) })
			for seq := uint64(2); seq <= 10; seq++ {
				if err := b.Publish(ctx, trade("x:A", 1, seq)); err != nil {
					t.Fatal(err)
				}
			}
			// Flush hands the events to the connection (its marker passes the batcher), then
			// fails: nats.go fails the acks of a disconnected connection, or they do not come.
			fctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
			err := b.Flush(fctx)
			cancel()
			if err == nil {
				t.Fatal("Flush while cut succeeded")
			}

			if fence {
				if err := b.Fence(); err != nil {
					t.Fatal(err)
				}
				if n := b.PublishPending(); n != 0 {
					t.Fatalf("%d publishes pending after the fence", n)
				}
			}
			proxy.Restore()
			testwait.For(t, 5*time.Second, "the bus reconnects", b.Connected)
			if err := b.Publish(ctx, trade("x:B", 1, 1)); err != nil {
				t.Fatal(err)
			}
			if err := b.Flush(ctx); err != nil && !errors.Is(err, bus.ErrPublish) {
				t.Fatalf("Flush after the cut: %v", err)
			}
			// What the reconnected publish connection held went out before x:B on it; the
			// fenced one is closed for good.
			want, wantSeq := 11, uint64(10)
			if fence {
				want, wantSeq = 2, 1
			}
			if n := bustest.StoredEvents(t, reader); n != want {
				t.Fatalf("%d events stored, want %d", n, want)
			}
			last, err := reader.LastEvent(ctx, "x:A")
			if err != nil || last.GetSeq() != wantSeq {
				t.Fatalf("x:A's last stored event: %v %v, want seq %d", last, err, wantSeq)
			}
		})
	}
}

// Events still queued (the batcher has not sent them) when Fence comes are dropped too.
func TestFenceDropsTheQueue(t *testing.T) {
	ctx := ctxT(t)
	s := bustest.Start(t)
	reader := bustest.Connect(t, s)
	hold := make(chan struct{})
	cfg := bus.Config{}
	bus.SetBeforePassForTest(&cfg, func() { <-hold })
	b, _, reg := fencedBus(t, s, cfg)
	for seq := uint64(1); seq <= 5; seq++ {
		if err := b.Publish(ctx, trade("x:A", 1, seq)); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Fence(); err != nil {
		t.Fatal(err)
	}
	if err := b.Publish(ctx, trade("x:B", 1, 1)); err != nil { // queued after the fence: sent
		t.Fatal(err)
	}
	close(hold)
	if err := b.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if n := bustest.StoredEvents(t, reader); n != 1 {
		t.Fatalf("%d events stored, want 1 (x:B, queued after the fence)", n)
	}
	// The held pass took the first event off the queue before the fence; it is dropped with
	// the four still queued.
	if got := counterOf(t, reg, "tickwire_bus_fenced_total"); got != 5 {
		t.Fatalf("tickwire_bus_fenced_total = %v, want 5", got)
	}
}

// A Fence while the batcher opens the publish connection (the first publish, or the first
// after a Fence) finds no connection to cut: the events of the pass that opened it must still
// be dropped, not sent on the new connection.
func TestFenceWhilePublishConnectionOpens(t *testing.T) {
	ctx := ctxT(t)
	s := bustest.Start(t)
	reader := bustest.Connect(t, s)
	var b *bus.Bus
	fenced := false
	cfg := bus.Config{}
	bus.SetAfterPublishDialForTest(&cfg, func() { // the batcher's goroutine
		if !fenced {
			fenced = true
			if err := b.Fence(); err != nil {
				t.Error(err)
			}
		}
	})
	b, _, reg := fencedBus(t, s, cfg)
	if err := b.Publish(ctx, trade("x:A", 1, 1)); err != nil {
		t.Fatal(err)
	}
	if err := b.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if err := b.Publish(ctx, trade("x:B", 1, 1)); err != nil { // after the fence: sent
		t.Fatal(err)
	}
	if err := b.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if n := bustest.StoredEvents(t, reader); n != 1 {
		t.Fatalf("%d events stored, want 1 (x:B, published after the fence)", n)
	}
	if got := counterOf(t, reg, "tickwire_bus_fenced_total"); got != 1 {
		t.Fatalf("tickwire_bus_fenced_total = %v, want 1", got)
	}
}

func TestFenceNeedsFencedPublishing(t *testing.T) {
	s := bustest.Start(t)
	b := bustest.Connect(t, s)
	if err := b.Fence(); !errors.Is(err, bus.ErrNotFenceable) {
		t.Fatalf("Fence = %v, want ErrNotFenceable", err)
	}
}
