package main

import (
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/alecthomas/kong"

	"github.com/tickwire/tickwire/internal/synthetic"
)

// config is every setting of ingest: flags > TICKWIRE_* environment > JSON config file
// (--config) > defaults.
type config struct {
	Config kong.ConfigFlag `help:"JSON file of settings keyed by flag name with underscores, e.g. {\"synthetic_rate\": 5000}." placeholder:"FILE"`

	NATSURL     string `name:"nats-url" default:"nats://127.0.0.1:4222" help:"NATS server URL(s), comma separated. Ignored with --embed-nats." group:"NATS"`
	EmbedNATS   bool   `name:"embed-nats" help:"Start an embedded NATS server with JetStream in this process and use it." group:"NATS"`
	NATSDataDir string `name:"nats-data-dir" default:".data/nats" type:"path" help:"JetStream store directory of the embedded server." group:"NATS"`
	NATSListen  string `name:"nats-listen" default:"127.0.0.1:4222" help:"host:port the embedded server listens on." group:"NATS"`

	StreamMaxAge   time.Duration `default:"24h" help:"Keep events in the JetStream stream at most this long." group:"Stream"`
	StreamMaxBytes byteSize      `default:"8GiB" help:"Keep at most this much in the stream (e.g. 512MiB, 8GiB); the oldest events go first." group:"Stream"`

	Source               string        `enum:"synthetic" default:"synthetic" help:"Event source (${enum})." group:"Source"`
	SyntheticInstruments int           `default:"50" help:"Number of synthetic instruments." group:"Source"`
	SyntheticRate        int           `default:"2000" help:"Synthetic events per second, all instruments together." group:"Source"`
	SyntheticSeed        uint64        `default:"1" help:"Seed of the synthetic market (same seed, same market)." group:"Source"`
	SyntheticDepth       int           `default:"25" help:"Synthetic book levels per side (>= 20)." group:"Source"`
	CheckpointInterval   time.Duration `default:"30s" help:"How often each instrument re-sends its reference data and a full book snapshot." group:"Source"`

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
	}
}

// Validate is called by kong after parsing.
func (c *config) Validate() error {
	if err := c.synthetic().Validate(); err != nil {
		return err
	}
	if c.CheckpointInterval <= 0 {
		return fmt.Errorf("--checkpoint-interval must be > 0")
	}
	if c.StreamMaxAge <= 0 || c.StreamMaxBytes <= 0 {
		return fmt.Errorf("--stream-max-age and --stream-max-bytes must be > 0")
	}
	if c.EmbedNATS {
		if _, _, err := c.natsHostPort(); err != nil {
			return err
		}
		if c.NATSDataDir == "" {
			return fmt.Errorf("--nats-data-dir is required with --embed-nats")
		}
	} else if c.NATSURL == "" {
		return fmt.Errorf("--nats-url is required (or --embed-nats)")
	}
	if c.MetricsListen != "" {
		if _, _, err := net.SplitHostPort(c.MetricsListen); err != nil {
			return fmt.Errorf("--metrics-listen: %w", err)
		}
	}
	return nil
}

func (c *config) natsHostPort() (string, int, error) {
	host, p, err := net.SplitHostPort(c.NATSListen)
	if err != nil {
		return "", 0, fmt.Errorf("--nats-listen: %w", err)
	}
	port, err := strconv.Atoi(p)
	if err != nil || port < -1 || port > 65535 {
		return "", 0, fmt.Errorf("--nats-listen: bad port %q", p)
	}
	return host, port, nil
}

// logAttrs renders the effective configuration for the start-up log.
func (c *config) logAttrs() []any {
	return []any{
		"nats_url", c.NATSURL, "embed_nats", c.EmbedNATS, "nats_data_dir", c.NATSDataDir, "nats_listen", c.NATSListen,
		"stream_max_age", c.StreamMaxAge.String(), "stream_max_bytes", c.StreamMaxBytes.String(),
		"source", c.Source, "synthetic_instruments", c.SyntheticInstruments, "synthetic_rate", c.SyntheticRate,
		"synthetic_seed", c.SyntheticSeed, "synthetic_depth", c.SyntheticDepth, "checkpoint_interval", c.CheckpointInterval.String(),
		"metrics_listen", c.MetricsListen, "log_level", c.LogLevel, "log_format", c.LogFormat,
	}
}

func (c *config) slogLevel() slog.Level {
	var l slog.Level
	_ = l.UnmarshalText([]byte(c.LogLevel)) // enum-checked by kong
	return l
}

// byteSize is a size in bytes written as 123, 512MiB, 8GiB, 1GB...
type byteSize int64

var byteUnits = []struct {
	suffix string
	mult   int64
}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"TiB", 1 << 40}, {"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"TB", 1e12}, {"B", 1}}

func parseByteSize(s string) (byteSize, error) {
	s = strings.TrimSpace(s)
	mult := int64(1)
	for _, u := range byteUnits {
		if rest, ok := strings.CutSuffix(s, u.suffix); ok {
			s, mult = strings.TrimSpace(rest), u.mult
			break
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 || (n > 0 && mult > (1<<63-1)/n) {
		return 0, fmt.Errorf("invalid size %q (want e.g. 1073741824, 512MiB, 8GiB)", s)
	}
	return byteSize(n * mult), nil
}

// Decode implements kong.MapperValue.
func (b *byteSize) Decode(ctx *kong.DecodeContext) error {
	var s string
	if err := ctx.Scan.PopValueInto("size", &s); err != nil {
		return err
	}
	v, err := parseByteSize(s)
	if err != nil {
		return err
	}
	*b = v
	return nil
}

func (b byteSize) String() string {
	for _, u := range byteUnits[:4] {
		if b >= byteSize(u.mult) && int64(b)%u.mult == 0 && int64(b)/u.mult < 1024 {
			return strconv.FormatInt(int64(b)/u.mult, 10) + u.suffix
		}
	}
	return strconv.FormatInt(int64(b), 10) + "B"
}
