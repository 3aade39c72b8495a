// Package bustest runs a real NATS server with JetStream in-process for tests.
package bustest

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tickwire/tickwire/internal/bus"
)

// Start starts an embedded NATS server with JetStream on a random port of 127.0.0.1, storing
// in t.TempDir(), and shuts it down in t.Cleanup. Connect to s.ClientURL().
func Start(t testing.TB) *bus.Embedded {
	t.Helper()
	return StartDir(t, t.TempDir())
}

// StartDir is Start with a given store directory, to restart a server on the same store.
func StartDir(t testing.TB, dir string) *bus.Embedded {
	t.Helper()
	s, err := bus.StartEmbedded(bus.EmbeddedConfig{Port: -1, DataDir: dir}, nil)
	if err != nil {
		t.Fatalf("bustest: start embedded NATS: %v", err)
	}
	t.Cleanup(s.Shutdown)
	return s
}

// Connect connects a Bus to s with a fresh metrics registry, ensures the event stream
// exists, and closes the Bus in t.Cleanup (before the server shuts down).
func Connect(t testing.TB, s *bus.Embedded) *bus.Bus {
	t.Helper()
	b, err := bus.Connect(context.Background(), bus.Config{URL: s.ClientURL(), Name: t.Name()},
		slog.New(slog.DiscardHandler), prometheus.NewRegistry())
	if err != nil {
		t.Fatalf("bustest: connect: %v", err)
	}
	t.Cleanup(func() { _ = b.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := b.EnsureStream(ctx, bus.StreamConfig{}); err != nil {
		t.Fatalf("bustest: ensure stream: %v", err)
	}
	return b
}
