// Package loadgen drives a running Tickwire ingest side and feed with many WebSocket clients
// over loopback and measures what the feed delivers: updates, frames and bytes per second,
// ingest-to-client latency, gaps, resyncs, conflations, closes, and the feed's CPU and memory.
// It steps the event rate up until delivery falls behind and reports the highest sustained rate.
//
// Events are synthetic (internal/source/synthetic), published into NATS JetStream through internal/bus
// with this run's epoch, gapless seqs and ingest_time_ns = now. A shadow of each instrument's
// feed state (pkg/market) counts the deltas the feed must deliver, so delivered/expected is
// exact. Clients are lean: a gws reader per connection walks each frame with protowire (no
// allocation per message), checks every stream's chain (prev_seq <= position < seq) and records
// latency in a per-client HDR histogram.
package loadgen

import (
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/tickwire/tickwire/internal/bus"
	"github.com/tickwire/tickwire/internal/feed"
	pb "github.com/tickwire/tickwire/pkg/proto/tickwire/v1"
)

// ErrConfig is an invalid configuration.
var ErrConfig = errors.New("loadgen: invalid config")

// MaxClients is the hard cap on connections: 20 000 client sockets plus the feed's side of
// them is what one machine's file and port limits allow.
const MaxClients = 20_000

// Run modes.
const (
	ModeStep    = "step"    // raise the rate geometrically until delivery falls behind
	ModeFixed   = "fixed"   // hold one rate for the whole run
	ModeIdle    = "idle"    // connect and subscribe, publish slowly: memory per connection
	ModeStalled = "stalled" // fixed rate, then one client stops reading; compare
)

// Config is one run. Zero fields are unset: Merge fills them from a preset, then defaults.
type Config struct {
	Scenario string `json:"scenario"`

	// Target is the server under load: TargetTickwire (default) or TargetCentrifugo, a running
	// Centrifugo reached through Centrifugo (centrifugo.go; the Tickwire fields below are unused).
	Target     string           `json:"target"`
	Centrifugo CentrifugoConfig `json:"centrifugo,omitzero"`

	// Tickwire: exactly one of Spawn, InProcess, or FeedURL+NATSURL.
	Spawn         bool        `json:"spawn,omitempty"`
	InProcess     bool        `json:"inprocess,omitempty"`
	FeedURL       string      `json:"feed_url,omitempty"`
	NATSURL       string      `json:"nats_url,omitempty"`
	FeedPID       int         `json:"feed_pid,omitempty"`
	FeedBin       string      `json:"feed_bin,omitempty"`
	FeedArgs      []string    `json:"feed_args,omitempty"`
	FeedEmbedNATS bool        `json:"feed_embed_nats,omitempty"`
	FeedProfile   string      `json:"feed_profile,omitempty"`
	NATSProfile   string      `json:"nats_profile,omitempty"` // with Spawn: NATS's CPU profile (and FILE.heap)
	KeepTemp      bool        `json:"-"`
	InProcessFeed feed.Config `json:"-"`

	// NATSAuth is how the load generator publishes with FeedURL+NATSURL (the ingest role);
	// spawned and in-process targets make their own.
	NATSAuth bus.Auth `json:"-"`
	// FeedAdminURL is the running feed's admin listener (its --admin-listen), where its
	// /metrics are; with FeedURL+NATSURL only (default: counters from /metrics unknown).
	FeedAdminURL string `json:"feed_admin_url,omitempty"`

	// Load shape: Clients connections; Instruments instruments with exactly Subscribers
	// subscribers each, so each client holds Instruments*Subscribers/Clients of them.
	Clients     int          `json:"clients"`
	Instruments int          `json:"instruments"`
	Subscribers int          `json:"subscribers_per_instrument"`
	Channels    []pb.Channel `json:"-"`
	Depth       uint32       `json:"depth,omitempty"`
	// Market is the publisher's event source: MarketSynthetic (default) or MarketQuotes (one
	// quote delta per event, the shape of a Centrifugo publication).
	Market string `json:"market"`
	// CompactQuotes subscribes with compact_quotes: quote deltas as CompactQuote.
	CompactQuotes bool `json:"compact_quotes,omitempty"`

	Mode string `json:"mode"`
	// Rate is the first step's (or the fixed) event rate, events/s into NATS.
	Rate float64 `json:"rate,omitempty"`
	// TargetDelivered, if set for a fixed run, picks the event rate that should deliver this
	// many updates/s (calibrated on the synthetic market through shadow states).
	TargetDelivered float64 `json:"target_delivered,omitempty"`
	StepFactor      float64 `json:"step_factor,omitempty"`
	// DeliveredSteps, if set, replaces geometric steps in step mode: one step per entry, in
	// order, each at the rate that should deliver that many updates/s (Tickwire: calibrated
	// updates per event; Centrifugo: one update per publication per subscriber), so that two
	// servers are measured at equal delivered rates.
	DeliveredSteps []float64     `json:"delivered_steps,omitempty"`
	MaxRate        float64       `json:"max_rate,omitempty"`
	Warmup         time.Duration `json:"warmup_ns"`
	Hold           time.Duration `json:"hold_ns"`
	Duration       time.Duration `json:"duration_ns"`
	// A step is sustained when delivered/expected >= MinRatio, p99 <= MaxP99, and no gap,
	// conflation or close happened.
	MaxP99   time.Duration `json:"max_p99_ns"`
	MinRatio float64       `json:"min_ratio"`

	SnapshotProbe bool `json:"snapshot_probe,omitempty"`

	// Candle abuse (mode candles, candles.go): CandleAbusers clients each ask /api/candles for
	// bars of CandleInterval seconds over the CandleWindow up to now, one request after another;
	// CandlePrefill events are stored before the clients connect (any mode).
	CandleAbusers  int           `json:"candle_abusers,omitempty"`
	CandleInterval int           `json:"candle_interval_s,omitempty"`
	CandleWindow   time.Duration `json:"candle_window_ns,omitempty"`
	CandlePrefill  int           `json:"candle_prefill_events,omitempty"`
	// CandleControl: the abusers ask GET /healthz instead (what the requests alone cost).
	CandleControl bool `json:"candle_control,omitempty"`
	// ConnectConcurrency bounds the handshakes in flight during the ramp.
	ConnectConcurrency int    `json:"connect_concurrency"`
	Venue              string `json:"venue"`
	Seed               uint64 `json:"seed"`
}

// Presets are the standard scenarios of issue #6 (docs/BENCHMARKS.md, Load).
var Presets = map[string]Config{
	// 1. 1,000 clients x 100 instruments, 10 subscribers per instrument, quotes: step the rate.
	"fanout-1k": {Clients: 1000, Instruments: 100, Subscribers: 10, Mode: ModeStep, Rate: 2000},
	// 2. Latency at 100,000 delivered updates/s, same layout with quotes and depth-10 books:
	// quotes alone need about 36,000 events/s for 100k/s, the publisher's limit on two shared
	// cores; with books about 11,500 (docs/BENCHMARKS.md, Load).
	"latency-100k": {Clients: 1000, Instruments: 100, Subscribers: 10, Mode: ModeFixed, TargetDelivered: 100_000,
		Channels: []pb.Channel{1, 2}, Depth: 10, Warmup: 2 * time.Second, Hold: 10 * time.Second},
	// 3. 5,000 clients, 50 subscribers per instrument.
	"fanout-5k": {Clients: 5000, Instruments: 100, Subscribers: 50, Mode: ModeStep, Rate: 500},
	// 4. 10,000 idle subscribed connections: feed RSS per connection.
	"idle-10k": {Clients: 10000, Instruments: 100, Subscribers: 100, Mode: ModeIdle, Rate: 10,
		Warmup: 3 * time.Second, Hold: 5 * time.Second, Duration: 120 * time.Second},
	// 5. One bot subscribed to every channel of 1000 instruments on one connection.
	"firehose": {Clients: 1, Instruments: 1000, Subscribers: 1, Mode: ModeStep, Rate: 2000,
		Channels: []pb.Channel{1, 2, 3, 4, 5}, Depth: 10},
	// 7. Book snapshot (depth 50) on subscribe while scenario 1's layout runs at 100k/s.
	"snapshot-latency": {Clients: 1000, Instruments: 100, Subscribers: 10, Mode: ModeFixed, TargetDelivered: 100_000,
		SnapshotProbe: true, Warmup: 2 * time.Second, Hold: 15 * time.Second},
	// 9. One stalled client among 1,000: the others' throughput with and without it. 30k/s:
	// 100k/s plus an everything-subscriber was beyond this 2-core machine (docs/BENCHMARKS.md, Load).
	"stalled": {Clients: 1000, Instruments: 100, Subscribers: 10, Mode: ModeStalled, TargetDelivered: 30_000,
		Warmup: 2 * time.Second, Hold: 10 * time.Second},
	// 10. Live clients without and with 16 clients asking /api/candles for the dashboard's
	// 1-hour chart (300 bars) in a loop, over a store of 1,000,000 events (issue 14 item 6).
	"candles-abuse": {Clients: 200, Instruments: 10, Subscribers: 20, Mode: ModeCandles, TargetDelivered: 20_000,
		CandleAbusers: 16, CandlePrefill: 1_000_000, Warmup: 2 * time.Second, Hold: 10 * time.Second, Duration: 300 * time.Second},
}

// PresetNames returns the scenario names, sorted.
func PresetNames() []string {
	var n []string
	for k := range Presets {
		n = append(n, k)
	}
	sort.Strings(n)
	return n
}

// Merge returns c with its unset fields taken from the scenario preset (if any), then from
// the defaults.
func (c Config) Merge() (Config, error) {
	if c.Scenario != "" {
		p, ok := Presets[c.Scenario]
		if !ok {
			return c, fmt.Errorf("%w: unknown scenario %q (one of %s)", ErrConfig, c.Scenario, strings.Join(PresetNames(), ", "))
		}
		c = fill(c, p)
	}
	if c.Target == "" {
		c.Target = TargetTickwire
	}
	if c.Target == TargetCentrifugo {
		c.Centrifugo = c.Centrifugo.withDefaults()
	}
	return fill(c, Config{Clients: 100, Instruments: 100, Subscribers: 1, Channels: []pb.Channel{pb.Channel_CHANNEL_QUOTE},
		Mode: ModeStep, Rate: 1000, StepFactor: 1.5, MaxRate: 1e7, Warmup: time.Second, Hold: 3 * time.Second,
		Duration: 60 * time.Second, MaxP99: 50 * time.Millisecond, MinRatio: 0.95, ConnectConcurrency: 64,
		Venue: "loadgen", Seed: 1, FeedBin: "bin/feed", Market: MarketSynthetic,
		CandleAbusers: defaultCandleAbusers, CandleInterval: defaultCandleInterval, CandleWindow: defaultCandleWindow}), nil
}

func fill(c, d Config) Config {
	set := func(dst *int, v int) {
		if *dst == 0 {
			*dst = v
		}
	}
	setF := func(dst *float64, v float64) {
		if *dst == 0 {
			*dst = v
		}
	}
	setD := func(dst *time.Duration, v time.Duration) {
		if *dst == 0 {
			*dst = v
		}
	}
	set(&c.Clients, d.Clients)
	set(&c.Instruments, d.Instruments)
	set(&c.Subscribers, d.Subscribers)
	set(&c.ConnectConcurrency, d.ConnectConcurrency)
	if len(c.Channels) == 0 {
		c.Channels = d.Channels
	}
	if c.Depth == 0 {
		c.Depth = d.Depth
	}
	c.CompactQuotes = c.CompactQuotes || d.CompactQuotes
	if c.Mode == "" {
		c.Mode = d.Mode
	}
	setF(&c.Rate, d.Rate)
	setF(&c.TargetDelivered, d.TargetDelivered)
	setF(&c.StepFactor, d.StepFactor)
	setF(&c.MaxRate, d.MaxRate)
	setF(&c.MinRatio, d.MinRatio)
	setD(&c.Warmup, d.Warmup)
	setD(&c.Hold, d.Hold)
	setD(&c.Duration, d.Duration)
	setD(&c.MaxP99, d.MaxP99)
	c.SnapshotProbe = c.SnapshotProbe || d.SnapshotProbe
	if c.Venue == "" {
		c.Venue = d.Venue
	}
	if c.Market == "" {
		c.Market = d.Market
	}
	if c.Seed == 0 {
		c.Seed = d.Seed
	}
	if c.FeedBin == "" {
		c.FeedBin = d.FeedBin
	}
	return fillCandles(c, d)
}

// PerClient returns how many instruments each client subscribes to.
func (c Config) PerClient() int { return c.Instruments * c.Subscribers / max(c.Clients, 1) }

// Validate checks a merged config.
func (c Config) Validate() error {
	if err := c.validateTarget(); err != nil {
		return err
	}
	switch {
	case c.Clients < 1 || c.Clients > MaxClients:
		return fmt.Errorf("%w: clients %d not in 1..%d", ErrConfig, c.Clients, MaxClients)
	case c.Instruments < 1 || c.Instruments > 100_000:
		return fmt.Errorf("%w: instruments %d not in 1..100000", ErrConfig, c.Instruments)
	case c.Subscribers < 1 || c.Subscribers > c.Clients:
		return fmt.Errorf("%w: subscribers per instrument %d not in 1..clients (%d)", ErrConfig, c.Subscribers, c.Clients)
	case c.Instruments*c.Subscribers%c.Clients != 0:
		return fmt.Errorf("%w: instruments x subscribers (%d) must be a multiple of clients (%d) so every instrument has exactly %d subscribers",
			ErrConfig, c.Instruments*c.Subscribers, c.Clients, c.Subscribers)
	case c.PerClient() > c.Instruments:
		return fmt.Errorf("%w: %d instruments per client of %d", ErrConfig, c.PerClient(), c.Instruments)
	case c.Market != MarketSynthetic && c.Market != MarketQuotes && c.Market != "":
		return fmt.Errorf("%w: market %q (synthetic or quotes)", ErrConfig, c.Market)
	case !slices.Contains([]string{ModeStep, ModeFixed, ModeIdle, ModeStalled, ModeCandles}, c.Mode):
		return fmt.Errorf("%w: mode %q", ErrConfig, c.Mode)
	case c.Rate <= 0 || c.StepFactor <= 1:
		return fmt.Errorf("%w: rate %g must be > 0 and step factor %g > 1", ErrConfig, c.Rate, c.StepFactor)
	case c.Mode == ModeStalled && c.Clients < 2:
		return fmt.Errorf("%w: the stalled mode needs at least 2 clients", ErrConfig)
	case c.Warmup < 0 || c.Hold <= 0 || c.Duration <= 0:
		return fmt.Errorf("%w: warmup, hold and duration", ErrConfig)
	}
	for i, d := range c.DeliveredSteps {
		if d <= 0 || (i > 0 && d <= c.DeliveredSteps[i-1]) {
			return fmt.Errorf("%w: delivered steps %v must be positive and increasing", ErrConfig, c.DeliveredSteps)
		}
	}
	if err := c.validateCandles(); err != nil {
		return err
	}
	for _, ch := range c.Channels {
		if ch < 1 || ch > 5 {
			return fmt.Errorf("%w: channel %d", ErrConfig, ch)
		}
	}
	return nil
}

// validateTarget checks the server under load and how it is reached.
func (c Config) validateTarget() error {
	switch c.Target {
	case TargetCentrifugo:
		switch {
		case c.Spawn || c.InProcess || c.FeedURL != "" || c.NATSURL != "" || c.FeedPID != 0:
			return fmt.Errorf("%w: --target centrifugo takes no --spawn, --inprocess, --feed-url, --nats-url or --feed-pid", ErrConfig)
		case c.Mode != ModeStep && c.Mode != ModeFixed && c.Mode != ModeIdle:
			return fmt.Errorf("%w: --target centrifugo runs the step, fixed or idle mode, not %q", ErrConfig, c.Mode)
		case c.SnapshotProbe || c.CompactQuotes:
			return fmt.Errorf("%w: --snapshot-probe and --compact-quotes are Tickwire's", ErrConfig)
		}
		return c.Centrifugo.validate()
	case TargetTickwire, "": // "": a config that skipped Merge
		if c.Centrifugo != (CentrifugoConfig{}) {
			return fmt.Errorf("%w: --centrifugo-* flags need --target centrifugo", ErrConfig)
		}
		targets := 0
		for _, b := range []bool{c.Spawn, c.InProcess, c.FeedURL != "" || c.NATSURL != ""} {
			if b {
				targets++
			}
		}
		switch {
		case targets != 1:
			return fmt.Errorf("%w: choose one of --spawn, --inprocess, or --feed-url with --nats-url", ErrConfig)
		case !c.Spawn && !c.InProcess && (c.FeedURL == "" || c.NATSURL == ""):
			return fmt.Errorf("%w: --feed-url and --nats-url go together", ErrConfig)
		}
		return nil
	default:
		return fmt.Errorf("%w: target %q (tickwire or centrifugo)", ErrConfig, c.Target)
	}
}

// layout returns the instruments (indexes) of client i: k consecutive ones from (i*k) mod M,
// so that with N*k = M*S every instrument has exactly S subscribers.
func layout(i, k, m int) []int {
	out := make([]int, k)
	for j := range k {
		out[j] = (i*k + j) % m
	}
	return out
}

// ChannelNames formats channels for reports.
func ChannelNames(chs []pb.Channel) string {
	var s []string
	for _, ch := range chs {
		s = append(s, strings.ToLower(strings.TrimPrefix(ch.String(), "CHANNEL_")))
	}
	return strings.Join(s, ",")
}

// ParseChannels parses "quote,book,..." (or "all").
func ParseChannels(s string) ([]pb.Channel, error) {
	if s == "" {
		return nil, nil
	}
	if s == "all" {
		return []pb.Channel{1, 2, 3, 4, 5}, nil
	}
	var out []pb.Channel
	for _, name := range strings.Split(s, ",") {
		v, ok := pb.Channel_value["CHANNEL_"+strings.ToUpper(strings.TrimSpace(name))]
		if !ok || v == 0 {
			return nil, fmt.Errorf("%w: channel %q", ErrConfig, name)
		}
		out = append(out, pb.Channel(v))
	}
	return out, nil
}
