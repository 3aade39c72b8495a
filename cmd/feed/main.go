// Command feed keeps every instrument's state from NATS and streams it to WebSocket clients.
// It only wires components: see internal/feed.
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"runtime"
	"syscall"
	"time"

	"github.com/alecthomas/kong"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/tickwire/tickwire/internal/bus"
	"github.com/tickwire/tickwire/internal/fanout"
	"github.com/tickwire/tickwire/internal/feed"
	"github.com/tickwire/tickwire/internal/natsflags"
	"github.com/tickwire/tickwire/internal/profile"
	"github.com/tickwire/tickwire/pkg/market"
)

// envPrefix starts the feed's environment variables.
const envPrefix = "TICKWIRE_FEED"

// config is every setting of the feed, from flags, then TICKWIRE_FEED_* environment variables,
// then an optional JSON file (--config).
type config struct {
	Config kong.ConfigFlag `help:"JSON file with settings (flag names as keys)." placeholder:"FILE"`

	Listen    string          `default:"127.0.0.1:8080" help:"HTTP and WebSocket listen address."`
	PublicURL string          `name:"public-url" help:"URL printed for people to open (default from --listen)."`
	NatsURL   string          `name:"nats-url" default:"nats://127.0.0.1:4222" help:"NATS server(s), comma separated."`
	Embed     natsflags.Embed `embed:""`
	// NATS credentials (docs/OPERATIONS.md, Security: NATS). With --embed-nats the server's
	// users' passwords are generated into --nats-auth-dir and the feed connects as "feed".
	NATS    natsflags.Flags     `embed:""`
	NATSTLS natsflags.ServerTLS `embed:""`
	// The stream's limits, shared with ingest and tickctl import: on a fresh store the feed may
	// be first, and creates the stream as they would.
	Stream natsflags.Stream `embed:""`

	AdminListen string `name:"admin-listen" default:"127.0.0.1:9102" help:"Admin HTTP listen address: /metrics and /debug/pprof/ (keep it on loopback or a private network; empty disables)."`

	AllowedOrigins   []string      `name:"allowed-origin" help:"Browser origin allowed to connect (repeatable; * for any). Default: same host only."`
	MaxConnsPerIP    int           `name:"max-conns-per-ip" default:"256" help:"Concurrent connections per client address; past it 429 before the upgrade (negative: no cap)."`
	TrustedProxies   []string      `name:"trusted-proxy" help:"Load balancer in front of this feed, an address or CIDR prefix (repeatable): a request from it is counted by the per-address limits (--max-conns-per-ip, --candles-rate) under the client address it appends to X-Forwarded-For (HAProxy: option forwardfor). Default: none, the TCP peer counts."`
	MaxDelayTiers    int           `name:"max-delay-tiers" default:"4" help:"Distinct token delays served at once, each its own state fed from the stored stream (negative: none; delayed tokens get 503)."`
	MaxConns         int           `name:"max-conns" default:"50000" help:"Concurrent connections in all; past it 429 before the upgrade (negative: no cap)."`
	IdleTimeout      time.Duration `name:"idle-timeout" default:"60s" help:"Close a connection that held no subscription this long, pings answered or not (4004; negative: never)."`
	MaxSubscriptions int           `name:"max-subscriptions" default:"10000" help:"Instruments one connection may subscribe to."`
	SnapshotRate     int           `name:"snapshot-rate" default:"262144" help:"Bytes per second of snapshots each connection may ask for (Subscribe, Resync); the snapshots past it wait (negative: no budget)."`
	SnapshotBurst    int           `name:"snapshot-burst" default:"0" help:"Bytes of snapshots a connection may ask for at once (0: 2 MiB, or --queue-hard-bytes if less; a dashboard's 50 instruments with every channel are about 1.2 MB); at most --queue-hard-bytes."`
	Depths           []uint32      `name:"book-depth" default:"10,50" help:"Book depths offered (each is its own stream)."`
	ResumeHistory    int           `name:"resume-history" default:"2048" help:"Recent deltas each instrument keeps (all its streams together) so a reconnecting client resumes from its position instead of a snapshot: the resume window (0: 2048; negative: none)."`
	ResumeBytes      int           `name:"resume-history-bytes" default:"0" help:"Bound each instrument's resume history by memory too: its deltas' encodings plus 48 bytes each (0: no bound but --resume-history). With many instruments the history is most of a feed's memory; book deltas cost several times a quote's."`
	TradeHistory     int           `name:"trade-history" default:"100" help:"Recent trades kept per instrument."`
	CandleIntervals  []uint32      `name:"candle-interval" default:"1,60" help:"Candle intervals in seconds."`
	CandleHistory    int           `name:"candle-history" default:"300" help:"Bars kept per interval."`
	Owners           int           `default:"8" help:"Goroutines owning instrument shards."`
	QueueSoft        int           `name:"queue-soft-bytes" default:"1048576" help:"Pending bytes per connection that trigger conflation."`
	QueueHard        int           `name:"queue-hard-bytes" default:"8388608" help:"Pending bytes per connection that close it (4000)."`
	WriteTimeout     time.Duration `name:"write-timeout" default:"5s" help:"A connection whose socket has not taken what was written to it for this long is closed (4001)."`
	FlushInterval    time.Duration `name:"flush-interval" default:"2ms" help:"A connection written less than this ago has its next updates gathered until it has passed, then written in one frame; a quiet connection, a snapshot or a reply is written at once (negative: no gathering)."`
	Writers          int           `default:"0" help:"Goroutines writing connections, each its share (0: one per core)."`
	Heartbeat        time.Duration `default:"5s" help:"Heartbeat after this long without a message (each connection a little sooner, by up to a quarter, so idle ones do not beat together)."`
	ReadTimeout      time.Duration `name:"read-timeout" default:"45s" help:"Close a client silent this long (no pong either)."`
	ShutdownTimeout  time.Duration `name:"shutdown-timeout" default:"10s" help:"Bound on graceful shutdown."`
	ReplayStart      bool          `name:"replay-start" help:"Let clients whose token grants replay_control start replay sessions in this feed (POST /api/replays: the dashboard's Replay… form); off, an operator runs tickctl replay."`
	ReplayStartMax   int           `name:"replay-start-max" default:"4" help:"Replay sessions this feed runs at once (--replay-start); more are refused (429)."`
	ReplayStartTTL   time.Duration `name:"replay-start-ttl" default:"1h" help:"A replay session this feed started ends this long after it started (a finished one stays watchable until then)."`
	CheckpointEvery  time.Duration `name:"checkpoint-interval" default:"1m" help:"Take a state checkpoint (every instrument's state, kept in JetStream) at most this often once ready, and start from the latest one plus the events after it instead of the whole stream (0: off, neither taken nor loaded; docs/OPERATIONS.md, Warm start)."`
	StaleAfter       time.Duration `name:"stale-after" default:"1m" help:"An instrument that should be live (not halted or closed) with no event for this long is stale; while every live one is, /readyz reports not ready (negative: never)."`
	StaleRules       []string      `name:"stale-after-instrument" placeholder:"PATTERN=DURATION" help:"Staleness bound of the instruments matching PATTERN (an id, or a prefix ending in *; the longest match wins), e.g. kraken:*=5m, or lobster:*=0 for never. Repeatable."`
	GoMaxProcs       int           `name:"gomaxprocs" default:"0" help:"Cores the Go scheduler uses (0: all). On a machine shared with NATS, fewer can mean fewer thread wake-ups per delivered update."`
	CPUProfile       string        `name:"cpu-profile" placeholder:"FILE" help:"Write a CPU profile of the whole run to FILE (go tool pprof)."`

	// GET /api/candles: the candle store and the request limits (candles.go).
	Candles candleFlags `embed:""`

	// Tokens and entitlements (auth.go).
	Auth authFlags `embed:""`

	// https:// and wss:// on --listen (tls.go).
	TLS tlsFlags `embed:""`

	// The dashboard's token URL (dashboard.go).
	Dashboard dashboardFlags `embed:""`

	LogLevel  slog.Level `name:"log-level" default:"info" help:"debug, info, warn or error."`
	LogFormat string     `name:"log-format" default:"text" enum:"text,json" help:"text or json."`
}

func (c *config) Validate() error {
	if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		return fmt.Errorf("--listen %q: %w", c.Listen, err)
	}
	if c.AdminListen != "" {
		if _, _, err := net.SplitHostPort(c.AdminListen); err != nil {
			return fmt.Errorf("--admin-listen %q: %w", c.AdminListen, err)
		}
	}
	if _, err := c.NATS.Auth(envPrefix); err != nil {
		return err
	}
	if _, err := feed.ParseTrustedProxies(c.TrustedProxies); err != nil {
		return fmt.Errorf("--trusted-proxy: %w", err)
	}
	if c.ReplayStartMax < 1 || c.ReplayStartMax > 100 {
		return fmt.Errorf("--replay-start-max %d: want 1..100", c.ReplayStartMax)
	}
	if c.ReplayStartTTL <= 0 {
		return fmt.Errorf("--replay-start-ttl %v: want > 0", c.ReplayStartTTL)
	}
	if err := c.NATSTLS.Validate(&c.NATS); err != nil {
		return err
	}
	if err := c.Stream.Validate(); err != nil {
		return err
	}
	if err := c.Embed.Validate(); err != nil {
		return err
	}
	if c.ResumeBytes < 0 {
		return fmt.Errorf("--resume-history-bytes %d is negative (0: no byte bound)", c.ResumeBytes)
	}
	if c.Writers < 0 {
		return fmt.Errorf("--writers %d is negative", c.Writers)
	}
	if c.GoMaxProcs < 0 {
		return fmt.Errorf("--gomaxprocs %d is negative", c.GoMaxProcs)
	}
	if c.QueueHard < c.QueueSoft {
		return fmt.Errorf("--queue-hard-bytes %d below --queue-soft-bytes %d", c.QueueHard, c.QueueSoft)
	}
	if _, err := c.staleRules(); err != nil {
		return fmt.Errorf("--stale-after-instrument: %w", err)
	}
	if err := c.Auth.validate(); err != nil {
		return err
	}
	if err := c.TLS.validate(); err != nil {
		return err
	}
	if err := c.Dashboard.validate(); err != nil {
		return err
	}
	return c.feedConfig().Validate()
}

func (c *config) staleRules() ([]feed.StaleRule, error) {
	rules := make([]feed.StaleRule, 0, len(c.StaleRules))
	for _, s := range c.StaleRules {
		r, err := feed.ParseStaleRule(s)
		if err != nil {
			return nil, err
		}
		rules = append(rules, r)
	}
	return rules, nil
}

func (c *config) feedConfig() feed.Config {
	stale, _ := c.staleRules()                               // validated
	proxies, _ := feed.ParseTrustedProxies(c.TrustedProxies) // validated
	return feed.Config{
		TrustedProxies:     proxies,
		StaleAfter:         c.StaleAfter,
		StaleRules:         stale,
		AllowedOrigins:     c.AllowedOrigins,
		MaxConnsPerIP:      c.MaxConnsPerIP,
		MaxDelayTiers:      c.MaxDelayTiers,
		MaxConns:           c.MaxConns,
		IdleTimeout:        c.IdleTimeout,
		MaxSubscriptions:   c.MaxSubscriptions,
		SnapshotRate:       c.SnapshotRate,
		SnapshotBurst:      c.SnapshotBurst,
		ReadTimeout:        c.ReadTimeout,
		Owners:             c.Owners,
		ResumeHistory:      c.ResumeHistory,
		ResumeHistoryBytes: c.ResumeBytes,
		Market: market.Config{Depths: c.Depths, TradeHistory: c.TradeHistory,
			CandleIntervals: c.CandleIntervals, CandleHistory: c.CandleHistory},
		Conn: fanout.Config{SoftLimit: c.QueueSoft, HardLimit: c.QueueHard, WriteTimeout: c.WriteTimeout, Heartbeat: c.Heartbeat,
			FlushInterval: c.FlushInterval, Shards: c.Writers},
		Candles: c.Candles.config(),
	}
}

func main() {
	var cfg config
	kong.Parse(&cfg,
		kong.Name("feed"),
		kong.Description("Tickwire feed: instrument state from NATS, streamed to WebSocket clients."),
		kong.DefaultEnvars(envPrefix),
		kong.Configuration(kong.JSON),
		natsflags.Vars(bus.RoleFeed, envPrefix),
	)
	var h slog.Handler = slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: cfg.LogLevel})
	if cfg.LogFormat == "json" {
		h = slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: cfg.LogLevel})
	}
	log := slog.New(h)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, &cfg, log, nil); err != nil {
		log.Error("feed failed", "err", err)
		os.Exit(1)
	}
}

// run runs the feed until ctx ends. listening, if not nil, is told the public and admin
// addresses (admin nil when disabled) once both listen.
func run(ctx context.Context, cfg *config, log *slog.Logger, listening func(public, admin net.Addr)) error {
	log.Info("starting feed", "config", fmt.Sprintf("%+v", *cfg))
	if cfg.GoMaxProcs > 0 {
		runtime.GOMAXPROCS(cfg.GoMaxProcs)
	}
	if cfg.CPUProfile != "" {
		stopProfile, err := profile.StartCPU(cfg.CPUProfile)
		if err != nil {
			return fmt.Errorf("--cpu-profile: %w", err)
		}
		defer func() {
			if err := stopProfile(); err != nil {
				log.Error("--cpu-profile", "err", err)
			}
		}()
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	var admin *adminServer // first, so that metrics and profiles are there while NATS is not
	if cfg.AdminListen != "" {
		var err error
		if admin, err = listenAdmin(cfg.AdminListen, reg, log); err != nil {
			return err
		}
		defer func() {
			if err := admin.Shutdown(cfg.ShutdownTimeout); err != nil {
				log.Warn("admin server shutdown", "err", err)
			}
		}()
	}

	natsURL := cfg.NatsURL
	auth, err := cfg.NATS.Auth(envPrefix) // validated
	if err != nil {
		return err
	}
	if cfg.Embed.On {
		emb, url, a, err := cfg.Embed.Start(&cfg.NATS, &cfg.NATSTLS, bus.RoleFeed, reg, log)
		if err != nil {
			return err
		}
		defer emb.Shutdown()
		natsURL, auth = url, a
	}
	b, err := bus.Connect(ctx, bus.Config{URL: natsURL, Name: "tickwire-feed", Auth: auth}, log.With("component", "bus"), reg)
	if err != nil {
		return err
	}
	defer b.Close()

	fcfg := cfg.feedConfig()
	if fcfg.Auth, err = cfg.Auth.config(log, reg); err != nil {
		return err
	}
	defer reloadOnHUP(fcfg.Auth.Verifier, log)()
	certs, minTLS, err := cfg.TLS.load(log, reg)
	if err != nil {
		return err
	}
	stream := cfg.Stream.Config()
	svc, err := feed.Assemble(feed.Setup{Config: fcfg, Bus: b, Listen: cfg.Listen, UI: cfg.Dashboard.handler(),
		Logger: log.With("component", "feed"), Registry: reg, Stream: &stream, CheckpointInterval: cfg.CheckpointEvery})
	if err != nil {
		return err
	}
	srv := svc.Server
	if cfg.ReplayStart {
		srv.EnableReplayStart(feed.BusReplayRunner(b), feed.ReplayStartConfig{Max: cfg.ReplayStartMax, TTL: cfg.ReplayStartTTL})
	}
	if admin != nil {
		admin.Handle("GET /readyz", srv.ReadyzDetail())
	}
	if err := cfg.Auth.enableRevocations(srv, fcfg.Auth, b); err != nil {
		_ = svc.Close()
		return err
	}
	scheme := "http://"
	if certs != nil {
		svc.ServeTLS(certs.ServerConfig(minTLS))
		defer reloadTLS(certs, cfg.TLS.Watch, log)()
		scheme = "https://"
	}
	url := cfg.PublicURL
	if url == "" {
		url = scheme + svc.Addr().String()
	}
	metrics := "(off: --admin-listen is empty)"
	var adminAddr net.Addr
	if admin != nil {
		adminAddr = admin.Addr()
		metrics = "http://" + adminAddr.String() + "/metrics"
	}
	if listening != nil {
		listening(svc.Addr(), adminAddr)
	}
	log.Info("feed listening", "dashboard", url+"/", "websocket", "ws"+url[len("http"):]+"/ws", "metrics", metrics)
	fmt.Fprintf(os.Stderr, "\n  Tickwire dashboard:  %s/\n  WebSocket endpoint:  %s/ws\n  Metrics:             %s\n\n", url, "ws"+url[len("http"):], metrics)
	err = svc.Run(ctx, cfg.ShutdownTimeout)
	if errors.Is(err, context.Canceled) {
		err = nil
	}
	log.Info("feed stopped")
	return err
}
