package main

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/tickwire/tickwire/internal/loadgen"
	"github.com/tickwire/tickwire/internal/natsflags"
)

type soakCmd struct {
	Spawn         bool     `help:"Start NATS and the feed as child processes on random loopback ports (the default when no target is given)."`
	InProcess     bool     `name:"inprocess" help:"Run NATS and the feed inside this process."`
	FeedURL       string   `name:"feed-url" help:"WebSocket URL of a running feed (loopback only)."`
	NatsURL       string   `name:"nats-url" help:"NATS URL of the running system (loopback only)."`
	FeedPID       int      `name:"feed-pid" help:"PID of the running feed (default: found by its listening port)."`
	FeedBin       string   `name:"feed-bin" default:"bin/feed" help:"Feed binary for --spawn."`
	FeedArg       []string `name:"feed-arg" help:"Extra flag for the spawned feed (repeatable)."`
	FeedEmbedNats bool     `name:"feed-embed-nats" help:"With --spawn: run NATS inside the feed process."`
	KeepTemp      bool     `name:"keep-temp" help:"Keep the spawned processes' temp dir (logs, store)."`
	// With --feed-url and --nats-url: who this tool publishes as (the ingest role; by default
	// its password in .data/nats-auth).
	NATSAuth natsflags.Flags `embed:""`

	Clients          int           `default:"200" help:"SDK clients (pkg/client), each with its own connection."`
	Instruments      int           `default:"100" help:"Instruments."`
	Subscribers      int           `default:"10" help:"Subscribers per instrument."`
	Channels         string        `default:"quote,book,trades" help:"Channels: quote,book,trades,candles,stats or all."`
	Depth            uint32        `default:"10" help:"Book depth requested."`
	Rate             float64       `default:"1000" help:"Events/s into NATS."`
	Duration         time.Duration `default:"10m" help:"How long the clients are held with data flowing (setup and drain on top)."`
	Interval         time.Duration `default:"1m" help:"Progress row interval."`
	HeartbeatTimeout time.Duration `name:"heartbeat-timeout" help:"The SDK's Options.HeartbeatTimeout (default: the SDK's)."`
	WriteTimeout     time.Duration `name:"write-timeout" help:"The SDK's Options.WriteTimeout (default: the SDK's)."`
	Seed             uint64        `default:"1" help:"Synthetic market seed."`

	JSON     string     `name:"json" help:"Also write the report as JSON to this file (- for stdout)." placeholder:"FILE"`
	LogLevel slog.Level `name:"log-level" default:"warn" help:"debug, info, warn or error (the SDK clients log lost connections at warn)."`
}

func (c *soakCmd) Help() string {
	return `Holds N bots on the public Go SDK (pkg/client) connected to a feed for a long time with data flowing, and reports every reconnect with its cause and the updates delivered against those expected. It passes (exit 0) only with no reconnect, every expected update delivered once and no broken stream.

Example (docs/BENCHMARKS.md, SDK soak):
  go build -o bin/feed ./cmd/feed && go build -o bin/loadgen ./cmd/loadgen
  bin/loadgen soak --clients 200 --duration 10m`
}

func (c *soakCmd) Run() error {
	chans, err := loadgen.ParseChannels(c.Channels)
	if err != nil {
		return err
	}
	auth, err := c.NATSAuth.Auth("TICKWIRE")
	if err != nil {
		return err
	}
	cfg := loadgen.SoakConfig{Spawn: c.Spawn, InProcess: c.InProcess, FeedURL: c.FeedURL, NATSURL: c.NatsURL,
		FeedPID: c.FeedPID, FeedBin: c.FeedBin, FeedArgs: c.FeedArg, FeedEmbedNATS: c.FeedEmbedNats, KeepTemp: c.KeepTemp,
		NATSAuth: auth, Clients: c.Clients, Instruments: c.Instruments, Subscribers: c.Subscribers, Channels: chans, Depth: c.Depth,
		Rate: c.Rate, Duration: c.Duration, Interval: c.Interval, HeartbeatTimeout: c.HeartbeatTimeout,
		WriteTimeout: c.WriteTimeout, Seed: c.Seed}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: c.LogLevel}))
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	rep, err := loadgen.Soak(ctx, cfg, log, os.Stderr)
	if rep == nil {
		return err
	}
	return errors.Join(err, printReport(rep, c.JSON))
}
