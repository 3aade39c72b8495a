package loadgen

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tickwire/tickwire/internal/bus"
	pb "github.com/tickwire/tickwire/pkg/proto/tickwire/v1"
)

// runner is one run's state.
type runner struct {
	cfg      Config
	log      *slog.Logger
	progress io.Writer
	tgt      *target
	pub      *publisher
	clients  []*client // nil where the connection failed
	insts    [][]int   // per client: instrument indexes
	extra    *client   // stalled mode: the client that stops reading (not in the aggregates)
	probe    *probe
	feedRSS  rssTracker
	self     int
	base     snapshotTotals       // at the publisher's start
	busReg   *prometheus.Registry // the publishing Bus's metrics (NATS messages it published)
}

// rssTracker samples the feed's RSS in the background and keeps the maximum since reset.
type rssTracker struct {
	max    atomic.Int64
	mu     sync.Mutex
	series []int64 // guarded by mu; one sample per second
}

// snapshotTotals is every counter at one instant, summed over the measured clients.
type snapshotTotals struct {
	at                                                   time.Time
	published, dropped, expected                         uint64
	natsMsgs, natsEvents                                 uint64 // NATS messages acknowledged, and the events in them
	frames, bytes, updates, snapshots, gaps, dups, unsyn uint64
	errs, malformed                                      uint64
	reasons                                              [6]uint64
	closes                                               int
	hist                                                 *HistSnapshot // latencies since the previous totals
	probe                                                *HistSnapshot // likewise, of the snapshot probe
	feed, nats, self                                     procSample
}

// Run runs one load test and returns its report. It writes step rows to progress as they
// complete. Whatever happens, processes it started are stopped before it returns.
func Run(ctx context.Context, cfg Config, logger *slog.Logger, progress io.Writer) (*Report, error) {
	cfg, err := cfg.Merge()
	if err != nil {
		return nil, err
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if progress == nil {
		progress = io.Discard
	}
	start := time.Now()
	rep := &Report{Scenario: cfg.Scenario, Server: cfg.Target, Started: start, Machine: machineInfo(), Config: cfg,
		Channels: ChannelNames(cfg.Channels), PerClient: cfg.PerClient()}
	if rep.Scenario == "" {
		rep.Scenario = "custom"
	}
	rep.Setup.FileLimit, err = raiseFileLimit()
	if err != nil {
		return nil, err
	}
	if need := uint64(cfg.Clients) + 256; rep.Setup.FileLimit < need {
		return nil, fmt.Errorf("%w: %d clients need about %d open files; the limit is %d (raise ulimit -n)", ErrConfig, cfg.Clients, need, rep.Setup.FileLimit)
	}
	// The whole run, setup included, is bounded by Duration; stopping gets its own time.
	ctx, cancel := context.WithTimeout(ctx, cfg.Duration)
	defer cancel()
	if cfg.Target == TargetCentrifugo {
		err = runCentrifugo(ctx, cfg, logger, progress, rep)
		rep.Seconds = time.Since(start).Seconds()
		if err != nil && errors.Is(err, context.DeadlineExceeded) && len(rep.Steps) > 0 {
			rep.Notes = append(rep.Notes, fmt.Sprintf("the run reached --duration %s", cfg.Duration))
			err = nil
		}
		return rep, err
	}
	r := &runner{cfg: cfg, log: logger, progress: progress, self: os.Getpid()}

	switch {
	case cfg.Spawn:
		r.tgt, err = spawnTarget(ctx, &cfg)
	case cfg.InProcess:
		r.tgt, err = inprocessTarget(ctx, &cfg, logger)
	default:
		r.tgt, err = externalTarget(&cfg)
	}
	if err != nil {
		return nil, err
	}
	rep.Target = r.tgt.Mode
	rep.Notes = append(rep.Notes, r.tgt.Notes...)
	defer func() {
		if cerr := r.tgt.Close(); cerr != nil {
			logger.Warn("stopping the target", "err", cerr)
		}
	}()
	err = r.run(ctx, rep)
	httpClient.CloseIdleConnections()
	rep.Seconds = time.Since(start).Seconds()
	if err != nil && errors.Is(err, context.DeadlineExceeded) && len(rep.Steps) > 0 {
		rep.Notes = append(rep.Notes, fmt.Sprintf("the run reached --duration %s", cfg.Duration))
		err = nil
	}
	return rep, err
}

func (r *runner) run(ctx context.Context, rep *Report) error {
	cfg := r.cfg
	r.busReg = prometheus.NewRegistry()
	b, err := bus.Connect(ctx, bus.Config{URL: r.tgt.NATSURL, Name: "tickwire-loadgen", MaxPendingPublishes: 16384, Auth: r.tgt.NATSAuth},
		r.log, r.busReg)
	if err != nil {
		return err
	}
	defer b.Close()
	if r.tgt.Mode != "external" {
		sctx, scancel := context.WithTimeout(ctx, 10*time.Second)
		err := b.EnsureStream(sctx, bus.StreamConfig{})
		scancel()
		if err != nil {
			return err
		}
	}
	if err := waitReady(ctx, r.tgt.HTTPURL, 30*time.Second); err != nil {
		return err
	}

	mcfg := cfg.InProcessFeed.Market.WithDefaults()
	pcfg := publisherConfig{Instruments: cfg.Instruments, Venue: cfg.Venue, Seed: cfg.Seed,
		Epoch: uint64(time.Now().UnixMilli()), Channels: cfg.Channels, DepthIndex: mcfg.DepthIndex(cfg.Depth), Market: mcfg,
		Source: cfg.Market}
	r.pub, err = newPublisher(pcfg, b)
	if err != nil {
		return err
	}
	if cfg.Market == MarketQuotes {
		rep.Notes = append(rep.Notes, fmt.Sprintf("events: %d instruments (venue %q) without books, every event a Quote that changes the quote (one quote delta per subscriber), epoch %d; expected deliveries from pkg/market shadow states",
			cfg.Instruments, cfg.Venue, pcfg.Epoch))
	} else {
		rep.Notes = append(rep.Notes, fmt.Sprintf("events: synthetic market of %d instruments (venue %q), epoch %d, one checkpoint then none; expected deliveries from pkg/market shadow states with the feed's default depths %v",
			cfg.Instruments, cfg.Venue, pcfg.Epoch, mcfg.Depths))
	}
	if err := r.pub.Prime(ctx); err != nil {
		return err
	}
	if err := r.prefill(ctx, rep); err != nil {
		return err
	}
	if err := b.Flush(ctx); err != nil {
		return err
	}
	if err := r.waitInstruments(ctx); err != nil {
		return err
	}

	rate := cfg.Rate
	var schedule []stepRate
	if len(cfg.DeliveredSteps) > 0 && cfg.Mode == ModeStep {
		upe, err := calibrate(pcfg, 20000)
		if err != nil {
			return err
		}
		rep.Setup.UpdatesPerEvent = upe
		for _, d := range cfg.DeliveredSteps {
			schedule = append(schedule, stepRate{events: d / (upe * float64(cfg.Subscribers)), delivered: d})
		}
		rep.Notes = append(rep.Notes, fmt.Sprintf("steps at delivered rates %v: event rates from %.3f updates per event per subscriber (calibrated)",
			cfg.DeliveredSteps, upe))
	}
	if cfg.TargetDelivered > 0 && cfg.Mode != ModeStep && cfg.Mode != ModeIdle {
		upe, err := calibrate(pcfg, 20000)
		if err != nil {
			return err
		}
		rep.Setup.UpdatesPerEvent = upe
		rate = cfg.TargetDelivered / (upe * float64(cfg.Subscribers))
		rep.Notes = append(rep.Notes, fmt.Sprintf("rate %.0f events/s for %.0f delivered updates/s (%.3f updates per event per subscriber, calibrated)",
			rate, cfg.TargetDelivered, upe))
	}

	// Baselines, then connect.
	time.Sleep(500 * time.Millisecond)
	base, _ := readProc(r.tgt.FeedPID)
	selfBase, _ := readProc(r.self)
	rep.Setup.FeedRSSBase, rep.Setup.LoadgenRSSBase = base.RSS, selfBase.RSS
	stopSampler := r.feedRSS.sample(r.tgt.FeedPID)
	defer stopSampler()
	if err := r.connect(ctx, rep); err != nil {
		return err
	}
	defer r.closeClients()
	recordConnRSS(rep, r.tgt.FeedPID, r.self)

	r.base = r.totals() // totals count from here: the Prime events' deltas went to nobody
	var pubErr error
	pctx, pcancel := context.WithCancel(ctx)
	var pwg sync.WaitGroup
	r.pub.SetRate(rate)
	pwg.Add(1)
	go func() {
		defer pwg.Done()
		pubErr = r.pub.Run(pctx)
		if pubErr != nil {
			pcancel()
		}
	}()
	defer func() { pcancel(); pwg.Wait() }()

	if cfg.SnapshotProbe {
		r.probe, err = startProbe(ctx, r.tgt.WSURL, r.pub.IDs()[0])
		if err != nil {
			return err
		}
		defer r.probe.stop() // idempotent
	}

	fmt.Fprintf(r.progress, "%s: %d clients connected, %d/%d streams synced; running %s mode\n",
		rep.Scenario, rep.Setup.Connected, rep.Setup.StreamsSynced, rep.Setup.StreamsWanted, cfg.Mode)
	emit := func(s StepReport) {
		rep.Steps = append(rep.Steps, s)
		fmt.Fprintf(r.progress, "step %s: %s ev/s (published %s) -> %s upd/s delivered of %s expected, %s frames/s, p50 %s ms p99 %s ms (publish to feed apply: p50 %s p99 %s; of it publish to stored p50 %s p99 %s, stored to the feed's consumer p50 %s p99 %s), gaps %d resyncs %d conflations %d closes %d, feed %.2f cores %.0f ns/upd %s MiB: %s\n",
			s.Name, si(s.TargetRate), si(s.PublishedRate), si(s.DeliveredPerSec), si(s.ExpectedPerSec), si(s.FramesPerSec),
			ms(s.Latency.P50), ms(s.Latency.P99), ms(s.IngestToApply.P50), ms(s.IngestToApply.P99), ms(s.IngestToStore.P50), ms(s.IngestToStore.P99), ms(s.StoreToConsume.P50), ms(s.StoreToConsume.P99), s.Gaps, s.Resyncs, s.Conflations, s.Closes, s.FeedCPU, s.FeedCPUPerUpdate, mib(s.FeedRSSMax), s.Verdict)
	}

	switch cfg.Mode {
	case ModeStep:
		err = stepLoop(pctx, cfg, schedule, rate, func(ctx context.Context, name string, rate, delivered float64, warmup, hold time.Duration) (StepReport, error) {
			s, err := r.measure(ctx, name, rate, warmup, hold)
			s.TargetDelivered = delivered
			return s, err
		}, emit, rep)
	case ModeFixed:
		var s StepReport
		s, err = r.measure(pctx, "fixed", rate, cfg.Warmup, r.remaining(ctx, cfg.Hold))
		if err == nil {
			emit(s)
			if s.OK {
				rep.Best = &rep.Steps[len(rep.Steps)-1]
			}
		}
	case ModeIdle:
		var s StepReport
		s, err = r.measure(pctx, "idle", rate, cfg.Warmup, cfg.Hold)
		if err == nil {
			emit(s)
			n := int64(rep.Setup.Connected)
			rep.Setup.FeedRSSConns = s.FeedRSS
			if n > 0 {
				rep.Setup.RSSPerConn = float64(s.FeedRSS-rep.Setup.FeedRSSBase) / float64(n)
				rep.Setup.LoadgenPerConn = float64(s.LoadgenRSS-rep.Setup.LoadgenRSSBase) / float64(n)
			}
		}
	case ModeStalled:
		err = r.runStalled(pctx, rate, emit, rep)
	case ModeCandles:
		err = r.runCandles(pctx, rate, emit, rep)
	}
	pcancel()
	pwg.Wait()
	if r.probe != nil {
		r.probe.stop()
	}
	rep.Totals = r.settle(ctx)
	rep.CloseCodes = r.closeCodes()
	if err == nil && pubErr != nil {
		err = fmt.Errorf("loadgen: publisher: %w", pubErr)
	}
	if errors.Is(err, context.Canceled) && ctx.Err() != nil {
		err = ctx.Err()
	}
	return err
}

// drainTimeout bounds the wait for deliveries in flight after the publisher stops.
const drainTimeout = 3 * time.Second

// settle waits until the measured clients received every expected update (or drainTimeout,
// or the run's end) and returns the run's totals.
func (r *runner) settle(ctx context.Context) Totals {
	deadline := time.Now().Add(drainTimeout)
	var t snapshotTotals
	for {
		t = r.totals()
		if t.updates >= t.expected || time.Now().After(deadline) || sleepCtx(ctx, 50*time.Millisecond) != nil {
			break
		}
	}
	b := &r.base
	reason := func(x pb.SnapshotReason) uint64 { return t.reasons[x] - b.reasons[x] }
	return Totals{Published: t.published - b.published, Expected: t.expected - b.expected, Delivered: t.updates - b.updates,
		Frames: t.frames - b.frames, Bytes: t.bytes - b.bytes, Snapshots: t.snapshots - b.snapshots, Gaps: t.gaps - b.gaps,
		Resyncs: reason(pb.SnapshotReason_SNAPSHOT_REASON_RESYNC), Conflations: reason(pb.SnapshotReason_SNAPSHOT_REASON_CONFLATED),
		Duplicates: t.dups - b.dups, Unsynced: t.unsyn - b.unsyn, Errors: t.errs - b.errs, Malformed: t.malformed - b.malformed,
		Closes: t.closes - b.closes}
}

// remaining shortens d so that a measurement ends before the run's deadline.
func (r *runner) remaining(ctx context.Context, d time.Duration) time.Duration {
	if dl, ok := ctx.Deadline(); ok {
		left := time.Until(dl) - r.cfg.Warmup - time.Second
		if left < d {
			return max(left, time.Second)
		}
	}
	return d
}

// stalledReadBuffer is the kernel receive buffer of the client that stalls: small, so that
// its backlog builds in the feed's bounded queue within seconds rather than in megabytes of
// loopback socket buffers.
const stalledReadBuffer = 16 << 10

// runStalled measures the clients of the layout at a fixed rate while one more client,
// subscribed to every channel of every instrument, reads (baseline), then while it has stopped
// reading (stalled).
func (r *runner) runStalled(ctx context.Context, rate float64, emit func(StepReport), rep *Report) error {
	stalled, err := dialClient(ctx, clientConfig{URL: r.tgt.WSURL, Instruments: r.pub.IDs(),
		Channels: []pb.Channel{1, 2, 3, 4, 5}, Depth: 10, ReadBuffer: 64 << 10, SocketReadBuffer: stalledReadBuffer})
	if err != nil {
		return err
	}
	r.extra = stalled
	defer stalled.Close()
	rep.Notes = append(rep.Notes, fmt.Sprintf("stalled client: one more connection subscribed to every channel of all %d instruments (depth 10, %d KiB socket receive buffer), reading in the baseline step, not reading in the stalled step; it is not part of the step figures",
		len(r.pub.IDs()), stalledReadBuffer>>10))
	r.feedRSS.reset()
	base, err := r.measure(ctx, "baseline", rate, r.cfg.Warmup, r.cfg.Hold)
	if err != nil {
		return err
	}
	emit(base)
	r.feedRSS.reset()
	before := scrapeFeed(ctx, r.tgt.AdminURL)
	stallAt := time.Now()
	stalled.Stall()
	var closedAfter atomic.Int64
	var closeCode atomic.Int64
	watch, unwatch := context.WithCancel(ctx)
	defer unwatch()
	go func() { // the stalled reader cannot see its close: ask the feed
		for sleepCtx(watch, 250*time.Millisecond) == nil {
			now := scrapeFeed(watch, r.tgt.AdminURL)
			for code := range now.closesSince(before) {
				c, _ := strconv.Atoi(code)
				closeCode.Store(int64(c))
				closedAfter.Store(int64(time.Since(stallAt)))
				return
			}
		}
	}()
	with, err := r.measure(ctx, "stalled", rate, 0, r.cfg.Hold+r.cfg.Warmup)
	if err != nil {
		return err
	}
	unwatch()
	after := scrapeFeed(ctx, r.tgt.AdminURL)
	emit(with)
	if base.OK {
		rep.Best = &rep.Steps[0]
	}
	rep.Stalled = &StalledReport{BaselineDelivered: base.DeliveredPerSec, StalledDelivered: with.DeliveredPerSec,
		StalledCloseCode: int(closeCode.Load()), StalledClosedAfter: time.Duration(closedAfter.Load()).Seconds(),
		FeedConflations: after.conflations - before.conflations, FeedCloses: after.closesSince(before),
		FeedRSSMaxBaseline: base.FeedRSSMax, FeedRSSMaxStalled: with.FeedRSSMax, FeedRSSSeries: r.feedRSS.seriesCopy()}
	if !before.ok {
		rep.Notes = append(rep.Notes, "the feed's /metrics could not be read: the stalled client's conflations and close are unknown")
	}
	if base.DeliveredPerSec > 0 {
		rep.Stalled.Change = with.DeliveredPerSec/base.DeliveredPerSec - 1
	}
	return nil
}

// waitInstruments waits until the feed lists every instrument of the run.
func (r *runner) waitInstruments(ctx context.Context) error {
	deadline := time.Now().Add(30 * time.Second)
	for {
		n, err := countInstruments(ctx, r.tgt.HTTPURL, r.cfg.Venue)
		if err == nil && n >= r.cfg.Instruments {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("loadgen: the feed lists %d of %d instruments after 30 s (err %v)", n, r.cfg.Instruments, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// connect opens every client with bounded concurrency and waits for their first snapshots.
func (r *runner) connect(ctx context.Context, rep *Report) error {
	cfg := r.cfg
	k := cfg.PerClient()
	ids := r.pub.IDs()
	readBuf := 4 << 10 // 4 KiB per connection keeps 10k clients small
	if cfg.Clients <= 16 {
		readBuf = 256 << 10 // few clients carry much: read in large chunks
	}
	r.clients, r.insts = dialAll(ctx, cfg, rep, func(_ int, idx []int) (*client, error) {
		names := make([]string, len(idx))
		for j, x := range idx {
			names[j] = ids[x]
		}
		return dialClient(ctx, clientConfig{URL: r.tgt.WSURL, Instruments: names, Channels: cfg.Channels,
			Depth: cfg.Depth, CompactQuotes: cfg.CompactQuotes, ReadBuffer: readBuf})
	})
	if err := ctx.Err(); err != nil {
		return err
	}
	if rep.Setup.Connected == 0 {
		return fmt.Errorf("loadgen: no client connected: %s", rep.Setup.FirstError)
	}
	rep.Setup.StreamsWanted = int64(rep.Setup.Connected * k * len(cfg.Channels))
	deadline := time.Now().Add(30 * time.Second)
	for {
		var synced int64
		for _, c := range r.clients {
			if c != nil {
				synced += c.stats.synced.Load()
			}
		}
		rep.Setup.StreamsSynced = synced
		if synced >= rep.Setup.StreamsWanted || time.Now().After(deadline) {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// closeClients closes every client, a few at a time.
func (r *runner) closeClients() { closeAll(r.clients) }

func (r *runner) closeCodes() map[int]int {
	out := map[int]int{}
	for _, c := range r.clients {
		if c == nil {
			continue
		}
		if code := c.stats.closeCode.Load(); code != 0 && code != closeByUs {
			out[int(code)]++
		}
	}
	return out
}

// totals sums every counter now, and takes the latencies recorded since the previous call.
func (r *runner) totals() snapshotTotals {
	t := snapshotTotals{at: time.Now(), hist: NewHistSnapshot()}
	t.published = r.pub.published.Load()
	t.natsMsgs = counterValue(r.busReg, "tickwire_bus_published_messages_total")
	t.natsEvents = counterValue(r.busReg, "tickwire_bus_published_total")
	t.dropped = r.pub.dropped.Load()
	for i, c := range r.clients {
		if c == nil {
			continue
		}
		for _, x := range r.insts[i] { // O(instruments per client): fine up to the firehose's 1000
			t.expected += r.pub.Expected(x)
		}
		s := &c.stats
		t.frames += s.frames.Load()
		t.bytes += s.bytes.Load()
		t.updates += s.updates.Load()
		t.snapshots += s.snapshots.Load()
		t.gaps += s.gaps.Load()
		t.dups += s.dups.Load()
		t.unsyn += s.unsynced.Load()
		t.errs += s.errs.Load()
		t.malformed += s.malformed.Load()
		for j := range t.reasons {
			t.reasons[j] += s.reasons[j].Load()
		}
		if code := s.closeCode.Load(); code != 0 && code != closeByUs {
			t.closes++
		}
		s.hist.Take(t.hist)
	}
	if r.probe != nil {
		t.probe = NewHistSnapshot()
		r.probe.hist.Take(t.probe)
	}
	t.feed, _ = readProc(r.tgt.FeedPID)
	if r.tgt.NATSPID != 0 {
		t.nats, _ = readProc(r.tgt.NATSPID)
	}
	t.self, _ = readProc(r.self)
	return t
}

// measure sets the rate, waits warmup, and measures a window of hold.
func (r *runner) measure(ctx context.Context, name string, rate float64, warmup, hold time.Duration) (StepReport, error) {
	r.pub.SetRate(rate)
	if err := sleepCtx(ctx, warmup); err != nil {
		return StepReport{}, err
	}
	r.feedRSS.max.Store(0)
	fa := scrapeFeed(ctx, r.tgt.AdminURL)
	a := r.totals()
	if err := sleepCtx(ctx, hold); err != nil {
		return StepReport{}, err
	}
	b := r.totals() // its latencies are this window's
	fb := scrapeFeed(ctx, r.tgt.AdminURL)
	dt := b.at.Sub(a.at).Seconds()
	s := StepReport{Name: name, Seconds: dt, TargetRate: rate}
	per := func(x, y uint64) float64 { return float64(x-y) / dt }
	s.PublishedRate = per(b.published, a.published)
	s.PublishDropped = b.dropped - a.dropped
	if b.natsMsgs > a.natsMsgs {
		// Both counted at the ack: events published but not yet acknowledged at either end of
		// the window would skew a ratio of published events to acknowledged messages (below 1
		// at one event per message).
		s.EventsPerMessage = float64(b.natsEvents-a.natsEvents) / float64(b.natsMsgs-a.natsMsgs)
	}
	s.ExpectedPerSec = per(b.expected, a.expected)
	s.DeliveredPerSec = per(b.updates, a.updates)
	s.Ratio = 1
	if b.expected > a.expected {
		s.Ratio = float64(b.updates-a.updates) / float64(b.expected-a.expected)
	}
	s.FramesPerSec = per(b.frames, a.frames)
	s.BytesPerSec = per(b.bytes, a.bytes)
	if b.frames > a.frames {
		s.UpdatesPerFrame = float64(b.updates-a.updates) / float64(b.frames-a.frames)
	}
	s.Latency = b.hist.Summary()
	if fa.ok && fb.ok {
		s.IngestToApply = partOf(fa, fb, histApply)
		s.IngestToStore = partOf(fa, fb, histToStore)
		s.StoreToConsume = partOf(fa, fb, histFromStore)
	}
	if b.probe != nil {
		sl := b.probe.Summary()
		s.SnapshotLatency = &sl
	}
	s.Snapshots = b.snapshots - a.snapshots
	s.Gaps = b.gaps - a.gaps
	s.Resyncs = b.reasons[pb.SnapshotReason_SNAPSHOT_REASON_RESYNC] - a.reasons[pb.SnapshotReason_SNAPSHOT_REASON_RESYNC]
	s.Conflations = b.reasons[pb.SnapshotReason_SNAPSHOT_REASON_CONFLATED] - a.reasons[pb.SnapshotReason_SNAPSHOT_REASON_CONFLATED]
	s.Closes = b.closes - a.closes
	s.Duplicates = b.dups - a.dups
	s.Unsynced = b.unsyn - a.unsyn
	s.Errors = b.errs - a.errs
	s.Malformed = b.malformed - a.malformed
	cpu := func(x, y procSample) float64 { return (x.CPU - y.CPU).Seconds() / dt }
	s.FeedCPU = cpu(b.feed, a.feed)
	if d := b.updates - a.updates; d > 0 {
		s.FeedCPUPerUpdate = float64(b.feed.CPU-a.feed.CPU) / float64(d)
	}
	s.FeedRSS = b.feed.RSS
	s.FeedRSSMax = max(r.feedRSS.max.Load(), b.feed.RSS, a.feed.RSS)
	if r.tgt.NATSPID != 0 {
		s.NATSCPU = cpu(b.nats, a.nats)
		s.NATSRSS = b.nats.RSS
	}
	s.LoadgenCPU = cpu(b.self, a.self)
	s.LoadgenRSS = b.self.RSS
	s.OK, s.PublisherLimited, s.Verdict = judge(window{Seconds: dt, TargetRate: rate, Published: b.published - a.published,
		Expected: b.expected - a.expected, Delivered: b.updates - a.updates, Gaps: s.Gaps, Conflated: s.Conflations,
		Closes: s.Closes, P99: s.Latency.P99}, thresholds{MinRatio: r.cfg.MinRatio, MaxP99: r.cfg.MaxP99})
	return s, nil
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// sample samples pid's RSS every 250 ms (max) and every second (series) until stopped; stop
// waits for the sampling goroutine.
func (t *rssTracker) sample(pid int) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(250 * time.Millisecond)
		defer tick.Stop()
		for n := 0; ; n++ {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			s, err := readProc(pid)
			if err != nil {
				continue
			}
			for {
				m := t.max.Load()
				if s.RSS <= m || t.max.CompareAndSwap(m, s.RSS) {
					break
				}
			}
			if n%4 == 3 {
				t.mu.Lock()
				t.series = append(t.series, s.RSS)
				t.mu.Unlock()
			}
		}
	}()
	return func() { cancel(); <-done }
}

func (t *rssTracker) reset() {
	t.max.Store(0)
	t.mu.Lock()
	t.series = nil
	t.mu.Unlock()
}

func (t *rssTracker) seriesCopy() []int64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	return append([]int64(nil), t.series...)
}

// probe is a side client that subscribes to one instrument's depth-50 book, times the
// snapshot, unsubscribes, and again, about ten times a second (within the feed's command rate
// limit of 50/s: two commands per round).
type probe struct {
	c        *client
	hist     Histogram
	got      chan int64
	cancel   context.CancelFunc
	done     chan struct{}
	stopOnce sync.Once
}

const (
	probeInterval = 100 * time.Millisecond
	probeDepth    = 50 // the deepest tier the feed offers by default
)

func startProbe(ctx context.Context, wsURL, instrument string) (*probe, error) {
	p := &probe{got: make(chan int64, 1), done: make(chan struct{})}
	c, err := dialClient(ctx, clientConfig{URL: wsURL, Channels: []pb.Channel{pb.Channel_CHANNEL_BOOK}, Depth: probeDepth,
		ReadBuffer: 64 << 10, OnSnapshot: func(_ string, nowNs int64, s *snapInfo) {
			if s.Channel == uint8(pb.Channel_CHANNEL_BOOK) {
				select {
				case p.got <- nowNs:
				default:
				}
			}
		}})
	if err != nil {
		return nil, err
	}
	p.c = c
	pctx, cancel := context.WithCancel(ctx)
	p.cancel = cancel
	go func() {
		defer close(p.done)
		for pctx.Err() == nil {
			sent := time.Now().UnixNano()
			if c.subscribe([]string{instrument}) != nil {
				return
			}
			select {
			case got := <-p.got:
				p.hist.Record(got - sent)
			case <-time.After(5 * time.Second):
				p.hist.Record(int64(5 * time.Second)) // counted as 5 s: a lost snapshot must show
			case <-pctx.Done():
				return
			}
			if c.unsubscribe([]string{instrument}) != nil {
				return
			}
			_ = sleepCtx(pctx, probeInterval)
		}
	}()
	return p, nil
}

func (p *probe) stop() {
	p.stopOnce.Do(func() {
		p.cancel()
		<-p.done
		p.c.Close()
	})
}

// Summary returns the report's one-line outcome (for logs).
func (r *Report) Summary() string {
	var b strings.Builder
	r.WriteTable(&b)
	return b.String()
}

// recordConnRSS records the server's RSS right after every client connected and subscribed, and
// what that is per connection over the baseline (Setup.FeedRSSBase, LoadgenRSSBase).
func recordConnRSS(rep *Report, serverPID, selfPID int) {
	srv, err := readProc(serverPID)
	if err != nil {
		return
	}
	self, _ := readProc(selfPID)
	rep.Setup.FeedRSSConns = srv.RSS
	rep.Setup.RSSPerConn = perConn(srv.RSS, rep.Setup.FeedRSSBase, rep.Setup.Connected)
	rep.Setup.LoadgenPerConn = perConn(self.RSS, rep.Setup.LoadgenRSSBase, rep.Setup.Connected)
}

// perConn is (rss - base) / n bytes, 0 without connections.
func perConn(rss, base int64, n int) float64 {
	if n <= 0 {
		return 0
	}
	return float64(rss-base) / float64(n)
}

// counterValue returns the counter name in reg (0 if reg is nil or has none).
func counterValue(reg *prometheus.Registry, name string) uint64 {
	if reg == nil {
		return 0
	}
	mfs, err := reg.Gather()
	if err != nil {
		return 0
	}
	for _, mf := range mfs {
		if mf.GetName() == name && len(mf.GetMetric()) > 0 {
			return uint64(mf.GetMetric()[0].GetCounter().GetValue())
		}
	}
	return 0
}

// partOf returns the p50 and p99 of the feed's histogram series between two scrapes (zero if
// the feed does not export it).
func partOf(a, b feedCounters, series string) LatencyPart {
	return LatencyPart{P50: histQuantile(a.hists[series], b.hists[series], 0.50), P99: histQuantile(a.hists[series], b.hists[series], 0.99)}
}
