// Command loadgen drives a Tickwire feed with many WebSocket clients over loopback and reports
// what it delivers (docs/BENCHMARKS.md, Load). It only parses flags and wires internal/loadgen.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/alecthomas/kong"

	"github.com/tickwire/tickwire/internal/bus"
	"github.com/tickwire/tickwire/internal/loadgen"
	"github.com/tickwire/tickwire/internal/natsflags"
	"github.com/tickwire/tickwire/internal/profile"
)

type cli struct {
	Run       runCmd       `cmd:"" default:"withargs" help:"Run a load test (the default command)."`
	Soak      soakCmd      `cmd:"" help:"Hold N SDK clients (pkg/client) connected for a long time: reconnects (must be 0) and delivered updates."`
	ServeNats serveNATSCmd `cmd:"" name:"serve-nats" hidden:"" help:"Run an embedded NATS server (child of --spawn)."`
}

type runCmd struct {
	Scenario string `help:"Preset: fanout-1k, latency-100k, fanout-5k, idle-10k, firehose, snapshot-latency, stalled, candles-abuse. Flags override it." placeholder:"NAME"`

	Target string `enum:"tickwire,centrifugo" default:"tickwire" help:"Server under load: tickwire, or centrifugo (a running Centrifugo v6: --centrifugo-url, --centrifugo-api, ...)."`

	// --target centrifugo (internal/loadgen/centrifugo.go).
	CentrifugoURL         string `name:"centrifugo-url" help:"Centrifugo's WebSocket endpoint (loopback only), e.g. ws://127.0.0.1:8000/connection/websocket." placeholder:"URL"`
	CentrifugoAPI         string `name:"centrifugo-api" help:"Centrifugo's HTTP API base (loopback only), e.g. http://127.0.0.1:8000/api; publications go to its /batch." placeholder:"URL"`
	CentrifugoAPIKey      string `name:"centrifugo-api-key" env:"CENTRIFUGO_API_KEY" help:"Centrifugo's http_api.key (X-API-Key)." placeholder:"KEY"`
	CentrifugoTokenSecret string `name:"centrifugo-token-secret" env:"CENTRIFUGO_TOKEN_SECRET" help:"Centrifugo's client.token.hmac_secret_key: clients connect with HS256 tokens (empty: no token)." placeholder:"SECRET"`
	CentrifugoPID         int    `name:"centrifugo-pid" help:"Centrifugo's pid, for its CPU and RSS (default: found by its listening port)."`
	CentrifugoNamespace   string `name:"centrifugo-namespace" help:"Channel namespace: channels are <ns>:0..instruments-1 (default md)."`
	CentrifugoPublishers  int    `name:"centrifugo-publishers" help:"HTTP API workers, one batch in flight each (default 4)."`
	CentrifugoBatch       int    `name:"centrifugo-batch" help:"Most publications per API request (default 100)."`

	Spawn         bool     `help:"Start NATS and the feed as child processes on random loopback ports (killed at the end)."`
	InProcess     bool     `name:"inprocess" help:"Run NATS and the feed inside this process (use with --cpuprofile)."`
	FeedURL       string   `name:"feed-url" help:"WebSocket URL of a running feed (loopback only), e.g. ws://127.0.0.1:8080/ws."`
	NatsURL       string   `name:"nats-url" help:"NATS URL of the running system (loopback only), e.g. nats://127.0.0.1:4222."`
	FeedPID       int      `name:"feed-pid" help:"PID of the running feed (default: found by its listening port)."`
	FeedBin       string   `name:"feed-bin" default:"bin/feed" help:"Feed binary for --spawn."`
	FeedArg       []string `name:"feed-arg" help:"Extra flag for the spawned feed (repeatable), e.g. --feed-arg=--owners=4."`
	FeedEmbedNats bool     `name:"feed-embed-nats" help:"With --spawn: run NATS inside the feed process (--embed-nats) instead of its own."`
	FeedProfile   string   `name:"feed-profile" help:"With --spawn: the feed writes a CPU profile of the run here (its --cpu-profile)." placeholder:"FILE"`
	NATSProfile   string   `name:"nats-profile" help:"With --spawn: NATS (its own process) writes a CPU profile of the run to FILE and its heap at the end to FILE.heap." placeholder:"FILE"`
	CPUProfile    string   `name:"cpuprofile" help:"Write this process's CPU profile here (with --inprocess: feed and load together)." placeholder:"FILE"`
	KeepTemp      bool     `name:"keep-temp" help:"Keep the spawned processes' temp dir (logs, store)."`

	// With --feed-url and --nats-url: the feed's admin listener (its /metrics), and who this
	// tool publishes as (the ingest role; by default its password in .data/nats-auth).
	FeedAdminURL string          `name:"feed-admin-url" default:"http://127.0.0.1:9102" help:"With --feed-url: the feed's admin listener (--admin-listen), for its /metrics (loopback only; empty: not read)."`
	NATSAuth     natsflags.Flags `embed:""`

	Clients         int           `help:"Connections (max 20000)."`
	Instruments     int           `help:"Instruments."`
	Subscribers     int           `help:"Subscribers per instrument."`
	Channels        string        `help:"Channels: quote,book,trades,candles,stats or all (default quote)."`
	Depth           uint32        `help:"Book depth requested."`
	Market          string        `enum:"synthetic,quotes" default:"synthetic" help:"Events: synthetic (books, trades, quotes as a venue sends them) or quotes (every event one quote delta per subscriber, like a Centrifugo publication)."`
	CompactQuotes   bool          `name:"compact-quotes" help:"Subscribe with compact_quotes (quote deltas as CompactQuote)."`
	Mode            string        `help:"step, fixed, idle, stalled or candles."`
	Rate            float64       `help:"Events/s: the first step's, or the fixed rate."`
	TargetDelivered float64       `name:"target-delivered" help:"Fixed/stalled modes: choose the event rate that delivers this many updates/s."`
	StepFactor      float64       `name:"step-factor" help:"Rate multiplier between steps (default 1.5)."`
	DeliveredSteps  []float64     `name:"delivered-steps" help:"Step mode: one step per delivered updates/s given (comma separated, increasing), instead of geometric steps; equal delivered rates for both targets." placeholder:"N,N,..."`
	MaxRate         float64       `name:"max-rate" help:"Highest event rate to try."`
	Warmup          time.Duration `help:"Settling time before each measured window (default 1s)."`
	Hold            time.Duration `help:"Measured window per step (default 3s)."`
	Duration        time.Duration `help:"Bound on the whole run (default 60s)."`
	MaxP99          time.Duration `name:"max-p99" help:"A step with a higher p99 latency is not sustained (default 50ms)."`
	MinRatio        float64       `name:"min-ratio" help:"A step delivering less than this fraction of the expected updates is not sustained (default 0.95)."`
	SnapshotProbe   bool          `name:"snapshot-probe" help:"Time depth-50 book snapshots on subscribe from a side connection."`
	CandleAbusers   int           `name:"candle-abusers" help:"Candles mode: clients asking GET /api/candles in a loop (default 16)."`
	CandleInterval  int           `name:"candle-interval" help:"Candles mode: the bars asked for, seconds (default 3600)."`
	CandleWindow    time.Duration `name:"candle-window" help:"Candles mode: the window asked for, up to now (default 300h: the dashboard's 1-hour chart)."`
	CandleControl   bool          `name:"candle-control" help:"Candles mode: the abusers ask GET /healthz instead, in the same loop (a control: what the requests alone cost)."`
	CandlePrefill   int           `name:"candle-prefill" help:"Events stored before the clients connect, spread over the last 23 h of event time (the history a long window covers)."`
	Seed            uint64        `help:"Synthetic market seed."`

	JSON     string     `name:"json" help:"Also write the report as JSON to this file (- for stdout)." placeholder:"FILE"`
	LogLevel slog.Level `name:"log-level" default:"warn" help:"debug, info, warn or error."`
}

func (c *runCmd) config() (loadgen.Config, error) {
	chans, err := loadgen.ParseChannels(c.Channels)
	if err != nil {
		return loadgen.Config{}, err
	}
	var auth bus.Auth
	if c.Target != loadgen.TargetCentrifugo { // Centrifugo runs publish through its HTTP API, not NATS
		auth, err = c.NATSAuth.Auth("TICKWIRE")
		if err != nil {
			return loadgen.Config{}, err
		}
	}
	adminURL := c.FeedAdminURL
	if c.FeedURL == "" {
		adminURL = "" // spawned and in-process targets know their own
	}
	var cf loadgen.CentrifugoConfig
	if c.Target == loadgen.TargetCentrifugo {
		cf = loadgen.CentrifugoConfig{URL: c.CentrifugoURL, API: c.CentrifugoAPI, APIKey: c.CentrifugoAPIKey,
			TokenSecret: c.CentrifugoTokenSecret, PID: c.CentrifugoPID, Namespace: c.CentrifugoNamespace,
			Publishers: c.CentrifugoPublishers, Batch: c.CentrifugoBatch}
	} else if c.CentrifugoURL != "" || c.CentrifugoAPI != "" || c.CentrifugoPID != 0 || c.CentrifugoNamespace != "" ||
		c.CentrifugoPublishers != 0 || c.CentrifugoBatch != 0 {
		return loadgen.Config{}, fmt.Errorf("%w: --centrifugo-* flags need --target centrifugo", loadgen.ErrConfig)
	}
	return loadgen.Config{
		Target: c.Target, Centrifugo: cf, DeliveredSteps: c.DeliveredSteps, Market: c.Market,
		Scenario: c.Scenario, Spawn: c.Spawn, InProcess: c.InProcess, FeedURL: c.FeedURL, NATSURL: c.NatsURL,
		FeedPID: c.FeedPID, FeedBin: c.FeedBin, FeedArgs: c.FeedArg, FeedEmbedNATS: c.FeedEmbedNats,
		FeedProfile: c.FeedProfile, NATSProfile: c.NATSProfile, KeepTemp: c.KeepTemp, NATSAuth: auth, FeedAdminURL: adminURL,
		Clients: c.Clients, Instruments: c.Instruments, Subscribers: c.Subscribers, Channels: chans, Depth: c.Depth,
		CompactQuotes: c.CompactQuotes,
		Mode:          c.Mode, Rate: c.Rate, TargetDelivered: c.TargetDelivered, StepFactor: c.StepFactor, MaxRate: c.MaxRate,
		Warmup: c.Warmup, Hold: c.Hold, Duration: c.Duration, MaxP99: c.MaxP99, MinRatio: c.MinRatio,
		SnapshotProbe: c.SnapshotProbe, Seed: c.Seed,
		CandleAbusers: c.CandleAbusers, CandleInterval: c.CandleInterval, CandleWindow: c.CandleWindow, CandlePrefill: c.CandlePrefill,
		CandleControl: c.CandleControl,
	}, nil
}

func (c *runCmd) Run() error {
	cfg, err := c.config()
	if err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: c.LogLevel}))
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if c.CPUProfile != "" {
		stopProfile, err := profile.StartCPU(c.CPUProfile)
		if err != nil {
			return fmt.Errorf("--cpuprofile: %w", err)
		}
		defer func() {
			if err := stopProfile(); err != nil {
				log.Error("--cpuprofile", "err", err)
			}
		}()
	}
	rep, err := loadgen.Run(ctx, cfg, log, os.Stderr)
	if rep == nil {
		return err
	}
	return errors.Join(err, printReport(rep, c.JSON))
}

type serveNATSCmd struct {
	Port    int    `required:"" help:"Port on 127.0.0.1."`
	Dir     string `required:"" help:"JetStream store directory."`
	AuthDir string `name:"auth-dir" required:"" help:"Directory of the users' password files (written if missing)."`
	Profile string `help:"Write a CPU profile of the run to FILE, and the heap at the end to FILE.heap." placeholder:"FILE"`
}

func (c *serveNATSCmd) Run() error { return loadgen.ServeNATS(c.Port, c.Dir, c.AuthDir, c.Profile) }

func main() {
	var c cli
	kctx := kong.Parse(&c,
		kong.Name("loadgen"),
		kong.Description("Tickwire load generator: N WebSocket clients over loopback against a feed, a controlled event rate into NATS; reports delivered updates/s, latency, gaps, resyncs, closes, feed CPU and RSS."),
		natsflags.Vars(bus.RoleIngest, "TICKWIRE"),
	)
	if err := kctx.Run(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

// report is what a run of the load tool prints: a table, and JSON on request.
type report interface {
	WriteTable(io.Writer)
	WriteJSON(io.Writer) error
}

// printReport writes rep's table to stdout and, when jsonPath is set, its JSON to that file
// ("-": stdout).
func printReport(rep report, jsonPath string) error {
	fmt.Println()
	rep.WriteTable(os.Stdout)
	if jsonPath == "" {
		return nil
	}
	out := os.Stdout
	if jsonPath != "-" {
		f, err := os.Create(jsonPath)
		if err != nil {
			return err
		}
		defer f.Close()
		out = f
	}
	return rep.WriteJSON(out)
}
