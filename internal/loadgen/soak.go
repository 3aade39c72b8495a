package loadgen

// The soak: bots on the public Go SDK (pkg/client, not this tool's lean reader) held connected
// for a long time against a feed with data flowing, counting every reconnect with its cause and
// every delivered update against what the publisher says must arrive. A healthy soak has no
// reconnect at all: a write deadline that outlived its command once failed the SDK's next pong,
// and every SDK connection was dropped as a "heartbeat timeout" about every 15 s (issue 14).

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tickwire/tickwire/internal/bus"
	"github.com/tickwire/tickwire/internal/feed"
	sdk "github.com/tickwire/tickwire/pkg/client"
	pb "github.com/tickwire/tickwire/pkg/proto/tickwire/v1"
)

// ErrSoakFailed is returned by Soak with its report when a client reconnected, an update was
// lost or doubled, or a stream broke.
var ErrSoakFailed = errors.New("loadgen: soak failed")

// SoakConfig is one soak run. Zero fields take the defaults of SoakConfig.Merge.
type SoakConfig struct {
	// Target, as in Config: Spawn, InProcess, or FeedURL with NATSURL (none: Spawn).
	Spawn         bool        `json:"spawn,omitempty"`
	InProcess     bool        `json:"inprocess,omitempty"`
	FeedURL       string      `json:"feed_url,omitempty"`
	NATSURL       string      `json:"nats_url,omitempty"`
	FeedPID       int         `json:"feed_pid,omitempty"`
	FeedBin       string      `json:"feed_bin,omitempty"`
	FeedArgs      []string    `json:"feed_args,omitempty"`
	FeedEmbedNATS bool        `json:"feed_embed_nats,omitempty"`
	KeepTemp      bool        `json:"-"`
	InProcessFeed feed.Config `json:"-"`
	// NATSAuth is who the soak publishes as with FeedURL+NATSURL (the ingest role).
	NATSAuth bus.Auth `json:"-"`

	// Clients SDK clients (default 200) over Instruments instruments (100) with Subscribers
	// subscribers each (10), so each client holds Instruments*Subscribers/Clients of them.
	Clients     int          `json:"clients"`
	Instruments int          `json:"instruments"`
	Subscribers int          `json:"subscribers_per_instrument"`
	Channels    []pb.Channel `json:"channels"` // default quote, book, trades
	Depth       uint32       `json:"depth"`    // default 10
	// Rate is the event rate into NATS (default 1000 events/s: each client gets an update
	// every few milliseconds).
	Rate float64 `json:"events_per_s"`
	// Duration is how long the clients are held with data flowing (default 10 minutes), from
	// the moment every client is connected and synced; setup and the drain come on top.
	Duration time.Duration `json:"duration_ns"`
	// Interval between progress rows (default 1 minute).
	Interval time.Duration `json:"interval_ns"`
	// HeartbeatTimeout and WriteTimeout are the SDK's Options (zero: the SDK's defaults, as a
	// bot runs). Tests shorten them, with the feed's ping interval, to soak in seconds.
	HeartbeatTimeout time.Duration `json:"heartbeat_timeout_ns,omitempty"`
	WriteTimeout     time.Duration `json:"write_timeout_ns,omitempty"`
	Venue            string        `json:"venue"`
	Seed             uint64        `json:"seed"`
}

// Soak defaults: a fleet of bots on one machine for long enough to see any periodic drop many
// times over (the issue 14 drop came every 15 s; ten minutes is forty periods).
const (
	soakClients     = 200
	soakInstruments = 100
	soakSubscribers = 10
	soakRate        = 1000
	soakDuration    = 10 * time.Minute
	soakInterval    = time.Minute
	// soakSetup bounds starting the target and connecting and syncing every client.
	soakSetup = 2 * time.Minute
	// soakDrain bounds the wait for updates in flight after the publisher stops.
	soakDrain = 10 * time.Second
	// soakStop bounds the wait for every client's Run to return after the soak.
	soakStop = 30 * time.Second
)

// Merge returns c with the defaults in its unset fields.
func (c SoakConfig) Merge() SoakConfig {
	if !c.Spawn && !c.InProcess && c.FeedURL == "" && c.NATSURL == "" {
		c.Spawn = true
	}
	def := func(dst *int, v int) {
		if *dst == 0 {
			*dst = v
		}
	}
	def(&c.Clients, soakClients)
	def(&c.Instruments, soakInstruments)
	def(&c.Subscribers, soakSubscribers)
	if len(c.Channels) == 0 {
		c.Channels = []pb.Channel{pb.Channel_CHANNEL_QUOTE, pb.Channel_CHANNEL_BOOK, pb.Channel_CHANNEL_TRADES}
	}
	if c.Depth == 0 {
		c.Depth = 10
	}
	if c.Rate == 0 {
		c.Rate = soakRate
	}
	if c.Duration == 0 {
		c.Duration = soakDuration
	}
	if c.Interval == 0 {
		c.Interval = soakInterval
	}
	if c.Venue == "" {
		c.Venue = "soak"
	}
	if c.Seed == 0 {
		c.Seed = 1
	}
	if c.FeedBin == "" {
		c.FeedBin = "bin/feed"
	}
	return c
}

// target returns the Config that starts (or names) the soak's target, validated with the
// shape of the load (Config.Validate's rules).
func (c SoakConfig) target() (Config, error) {
	t := Config{Spawn: c.Spawn, InProcess: c.InProcess, FeedURL: c.FeedURL, NATSURL: c.NATSURL, FeedPID: c.FeedPID,
		FeedBin: c.FeedBin, FeedArgs: c.FeedArgs, FeedEmbedNATS: c.FeedEmbedNATS, KeepTemp: c.KeepTemp,
		InProcessFeed: c.InProcessFeed, NATSAuth: c.NATSAuth, Clients: c.Clients, Instruments: c.Instruments, Subscribers: c.Subscribers,
		Channels: c.Channels, Depth: c.Depth, Mode: ModeFixed, Rate: c.Rate, StepFactor: 2, Hold: c.Duration,
		Duration: c.Duration, Venue: c.Venue, Seed: c.Seed}
	if err := t.Validate(); err != nil {
		return t, err
	}
	if c.Interval <= 0 || c.HeartbeatTimeout < 0 || c.WriteTimeout < 0 {
		return t, fmt.Errorf("%w: interval, heartbeat and write timeouts", ErrConfig)
	}
	return t, nil
}

// SoakRow is the state at the end of one interval.
type SoakRow struct {
	Elapsed           float64   `json:"elapsed_s"`
	Delivered         uint64    `json:"delivered_updates"` // in this interval
	DeliveredPerSec   float64   `json:"delivered_per_s"`
	Reconnects        uint64    `json:"reconnects"` // since the start, setup included
	HeartbeatTimeouts uint64    `json:"heartbeat_timeouts"`
	WriteTimeouts     uint64    `json:"write_timeouts"`
	Gaps              uint64    `json:"gaps"`
	Resyncs           uint64    `json:"resyncs"`
	Latency           Latencies `json:"latency"` // of this interval's deltas
	FeedCPU           float64   `json:"feed_cpu_cores"`
	FeedRSS           int64     `json:"feed_rss_bytes"`
}

// SoakTotals are the counts over the whole soak. Expected and Delivered count from the
// publisher's start (every client connected and synced) to the end of the drain; the others
// from each client's start.
type SoakTotals struct {
	Published         uint64 `json:"published_events"`
	Expected          uint64 `json:"expected_updates"`
	Delivered         uint64 `json:"delivered_updates"`
	Connects          uint64 `json:"connects"`
	Reconnects        uint64 `json:"reconnects"`
	HeartbeatTimeouts uint64 `json:"heartbeat_timeouts"`
	WriteTimeouts     uint64 `json:"write_timeouts"`
	Snapshots         uint64 `json:"snapshots"`
	Resumed           uint64 `json:"resumed_streams"`
	Gaps              uint64 `json:"gaps"`
	EpochChanges      uint64 `json:"epoch_changes"`
	ChecksumFailures  uint64 `json:"checksum_failures"`
	Resyncs           uint64 `json:"resyncs"`
	DecodeErrors      uint64 `json:"decode_errors"`
	ServerErrors      uint64 `json:"server_errors"`
}

// SoakReport is a whole soak.
type SoakReport struct {
	Started   time.Time  `json:"started"`
	Machine   Machine    `json:"machine"`
	Target    string     `json:"target"`
	Config    SoakConfig `json:"config"`
	PerClient int        `json:"instruments_per_client"`
	Notes     []string   `json:"notes,omitempty"`
	// Setup: clients connected and streams synced before the publisher started.
	Connected      int     `json:"connected"`
	StreamsSynced  int64   `json:"streams_synced"`
	StreamsWanted  int64   `json:"streams_wanted"`
	ConnectSeconds float64 `json:"connect_seconds"`
	// Seconds is how long the clients were held with data flowing.
	Seconds float64    `json:"soak_seconds"`
	Rows    []SoakRow  `json:"rows"`
	Totals  SoakTotals `json:"totals"`
	// Disconnects are the reasons of every connection lost before the end, by kind.
	Disconnects map[string]int `json:"disconnects,omitempty"`
	Latency     Latencies      `json:"latency"`
	FeedRSSBase int64          `json:"feed_rss_start_bytes"`
	FeedRSSEnd  int64          `json:"feed_rss_end_bytes"`
	FeedCPU     float64        `json:"feed_cpu_cores"`
	OK          bool           `json:"ok"`
	Verdict     string         `json:"verdict"`
}

// soakBot is one SDK client's handler. Its methods run on that client's Run goroutine.
type soakBot struct {
	sdk.BaseHandler
	hist     Histogram
	synced   atomic.Int64           // streams that had their first snapshot
	seen     map[[2]string]struct{} // Run goroutine only
	lost     *lossLog
	stopping *atomic.Bool
}

func (b *soakBot) OnSnapshot(_ *sdk.Client, u sdk.Update) {
	k := [2]string{u.Instrument, u.Channel.String()}
	if _, ok := b.seen[k]; !ok {
		b.seen[k] = struct{}{}
		b.synced.Add(1)
	}
}

func (b *soakBot) OnUpdate(_ *sdk.Client, u sdk.Update) {
	if u.Latency > 0 {
		b.hist.Record(int64(u.Latency))
	}
}

func (b *soakBot) OnStateChange(_ *sdk.Client, s sdk.ConnState, err error) {
	if s == sdk.Disconnected && !b.stopping.Load() {
		b.lost.add(err)
	}
}

// lossLog counts lost connections by kind of reason.
type lossLog struct {
	mu    sync.Mutex
	kinds map[string]int // guarded by mu
}

func (l *lossLog) add(err error) {
	var ce *sdk.CloseError
	kind := "other"
	switch {
	case errors.Is(err, sdk.ErrHeartbeatTimeout):
		kind = "heartbeat timeout"
	case errors.Is(err, sdk.ErrWriteTimeout):
		kind = "write timeout"
	case errors.As(err, &ce):
		kind = fmt.Sprintf("close %d", ce.Code)
	case err != nil:
		kind = "other: " + err.Error()
		if len(kind) > 120 {
			kind = kind[:120]
		}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.kinds) < 20 || l.kinds[kind] > 0 { // bounded: a flood of distinct errors is one line
		l.kinds[kind]++
	} else {
		l.kinds["other (more kinds)"]++
	}
}

func (l *lossLog) copy() map[string]int {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make(map[string]int, len(l.kinds))
	for k, v := range l.kinds {
		out[k] = v
	}
	return out
}

// soakFleet is the running SDK clients and their owner.
type soakFleet struct {
	clients  []*sdk.Client
	bots     []*soakBot
	insts    [][]int
	stopping atomic.Bool
	cancel   context.CancelFunc
	wg       sync.WaitGroup
	runErrs  atomic.Int64 // Runs that returned an error (a refused upgrade, a final close)
	lost     lossLog
}

// soakSample is every counter summed over the fleet at one instant.
type soakSample struct {
	at       time.Time
	stats    sdk.Stats
	expected uint64
	hist     *HistSnapshot // latencies since the previous sample
	feed     procSample
}

func (f *soakFleet) sample(pub *publisher, feedPID int) soakSample {
	s := soakSample{at: time.Now(), hist: NewHistSnapshot()}
	for i, c := range f.clients {
		st := c.Stats()
		t := &s.stats
		t.Connects += st.Connects
		t.Disconnects += st.Disconnects
		t.HeartbeatTimeouts += st.HeartbeatTimeouts
		t.WriteTimeouts += st.WriteTimeouts
		t.Frames += st.Frames
		t.Snapshots += st.Snapshots
		t.Deltas += st.Deltas
		t.Gaps += st.Gaps
		t.EpochChanges += st.EpochChanges
		t.ChecksumFailures += st.ChecksumFailures
		t.Resyncs += st.Resyncs
		t.DecodeErrors += st.DecodeErrors
		t.ServerErrors += st.ServerErrors
		t.Resumed += st.Resumed
		for _, x := range f.insts[i] {
			s.expected += pub.Expected(x)
		}
		f.bots[i].hist.Take(s.hist)
	}
	s.feed, _ = readProc(feedPID)
	return s
}

// reconnects is connections made beyond each client's first.
func (s *soakSample) reconnects(clients int) uint64 {
	return s.stats.Connects - min(s.stats.Connects, uint64(clients))
}

func (f *soakFleet) synced() int64 {
	var n int64
	for _, b := range f.bots {
		n += b.synced.Load()
	}
	return n
}

// stop ends every client's Run and waits (up to soakStop) for them to return.
func (f *soakFleet) stop() error {
	f.stopping.Store(true)
	f.cancel()
	done := make(chan struct{})
	go func() { f.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-time.After(soakStop):
		return fmt.Errorf("loadgen: soak: clients still running %v after the stop", soakStop)
	}
}

// Soak runs a soak and returns its report; the error is ErrSoakFailed (with the report) when
// the soak found a fault. Whatever happens, processes it started are stopped before it
// returns. progress receives one line per interval.
func Soak(ctx context.Context, cfg SoakConfig, logger *slog.Logger, progress io.Writer) (*SoakReport, error) {
	cfg = cfg.Merge()
	tcfg, err := cfg.target()
	if err != nil {
		return nil, err
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if progress == nil {
		progress = io.Discard
	}
	rep := &SoakReport{Started: time.Now(), Machine: machineInfo(), Config: cfg, PerClient: tcfg.PerClient()}
	limit, err := raiseFileLimit()
	if err != nil {
		return nil, err
	}
	if need := uint64(cfg.Clients) + 256; limit < need {
		return nil, fmt.Errorf("%w: %d clients need about %d open files; the limit is %d (raise ulimit -n)", ErrConfig, cfg.Clients, need, limit)
	}
	setup, setupDone := context.WithTimeout(ctx, soakSetup)
	defer setupDone()
	var tgt *target
	switch {
	case tcfg.Spawn:
		tgt, err = spawnTarget(setup, &tcfg)
	case tcfg.InProcess:
		tgt, err = inprocessTarget(setup, &tcfg, logger)
	default:
		tgt, err = externalTarget(&tcfg)
	}
	if err != nil {
		return nil, err
	}
	rep.Target = tgt.Mode
	rep.Notes = append(rep.Notes, tgt.Notes...)
	defer func() {
		if cerr := tgt.Close(); cerr != nil {
			logger.Warn("stopping the target", "err", cerr)
		}
	}()
	err = soak(ctx, setup, cfg, tgt, rep, logger, progress)
	httpClient.CloseIdleConnections()
	if err != nil && rep.Seconds == 0 {
		return nil, err // nothing measured: no report
	}
	if err == nil && !rep.OK {
		err = fmt.Errorf("%w: %s", ErrSoakFailed, rep.Verdict)
	}
	return rep, err
}

func soak(ctx, setup context.Context, cfg SoakConfig, tgt *target, rep *SoakReport, logger *slog.Logger, progress io.Writer) error {
	b, err := bus.Connect(setup, bus.Config{URL: tgt.NATSURL, Name: "tickwire-loadgen-soak", MaxPendingPublishes: 16384,
		Auth: tgt.NATSAuth}, logger, prometheus.NewRegistry())
	if err != nil {
		return err
	}
	defer b.Close()
	if tgt.Mode != "external" {
		if err := b.EnsureStream(setup, bus.StreamConfig{}); err != nil {
			return err
		}
	}
	if err := waitReady(setup, tgt.HTTPURL, 30*time.Second); err != nil {
		return err
	}
	mcfg := cfg.InProcessFeed.Market.WithDefaults()
	pcfg := publisherConfig{Instruments: cfg.Instruments, Venue: cfg.Venue, Seed: cfg.Seed,
		Epoch: uint64(time.Now().UnixMilli()), Channels: cfg.Channels, DepthIndex: mcfg.DepthIndex(cfg.Depth), Market: mcfg}
	pub, err := newPublisher(pcfg, b)
	if err != nil {
		return err
	}
	if err := pub.Prime(setup); err != nil {
		return err
	}
	if err := b.Flush(setup); err != nil {
		return err
	}
	r := &runner{cfg: Config{Instruments: cfg.Instruments, Venue: cfg.Venue}, tgt: tgt}
	if err := r.waitInstruments(setup); err != nil {
		return err
	}

	// The fleet: every client runs until the soak ends; Run reconnects on its own.
	f, err := startFleet(cfg, tgt.WSURL, pub.IDs(), logger)
	if err != nil {
		return err
	}
	defer func() {
		if err := f.stop(); err != nil {
			logger.Error("soak", "err", err)
		}
	}()
	start := time.Now()
	rep.StreamsWanted = int64(cfg.Clients * rep.PerClient * len(cfg.Channels))
	for {
		rep.StreamsSynced = f.synced()
		if rep.StreamsSynced >= rep.StreamsWanted {
			break
		}
		if err := sleepCtx(setup, 50*time.Millisecond); err != nil {
			return fmt.Errorf("loadgen: soak: %d of %d streams synced: %w", rep.StreamsSynced, rep.StreamsWanted, err)
		}
	}
	rep.ConnectSeconds = time.Since(start).Seconds()
	for _, c := range f.clients {
		if c.Stats().Connects > 0 {
			rep.Connected++
		}
	}
	fmt.Fprintf(progress, "soak: %d SDK clients connected, %d streams synced in %.1f s; %s at %.0f events/s\n",
		rep.Connected, rep.StreamsSynced, rep.ConnectSeconds, cfg.Duration, cfg.Rate)

	// Publish for Duration, a row every Interval.
	base := f.sample(pub, tgt.FeedPID)
	rep.FeedRSSBase = base.feed.RSS
	primed := pub.published.Load()
	pctx, pcancel := context.WithCancel(ctx)
	pub.SetRate(cfg.Rate)
	pubDone := make(chan error, 1)
	go func() { pubDone <- pub.Run(pctx) }()
	stopPub := func() error {
		if pcancel == nil {
			return nil
		}
		pcancel()
		pcancel = nil
		return <-pubDone
	}
	defer func() { _ = stopPub() }()
	end := time.Now().Add(cfg.Duration)
	prev := base
	all := NewHistSnapshot() // latencies since base: every later sample's window
	interrupted := false
	for time.Now().Before(end) && !interrupted {
		wait := min(cfg.Interval, time.Until(end))
		select {
		case <-ctx.Done():
			interrupted = true
		case err := <-pubDone:
			pubDone <- err
			return fmt.Errorf("loadgen: soak: publisher: %w", err)
		case <-time.After(wait):
		}
		now := f.sample(pub, tgt.FeedPID)
		all.Merge(now.hist)
		row := soakRow(&base, &prev, &now, cfg.Clients)
		rep.Rows = append(rep.Rows, row)
		fmt.Fprintf(progress, "soak %6.0fs: %s updates (%s/s), p99 %s ms, reconnects %d (heartbeat timeouts %d, write timeouts %d), gaps %d, resyncs %d, feed %.2f cores %s MiB\n",
			row.Elapsed, si(float64(row.Delivered)), si(row.DeliveredPerSec), ms(row.Latency.P99), row.Reconnects,
			row.HeartbeatTimeouts, row.WriteTimeouts, row.Gaps, row.Resyncs, row.FeedCPU, mib(row.FeedRSS))
		prev = now
	}
	rep.Seconds = time.Since(base.at).Seconds()
	if interrupted {
		rep.Notes = append(rep.Notes, fmt.Sprintf("interrupted after %.0f s of %s", rep.Seconds, cfg.Duration))
	}
	if err := stopPub(); err != nil {
		return fmt.Errorf("loadgen: soak: publisher: %w", err)
	}

	// Drain: every expected update arrives (or soakDrain passes).
	deadline := time.Now().Add(soakDrain)
	var last soakSample
	for {
		last = f.sample(pub, tgt.FeedPID)
		all.Merge(last.hist)
		if last.stats.Deltas-base.stats.Deltas >= last.expected-base.expected || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	rep.Disconnects = f.lost.copy()
	st := &last.stats
	rep.Totals = SoakTotals{Published: pub.published.Load() - primed, Expected: last.expected - base.expected,
		Delivered: st.Deltas - base.stats.Deltas, Connects: st.Connects, Reconnects: last.reconnects(cfg.Clients),
		HeartbeatTimeouts: st.HeartbeatTimeouts, WriteTimeouts: st.WriteTimeouts, Snapshots: st.Snapshots,
		Resumed: st.Resumed, Gaps: st.Gaps, EpochChanges: st.EpochChanges, ChecksumFailures: st.ChecksumFailures,
		Resyncs: st.Resyncs, DecodeErrors: st.DecodeErrors, ServerErrors: st.ServerErrors}
	rep.Latency = all.Summary()
	rep.FeedRSSEnd = last.feed.RSS
	if dt := last.feed.At.Sub(base.feed.At).Seconds(); dt > 0 {
		rep.FeedCPU = (last.feed.CPU - base.feed.CPU).Seconds() / dt
	}
	rep.OK, rep.Verdict = soakVerdict(rep, f.runErrs.Load())
	return nil
}

func soakRow(base, prev, now *soakSample, clients int) SoakRow {
	dt := now.at.Sub(prev.at).Seconds()
	row := SoakRow{Elapsed: now.at.Sub(base.at).Seconds(), Delivered: now.stats.Deltas - prev.stats.Deltas,
		Reconnects: now.reconnects(clients), HeartbeatTimeouts: now.stats.HeartbeatTimeouts,
		WriteTimeouts: now.stats.WriteTimeouts, Gaps: now.stats.Gaps, Resyncs: now.stats.Resyncs,
		Latency: now.hist.Summary(), FeedRSS: now.feed.RSS}
	if dt > 0 {
		row.DeliveredPerSec = float64(row.Delivered) / dt
		row.FeedCPU = (now.feed.CPU - prev.feed.CPU).Seconds() / dt
	}
	return row
}

func soakVerdict(rep *SoakReport, runErrs int64) (bool, string) {
	t := &rep.Totals
	var faults []string
	if rep.Connected != rep.Config.Clients || rep.StreamsSynced != rep.StreamsWanted {
		faults = append(faults, fmt.Sprintf("%d of %d clients connected, %d of %d streams synced",
			rep.Connected, rep.Config.Clients, rep.StreamsSynced, rep.StreamsWanted))
	}
	if t.Reconnects != 0 {
		faults = append(faults, fmt.Sprintf("%d reconnects", t.Reconnects))
	}
	if runErrs != 0 {
		faults = append(faults, fmt.Sprintf("%d clients stopped with an error", runErrs))
	}
	if t.Delivered != t.Expected {
		faults = append(faults, fmt.Sprintf("%d updates delivered of %d expected", t.Delivered, t.Expected))
	}
	if t.Expected == 0 {
		faults = append(faults, "no update expected: nothing was published")
	}
	if n := t.Gaps + t.EpochChanges + t.ChecksumFailures + t.DecodeErrors; n != 0 {
		faults = append(faults, fmt.Sprintf("%d broken streams (gaps %d, epoch changes %d, checksum failures %d, decode errors %d)",
			n, t.Gaps, t.EpochChanges, t.ChecksumFailures, t.DecodeErrors))
	}
	if len(faults) == 0 {
		return true, "ok: no reconnect, every expected update delivered once"
	}
	return false, strings.Join(faults, "; ")
}

// startFleet creates and runs one SDK client per layout slot, each subscribed to its
// instruments before its first connection.
func startFleet(cfg SoakConfig, wsURL string, ids []string, logger *slog.Logger) (*soakFleet, error) {
	ctx, cancel := context.WithCancel(context.Background())
	f := &soakFleet{cancel: cancel, lost: lossLog{kinds: map[string]int{}}}
	k := cfg.Instruments * cfg.Subscribers / cfg.Clients
	for i := range cfg.Clients {
		bot := &soakBot{seen: map[[2]string]struct{}{}, lost: &f.lost, stopping: &f.stopping}
		c, err := sdk.New(sdk.Options{URL: wsURL, Handler: bot, Logger: logger.With("client", i),
			HeartbeatTimeout: cfg.HeartbeatTimeout, WriteTimeout: cfg.WriteTimeout})
		if err != nil {
			cancel()
			f.wg.Wait()
			return nil, err
		}
		idx := layout(i, k, cfg.Instruments)
		names := make([]string, len(idx))
		for j, x := range idx {
			names[j] = ids[x]
		}
		if err := c.Subscribe(sdk.Subscription{Instruments: names, Channels: slices.Clone(cfg.Channels), Depth: cfg.Depth}); err != nil {
			cancel()
			f.wg.Wait()
			return nil, err
		}
		f.clients = append(f.clients, c)
		f.bots = append(f.bots, bot)
		f.insts = append(f.insts, idx)
		f.wg.Go(func() {
			if err := c.Run(ctx); err != nil {
				f.runErrs.Add(1)
				logger.Error("soak: client stopped", "client", i, "err", err)
			}
		})
	}
	return f, nil
}

// WriteTable writes the human report.
func (r *SoakReport) WriteTable(w io.Writer) {
	c := &r.Config
	fmt.Fprintf(w, "soak: %d SDK clients (pkg/client) x %d instruments (%d subscribers each, %d per client), channels %s, depth %d, %.0f events/s for %s, target %s\n",
		c.Clients, c.Instruments, c.Subscribers, r.PerClient, ChannelNames(c.Channels), c.Depth, c.Rate, c.Duration, r.Target)
	fmt.Fprintf(w, "machine: %d x %s, %.1f GiB, Linux %s, %s\n", r.Machine.CPUs, r.Machine.Model, r.Machine.MemGiB, r.Machine.Kernel, r.Machine.Go)
	for _, n := range r.Notes {
		fmt.Fprintf(w, "note: %s\n", n)
	}
	fmt.Fprintf(w, "setup: %d connected, %d/%d streams synced in %.1f s\n", r.Connected, r.StreamsSynced, r.StreamsWanted, r.ConnectSeconds)
	tw := tabwriter.NewWriter(w, 0, 0, 1, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "elapsed s\tdelivered\tupd/s\tp50 ms\tp99\tmax\treconnects\thb timeouts\twrite timeouts\tgaps\tresyncs\tfeed CPU\tfeed MiB\t")
	for _, row := range r.Rows {
		fmt.Fprintf(tw, "%.0f\t%d\t%s\t%s\t%s\t%s\t%d\t%d\t%d\t%d\t%d\t%.2f\t%s\t\n", row.Elapsed, row.Delivered, si(row.DeliveredPerSec),
			ms(row.Latency.P50), ms(row.Latency.P99), ms(row.Latency.Max), row.Reconnects, row.HeartbeatTimeouts, row.WriteTimeouts,
			row.Gaps, row.Resyncs, row.FeedCPU, mib(row.FeedRSS))
	}
	tw.Flush()
	t := &r.Totals
	fmt.Fprintf(w, "totals: %d events published, %d updates expected, %d delivered; %d connects, %d reconnects (%d heartbeat timeouts, %d write timeouts); %d snapshots, %d streams resumed, %d gaps, %d epoch changes, %d checksum failures, %d resyncs, %d decode errors, %d server errors\n",
		t.Published, t.Expected, t.Delivered, t.Connects, t.Reconnects, t.HeartbeatTimeouts, t.WriteTimeouts, t.Snapshots, t.Resumed,
		t.Gaps, t.EpochChanges, t.ChecksumFailures, t.Resyncs, t.DecodeErrors, t.ServerErrors)
	if len(r.Disconnects) > 0 {
		kinds := make([]string, 0, len(r.Disconnects))
		for k := range r.Disconnects {
			kinds = append(kinds, k)
		}
		sort.Strings(kinds)
		var parts []string
		for _, k := range kinds {
			parts = append(parts, fmt.Sprintf("%s x%d", k, r.Disconnects[k]))
		}
		fmt.Fprintf(w, "connections lost: %s\n", strings.Join(parts, ", "))
	}
	fmt.Fprintf(w, "latency (ingest to SDK handler): n=%d p50 %s ms p90 %s ms p99 %s ms p99.9 %s ms max %s ms; feed %.2f cores, RSS %s -> %s MiB\n",
		r.Latency.Count, ms(r.Latency.P50), ms(r.Latency.P90), ms(r.Latency.P99), ms(r.Latency.P999), ms(r.Latency.Max),
		r.FeedCPU, mib(r.FeedRSSBase), mib(r.FeedRSSEnd))
	fmt.Fprintf(w, "SUMMARY soak %.0f s: %s\n", r.Seconds, r.Verdict)
}

// WriteJSON writes the report as one JSON object.
func (r *SoakReport) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}
