// Command ingest reads market events from a source (the synthetic market, a venue's live feed,
// a recorded capture or a history file), normalizes and sequences them, and publishes them to
// NATS JetStream for feed.
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/alecthomas/kong"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/tickwire/tickwire/internal/bus"
	"github.com/tickwire/tickwire/internal/ingest"
	"github.com/tickwire/tickwire/internal/lease"
	"github.com/tickwire/tickwire/internal/natsflags"
)

// Exit codes.
const (
	exitOK     = 0
	exitFail   = 1 // a component failed at run time
	exitConfig = 2 // invalid flags, environment or config file
)

func main() {
	var cfg config
	parser, err := kong.New(&cfg,
		kong.Name("ingest"),
		kong.Description("Tickwire ingest: normalize live market events and publish them, sequenced per instrument, to NATS JetStream.\n\n"+
			"Sources:\n"+
			"  ingest --source kraken --instruments XBT/USD,ETH/USD                      (live; --kraken-api v2 with BTC/USD names)\n"+
			"  ingest --source binance --binance-market futures --instruments BTCUSDT\n"+
			"  ingest --source coinbase --instruments BTC-USD,ETH-USD --record cb.ndjson   (live, recording a capture)\n"+
			"  ingest --source capture --capture-format kraken-v1 --capture-file ../shared/data/kraken-v1-2021-cryptofeed/ws_frames.ndjson --speed 10\n"+
			"  ingest --source file --file-format tardis-trades --file bitmex_trades_XBTUSD.csv --speed 0\n\n"+
			"Every flag can also be set in the environment as TICKWIRE_<FLAG> (e.g. TICKWIRE_NATS_URL) or in a JSON --config file; flags win over the environment, which wins over the file."),
		kong.DefaultEnvars(envPrefix),
		kong.Configuration(kong.JSON),
		kong.UsageOnError(),
		natsflags.Vars(bus.RoleIngest, envPrefix),
	)
	if err != nil {
		fmt.Fprintln(os.Stderr, "ingest:", err)
		os.Exit(exitConfig)
	}
	if _, err := parser.Parse(os.Args[1:]); err != nil {
		parser.Errorf("%s", err)
		os.Exit(exitConfig)
	}
	logger := newLogger(&cfg)
	logger.Info("starting ingest", cfg.logAttrs()...)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, &cfg, logger); err != nil {
		logger.Error("ingest failed", "err", err)
		os.Exit(exitFail)
	}
	logger.Info("ingest stopped")
	os.Exit(exitOK)
}

func newLogger(cfg *config) *slog.Logger {
	opts := &slog.HandlerOptions{Level: cfg.slogLevel()}
	if cfg.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(os.Stderr, opts))
	}
	return slog.New(slog.NewTextHandler(os.Stderr, opts))
}

// run wires the components and runs them until ctx ends or one fails. Shutdown order:
// pipeline (flushes publishes) -> bus (drains) -> HTTP -> embedded NATS.
func run(ctx context.Context, cfg *config, logger *slog.Logger) error {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	url := cfg.NATSURL
	auth, err := cfg.NATSAuth.Auth(envPrefix) // validated
	if err != nil {
		return err
	}
	if cfg.Embed.On {
		srv, u, a, err := cfg.Embed.Start(&cfg.NATSAuth, &cfg.NATSTLS, bus.RoleIngest, reg, logger)
		if err != nil {
			return err
		}
		defer srv.Shutdown()
		url, auth = u, a
	}

	// Under a lease, events go out on a connection of their own, which losing the lease cuts
	// with what it holds (bus.Fence): nothing published before can be stored after another
	// process took over.
	b, err := bus.Connect(ctx, bus.Config{URL: url, Name: "tickwire-ingest", Auth: auth, FencedPublishing: cfg.Lease != ""}, logger, reg)
	if err != nil {
		return err
	}
	defer func() {
		if err := b.Close(); err != nil {
			logger.Warn("closing NATS", "err", err)
		}
	}()
	if err := ensureStream(ctx, b, cfg, logger); err != nil {
		if ctx.Err() != nil {
			return nil // interrupted while waiting for NATS
		}
		return err
	}

	src, closeSrc, err := newSource(cfg, b, logger, reg)
	if err != nil {
		return err
	}
	defer func() {
		if err := closeSrc(); err != nil {
			logger.Warn("closing source", "err", err)
		}
	}()
	var (
		pcfg ingest.Config
		l    *lease.Lease
	)
	if cfg.Lease != "" {
		js, err := jetstream.New(b.Conn())
		if err != nil {
			return fmt.Errorf("lease: %w", err)
		}
		l, err = lease.New(ctx, js, lease.Config{Name: "ingest." + cfg.Lease, Holder: cfg.LeaseHolder, TTL: cfg.LeaseTTL,
			Replicas: cfg.Stream.StreamReplicas, OnChange: ingest.FenceOnLoss(b, logger)}, logger, reg)
		if err != nil {
			return err
		}
		pcfg = ingest.Config{Lease: l, Stored: b, StandbyEvents: cfg.StandbyEvents}
	}
	p, err := ingest.New(src, b, b, pcfg, logger, reg)
	if err != nil {
		return err
	}
	b.SetPublishErrorHandler(p.OnPublishError)
	// Feeds whose copy of a book broke ask for a fresh snapshot (docs/PROTOCOL.md, StreamStatus).
	if sr := ingest.NewSnapshotRequests(src, time.Second, reg); sr != nil {
		stop, err := b.ServeSnapshotRequests(sr.Handle)
		if err != nil {
			return err
		}
		defer stop()
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
	)
	// start runs f in an owned goroutine; its failure cancels everything.
	start := func(name string, f func(context.Context) error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := f(ctx); err != nil {
				mu.Lock()
				errs = append(errs, fmt.Errorf("%s: %w", name, err))
				mu.Unlock()
			}
			cancel()
		}()
	}
	// The lease outlives the pipeline: it is released only after the last publish was flushed,
	// so that a standby taking over reads every event this process published.
	var leaseDone chan struct{}
	if l != nil {
		leaseCtx, stopLease := context.WithCancel(context.WithoutCancel(ctx))
		leaseDone = make(chan struct{})
		go func() {
			defer close(leaseDone)
			_ = l.Run(leaseCtx) // errs only when run twice
		}()
		defer func() { stopLease(); <-leaseDone }()
	}
	start("pipeline", p.Run)
	if cfg.MetricsListen != "" {
		start("http", func(ctx context.Context) error { return serveHTTP(ctx, cfg.MetricsListen, reg, b, l, logger) })
	}
	wg.Wait()
	return errors.Join(errs...)
}

// ensureStream creates or updates the stream, retrying while NATS is not reachable yet.
func ensureStream(ctx context.Context, b *bus.Bus, cfg *config, logger *slog.Logger) error {
	sc := cfg.Stream.Config()
	wait := 250 * time.Millisecond
	for {
		rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		err := b.EnsureStream(rctx, sc)
		cancel()
		if err == nil {
			return nil
		}
		logger.Warn("stream not ready; retrying", "err", err, "in", wait)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(wait):
		}
		wait = min(2*wait, 5*time.Second)
	}
}

// serveHTTP serves /metrics and /healthz (200 while connected to NATS; the body says "active"
// or "standby" under a lease) until ctx ends.
func serveHTTP(ctx context.Context, addr string, reg *prometheus.Registry, b *bus.Bus, l *lease.Lease, logger *slog.Logger) error {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		if !b.Connected() {
			http.Error(w, "nats disconnected", http.StatusServiceUnavailable)
			return
		}
		switch {
		case l == nil:
			_, _ = w.Write([]byte("ok\n"))
		case l.Held():
			_, _ = w.Write([]byte("ok active\n"))
		default:
			_, _ = w.Write([]byte("ok standby\n"))
		}
	})
	srv := &http.Server{Addr: addr, Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.ListenAndServe() }()
	logger.Info("http listening", "addr", addr)
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return err
	}
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
