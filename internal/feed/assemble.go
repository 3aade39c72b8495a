package feed

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/tickwire/tickwire/internal/bus"
)

// Setup is how a feed is wired to its NATS bus and its listener. Assemble is the one assembly
// that cmd/feed, the load generator's in-process target and the end-to-end tests share, so
// that what they run is what ships. (The feed package's own tests build a Server and enable
// replay, history and snapshot requests one at a time, to test each alone.)
type Setup struct {
	Config Config
	// Bus is what the feed consumes, and where it reads history for candles and delay tiers,
	// follows replay sessions and asks ingest for snapshots.
	Bus *bus.Bus
	// Listen is the public listener's address ("127.0.0.1:0": a random port).
	Listen string
	// UI serves the dashboard at "/"; nil: FallbackUI (how to build it).
	UI http.Handler
	// Logger and Registry: nil for none (a discarding logger, a private registry).
	Logger   *slog.Logger
	Registry *prometheus.Registry
	// PublicMetrics serves /metrics on the public listener (tests and the load generator, on
	// loopback); otherwise /metrics and /debug/ answer 404 there, for an admin listener to serve.
	PublicMetrics bool
	// Stream, when set, is created on the bus when it has none yet: whichever process starts
	// first creates it with the same settings.
	Stream *bus.StreamConfig
	// CheckpointInterval: the feed starts from the latest state checkpoint on the bus plus the
	// events after it, and takes one at most this often once ready (checkpoint.go); 0: off, the
	// whole stream is replayed at every start.
	CheckpointInterval time.Duration
}

// Assemble builds the Server and the Service that runs it. The caller may still add to the
// Server (revocations, a TLS listener through the Service) before Service.Run.
func Assemble(s Setup) (*Service, error) {
	if s.Bus == nil {
		return nil, fmt.Errorf("feed: assemble: no bus")
	}
	if s.Logger == nil {
		s.Logger = slog.New(slog.DiscardHandler)
	}
	if s.Registry == nil {
		s.Registry = prometheus.NewRegistry()
	}
	if s.UI == nil {
		s.UI = FallbackUI()
	}
	srv, err := New(s.Config, s.Logger, s.Registry)
	if err != nil {
		return nil, err
	}
	srv.EnableReplay(s.Bus)
	srv.EnableHistory(s.Bus)
	srv.EnableSnapshotRequests(s.Bus.RequestSnapshot)
	mux := http.NewServeMux()
	if s.PublicMetrics {
		mux.Handle("GET /metrics", promhttp.HandlerFor(s.Registry, promhttp.HandlerOpts{Registry: s.Registry}))
	} else {
		// Operators' endpoints live on an admin listener; say so plainly rather than let the
		// dashboard answer these paths as app routes.
		mux.Handle("/metrics", http.NotFoundHandler())
		mux.Handle("/debug/", http.NotFoundHandler())
	}
	mux.Handle("/", srv.Handler(s.UI))
	svc, err := NewService(srv, s.Bus, s.Listen, mux, s.Logger)
	if err != nil {
		return nil, err
	}
	svc.EnableCheckpoints(s.Bus, s.CheckpointInterval)
	if s.Stream != nil {
		cfg := *s.Stream
		svc.CreateStreamWith(func(ctx context.Context) error { return s.Bus.EnsureStream(ctx, cfg) })
	}
	return svc, nil
}
