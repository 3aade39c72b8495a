package main

import (
	"fmt"
	"log/slog"
	"net"
	"time"

	"github.com/alecthomas/kong"

	"github.com/tickwire/tickwire/internal/lease"
	"github.com/tickwire/tickwire/internal/natsflags"
	"github.com/tickwire/tickwire/internal/source/synthetic"
)

// envPrefix starts ingest's environment variables (shared with tickctl).
const envPrefix = "TICKWIRE"

// config is every setting of ingest: flags > TICKWIRE_* environment > JSON config file
// (--config) > defaults.
type config struct {
	Config kong.ConfigFlag `help:"JSON file of settings keyed by flag name with underscores, e.g. {\"synthetic_rate\": 5000}." placeholder:"FILE"`

	NATSURL string          `name:"nats-url" default:"nats://127.0.0.1:4222" help:"NATS server URL(s), comma separated. Ignored with --embed-nats." group:"NATS"`
	Embed   natsflags.Embed `embed:""`
	// Credentials (docs/OPERATIONS.md, Security: NATS); with --embed-nats the server's users'
	// passwords are generated into --nats-auth-dir and ingest connects as "ingest".
	NATSAuth natsflags.Flags     `embed:"" group:"NATS"`
	NATSTLS  natsflags.ServerTLS `embed:"" group:"NATS"`

	// The stream's limits, shared with feed and tickctl import: whichever starts first creates it.
	Stream natsflags.Stream `embed:""`

	Source               string        `enum:"synthetic,kraken,binance,coinbase,capture,file,consolidated" default:"synthetic" help:"Event source (${enum}): the synthetic market, a venue's live feed, a recorded capture replayed through a venue adapter, a history file, or consolidated instruments built from other instruments' events on NATS (--consolidate)." group:"Source"`
	SyntheticInstruments int           `default:"50" help:"Number of synthetic instruments." group:"Source"`
	SyntheticRate        int           `default:"2000" help:"Synthetic events per second, all instruments together." group:"Source"`
	SyntheticSeed        uint64        `default:"1" help:"Seed of the synthetic market (same seed, same market)." group:"Source"`
	SyntheticDepth       int           `default:"25" help:"Synthetic book levels per side (>= 20)." group:"Source"`
	SyntheticVenues      []string      `default:"synthetic" help:"Venues of the synthetic market, comma separated: the first lists every ticker, the others the first --synthetic-cross-listed, each with its own book around the same fair value." group:"Source"`
	SyntheticCrossListed int           `help:"Tickers (the first ones) listed on every synthetic venue; default all." group:"Source"`
	Consolidate          []string      `sep:"none" help:"With --source consolidated, repeatable: a consolidated instrument and its members, consolidated:SYMBOL=venue:SYMBOL,venue:SYMBOL,... (docs/PROTOCOL.md section 5.4). Connect as the NATS user consolidator." group:"Source"`
	CheckpointInterval   time.Duration `default:"30s" help:"How often each instrument re-sends its reference data and a full book snapshot." group:"Source"`

	Instruments     []string `help:"Venue symbols to subscribe, comma separated (kraken v1: XBT/USD, v2: BTC/USD; binance: BTCUSDT; coinbase: BTC-USD)." group:"Venues"`
	Channels        []string `help:"Channels to subscribe (default per venue: kraken book,ticker,trade; binance depth,bookTicker,trade (or aggTrade); coinbase advanced level2,ticker,market_trades,heartbeats)." group:"Venues"`
	KrakenAPI       string   `enum:"v1,v2" default:"v1" help:"Kraken WebSocket API (${enum}); pair names differ (v1 XBT/USD, v2 BTC/USD)." group:"Venues"`
	BookDepth       int      `default:"10" help:"Kraken book depth to subscribe (10, 25, 100, 500, 1000); the checksum covers the top 10." group:"Venues"`
	BinanceMarket   string   `enum:"spot,futures" default:"spot" help:"Binance market (${enum}: USD-M futures)." group:"Venues"`
	CoinbaseFeed    string   `enum:"advanced,exchange" default:"advanced" help:"Coinbase feed (${enum}: Advanced Trade, or the older Exchange feed)." group:"Venues"`
	VenueURL        string   `name:"venue-url" help:"WebSocket base URL override (tests, proxies); default the venue's public endpoint." group:"Venues"`
	RESTURL         string   `name:"rest-url" help:"REST base URL override (Binance depth snapshots and exchangeInfo, Coinbase products, Kraken v1 AssetPairs)." group:"Venues"`
	Record          string   `type:"path" help:"Live mode: also record every frame received and sent to this NDJSON capture file (replay it with --source capture)." group:"Venues"`
	InstrumentSpec  []string `sep:"none" help:"Reference data of an instrument the venue does not publish, repeatable: venue:SYMBOL=price_scale,size_scale[,tick[,lot]], e.g. kraken:XBT/USD=1,8,0.1,0.00000001. Without one, scales are inferred from the decimals of the first message (logged)." group:"Venues"`
	InstrumentSpecs string   `type:"path" help:"JSON file of instrument specs: {\"kraken:XBT/USD\": {\"price_scale\": 1, \"size_scale\": 8, \"tick\": \"0.1\", \"lot\": \"0.00000001\"}}." group:"Venues"`

	CaptureFormat       string   `enum:"kraken-v1,kraken-v2,binance,binance-futures,coinbase-advanced,coinbase-exchange," default:"" help:"Venue adapter a capture is replayed through (${enum})." group:"Replay"`
	CaptureFile         []string `type:"path" help:"Capture file(s), NDJSON ({\"local_ts\"|\"local_ts_ns\",\"msg\"}) or the python-kraken-sdk JSON; several are merged by time (e.g. Binance frames + REST snapshots)." group:"Replay"`
	CaptureRecordedTime bool     `help:"Stamp replayed events with the recorded receive time as ingest time (default: the replay clock)." group:"Replay"`
	FileFormat          string   `enum:"events,tardis-book-l2,tardis-book-snapshot,tardis-trades,tardis-quotes,fx-quotes,lobster-l1," default:"" help:"History file format (${enum})." group:"Replay"`
	File                []string `type:"path" help:"History file(s); lobster-l1 takes the message file and the orderbook file." group:"Replay"`
	FileInstrument      string   `help:"Instrument id of files without a symbol column (fx-quotes: e.g. truefx:USD/JPY; lobster-l1 defaults to lobster:<TICKER>)." group:"Replay"`
	FXSize              int64    `name:"fx-size" default:"1" help:"Size given to each side of an FX quote (the files carry none)." group:"Replay"`
	Speed               float64  `default:"1" help:"Replay pace of captures and files: 1 original timing, N times faster, 0 as fast as possible." group:"Replay"`

	Lease         string        `help:"Run as one of several ingest processes for the same source: only the holder of this lease (a key of the NATS KV bucket TICKWIRE_LEASES) publishes; the others stand by, see the same events, and take over when it stops or dies, continuing each instrument's sequence where they can prove they saw its last stored event, else in a new epoch (docs/OPERATIONS.md). Give every process of one source the same name, e.g. coinbase. Empty: this process always publishes." group:"Lease"`
	LeaseTTL      time.Duration `name:"lease-ttl" default:"6s" help:"Lease time to live: a dead holder is replaced within about TTL x 7/6; a holder cut off from NATS stops publishing TTL x 2/3 after its last renewal (1s..1m; the bucket keeps the TTL it was created with)." group:"Lease"`
	LeaseHolder   string        `help:"This process's name in the lease (default host:pid)." group:"Lease"`
	StandbyEvents int           `default:"4096" help:"Events a standby keeps per instrument to prove continuity when it takes over (>= 16); cover what one instrument sees in a lease TTL." group:"Lease"`

	MetricsListen string `default:"127.0.0.1:9101" help:"host:port serving /metrics and /healthz; empty disables." group:"Operations"`
	LogLevel      string `enum:"debug,info,warn,error" default:"info" help:"Log level (${enum})." group:"Operations"`
	LogFormat     string `enum:"text,json" default:"text" help:"Log format (${enum})." group:"Operations"`
}

func (c *config) synthetic() synthetic.Config {
	return synthetic.Config{
		Instruments:        c.SyntheticInstruments,
		Seed:               c.SyntheticSeed,
		Rate:               c.SyntheticRate,
		Depth:              c.SyntheticDepth,
		CheckpointInterval: c.CheckpointInterval,
		Venues:             c.SyntheticVenues,
		CrossListed:        c.SyntheticCrossListed,
	}
}

// Validate is called by kong after parsing.
func (c *config) Validate() error {
	if err := c.synthetic().Validate(); err != nil {
		return err
	}
	if err := c.validateSource(); err != nil {
		return err
	}
	if c.Lease != "" {
		if err := lease.CheckName(c.Lease); err != nil {
			return fmt.Errorf("--lease: %w", err)
		}
		if c.LeaseTTL < lease.MinTTL || c.LeaseTTL > lease.MaxTTL {
			return fmt.Errorf("--lease-ttl %v outside %v..%v", c.LeaseTTL, lease.MinTTL, lease.MaxTTL)
		}
		if c.StandbyEvents < 16 {
			return fmt.Errorf("--standby-events %d, less than 16", c.StandbyEvents)
		}
	}
	if c.CheckpointInterval <= 0 {
		return fmt.Errorf("--checkpoint-interval must be > 0")
	}
	if err := c.Stream.Validate(); err != nil {
		return err
	}
	if err := c.Embed.Validate(); err != nil {
		return err
	}
	if !c.Embed.On && c.NATSURL == "" {
		return fmt.Errorf("--nats-url is required (or --embed-nats)")
	}
	if _, err := c.NATSAuth.Auth(envPrefix); err != nil {
		return err
	}
	if err := c.NATSTLS.Validate(&c.NATSAuth); err != nil {
		return err
	}
	if c.MetricsListen != "" {
		if _, _, err := net.SplitHostPort(c.MetricsListen); err != nil {
			return fmt.Errorf("--metrics-listen: %w", err)
		}
	}
	return nil
}

// logAttrs renders the effective configuration for the start-up log.
func (c *config) logAttrs() []any {
	return []any{
		"nats_url", c.NATSURL, "embed_nats", c.Embed.On, "nats_data_dir", c.Embed.DataDir, "nats_listen", c.Embed.Listen,
		"nats_user", c.NATSAuth.User, "nats_password_file", c.NATSAuth.PasswordFile, "nats_auth_dir", c.NATSAuth.AuthDir,
		"nats_creds", c.NATSAuth.Creds, "nats_ca", c.NATSAuth.CA, "nats_cert", c.NATSAuth.Cert,
		"stream_max_age", c.Stream.StreamMaxAge.String(), "stream_max_bytes", c.Stream.StreamMaxBytes.String(),
		"source", c.Source, "synthetic_instruments", c.SyntheticInstruments, "synthetic_rate", c.SyntheticRate,
		"synthetic_seed", c.SyntheticSeed, "synthetic_depth", c.SyntheticDepth, "checkpoint_interval", c.CheckpointInterval.String(),
		"instruments", c.Instruments, "channels", c.Channels, "kraken_api", c.KrakenAPI, "book_depth", c.BookDepth,
		"binance_market", c.BinanceMarket, "coinbase_feed", c.CoinbaseFeed, "venue_url", c.VenueURL, "rest_url", c.RESTURL, "record", c.Record,
		"instrument_spec", c.InstrumentSpec, "instrument_specs", c.InstrumentSpecs,
		"capture_format", c.CaptureFormat, "capture_file", c.CaptureFile, "capture_recorded_time", c.CaptureRecordedTime,
		"file_format", c.FileFormat, "file", c.File, "file_instrument", c.FileInstrument, "fx_size", c.FXSize, "speed", c.Speed,
		"lease", c.Lease, "lease_ttl", c.LeaseTTL.String(), "lease_holder", c.LeaseHolder, "standby_events", c.StandbyEvents,
		"metrics_listen", c.MetricsListen, "log_level", c.LogLevel, "log_format", c.LogFormat,
	}
}

func (c *config) slogLevel() slog.Level {
	var l slog.Level
	_ = l.UnmarshalText([]byte(c.LogLevel)) // enum-checked by kong
	return l
}
