// Command chaos runs Tickwire's cluster on this machine (3 NATS nodes with the event stream at
// R3, 2 ingest processes under a lease, 3 feed replicas behind HAProxy) under load, applies
// each fault in turn (kill -9 and restart a NATS node, the NATS node leading the stream, a feed
// replica, the active ingest; cut the leading node off the others and heal it), and reports
// what clients went through: acknowledged writes lost, wrong client books, gaps not healed,
// reconnects that needed a snapshot instead of a resume, and the longest silence per fault.
// It exits 1 when a check fails. `make chaos` runs it; `make chaos CHAOS_FLAGS=--short` is the
// shortened run CI makes.
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/alecthomas/kong"

	"github.com/tickwire/tickwire/internal/chaos"
)

type cli struct {
	Short       bool          `help:"The shortened run CI makes: fewer clients, shorter faults."`
	Clients     int           `default:"20" help:"SDK clients through the load balancer."`
	PerClient   int           `default:"4" help:"Instruments each client subscribes (book, quote, trades)."`
	Instruments int           `default:"20" help:"Synthetic instruments."`
	Rate        int           `default:"1000" help:"Synthetic events per second."`
	Warmup      time.Duration `default:"10s" help:"Load before the first fault."`
	FaultFor    time.Duration `default:"5s" help:"How long each fault lasts (a process down, a node cut off)."`
	Settle      time.Duration `default:"15s" help:"Time after each fault is healed, still counted in its window."`
	Faults      []string      `help:"Faults to apply, in order (default all: nats-node, nats-leader, feed, ingest, partition)."`
	LeaseTTL    time.Duration `default:"3s" help:"The ingest lease TTL."`
	BinDir      string        `default:"bin" type:"path" help:"Where feed, ingest, tickctl and nats-server are."`
	WorkDir     string        `default:".data/chaos" type:"path" help:"Stores, logs and passwords of the run (emptied first)."`
	JSON        string        `type:"path" help:"Also write the report as JSON to this file."`
	LogLevel    string        `enum:"debug,info,warn,error" default:"info" help:"Log level (${enum})."`
}

func main() {
	var c cli
	kong.Parse(&c, kong.Name("chaos"), kong.Description("Kill and cut Tickwire's cluster under load, and prove what clients saw."))
	var lvl slog.Level
	_ = lvl.UnmarshalText([]byte(c.LogLevel))
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: lvl}))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	pass, err := run(ctx, c, logger)
	if err != nil {
		logger.Error("chaos failed", "err", err)
		os.Exit(2)
	}
	if !pass {
		os.Exit(1)
	}
}

func run(ctx context.Context, c cli, logger *slog.Logger) (bool, error) {
	if c.Short {
		c.Clients, c.Warmup, c.FaultFor, c.Settle = min(c.Clients, 8), 5*time.Second, 3*time.Second, 8*time.Second
	}
	if err := os.RemoveAll(c.WorkDir); err != nil {
		return false, err
	}
	root, err := os.Getwd()
	if err != nil {
		return false, err
	}
	cluster, err := chaos.StartCluster(ctx, chaos.ClusterConfig{BinDir: c.BinDir, ConfigDir: root, WorkDir: c.WorkDir,
		Instruments: c.Instruments, Rate: c.Rate, LeaseTTL: c.LeaseTTL, Logger: logger.With("component", "cluster")})
	if err != nil {
		return false, fmt.Errorf("start the cluster: %w", err)
	}
	defer func() {
		if err := cluster.Stop(); err != nil {
			logger.Warn("stopping the cluster", "err", err)
		}
	}()
	stopLoad := func() error {
		var errs []error
		for _, n := range []string{"ingest-1", "ingest-2"} {
			errs = append(errs, cluster.Kill(n))
		}
		return errors.Join(errs...)
	}
	rep, err := chaos.Run(ctx, chaos.Config{Clients: c.Clients, PerClient: c.PerClient, Instruments: c.Instruments,
		Warmup: c.Warmup, FaultFor: c.FaultFor, Settle: c.Settle, Faults: c.Faults, Logger: logger}, cluster, stopLoad)
	if rep != nil {
		rep.WriteTable(os.Stdout)
		if c.JSON != "" {
			if err := os.MkdirAll(filepath.Dir(c.JSON), 0o755); err != nil {
				return false, err
			}
			f, err := os.Create(c.JSON)
			if err != nil {
				return false, err
			}
			defer f.Close()
			if err := rep.WriteJSON(f); err != nil {
				return false, err
			}
		}
	}
	if err != nil {
		return false, err
	}
	return rep.Pass(), nil
}
