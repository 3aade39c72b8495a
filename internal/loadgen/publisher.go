package loadgen

import (
	"context"
	"fmt"
	"math"
	"sync/atomic"
	"time"

	"github.com/tickwire/tickwire/internal/source/synthetic"
	"github.com/tickwire/tickwire/pkg/market"
	pb "github.com/tickwire/tickwire/pkg/proto/tickwire/v1"
)

// EventSink publishes one event; *bus.Bus is one (JetStream, de-duplicated by position).
type EventSink interface {
	Publish(ctx context.Context, ev *pb.Event) error
}

// pacePeriod is the publisher's batch period: each period publishes the events due since the
// last at the current rate (a token bucket). 1 ms keeps bursts to rate/1000 events.
const pacePeriod = time.Millisecond

// maxBacklog bounds how far behind schedule the publisher may fall before it drops the
// backlog instead of bursting: a publisher that cannot keep up shows as an achieved rate below
// the target, never as a burst that looks like feed latency.
const maxBacklog = 100 * time.Millisecond

// publisherConfig says what to publish.
type publisherConfig struct {
	Instruments int
	Venue       string // instruments are "<venue>:<TICKER>", so a run never collides with ingest
	Seed        uint64
	Epoch       uint64
	// Streams counted as expected deliveries: channels and the book depth (index into the
	// feed's market.Config depths).
	Channels   []pb.Channel
	DepthIndex int
	Market     market.Config
	// Source is MarketSynthetic (default) or MarketQuotes.
	Source string
}

// publisher generates synthetic events (internal/source/synthetic) for M instruments, stamps them
// with this run's epoch, gapless per-instrument seqs and ingest_time_ns = now, publishes them
// at a controlled rate, and keeps a shadow of each instrument's feed state (pkg/market, the
// feed's own state machine) to count, per instrument, how many deltas the feed must deliver on
// the subscribed streams.
type publisher struct {
	cfg     publisherConfig
	sink    EventSink
	mkt     eventSource
	ids     []string                      // loadgen id per market index
	index   map[string]int                // synthetic id -> index
	infos   map[string]*pb.InstrumentInfo // synthetic id -> info under the loadgen id
	seq     []uint64
	shadow  []*market.State
	streams []int // shadow stream indexes counted

	rate      atomic.Uint64 // events/s, float64 bits
	published atomic.Uint64 // events handed to the sink
	errors    atomic.Uint64
	dropped   atomic.Uint64   // events skipped because the publisher fell behind by maxBacklog
	deltas    []atomic.Uint64 // per instrument: deltas on the counted streams, cumulative
}

func newPublisher(cfg publisherConfig, sink EventSink) (*publisher, error) {
	// One checkpoint (info + full book of every instrument) at the start, then none: a
	// periodic checkpoint is a burst of 2*M events that would distort a step. The feed keeps
	// the book whole from the first snapshot on.
	var mkt eventSource = newQuoteMarket(cfg.Instruments)
	if cfg.Source != MarketQuotes {
		m, err := synthetic.NewMarket(synthetic.Config{Instruments: cfg.Instruments, Seed: cfg.Seed,
			CheckpointInterval: 1000 * time.Hour})
		if err != nil {
			return nil, fmt.Errorf("loadgen: synthetic market: %w", err)
		}
		mkt = m
	}
	p := &publisher{cfg: cfg, sink: sink, mkt: mkt, index: map[string]int{}, infos: map[string]*pb.InstrumentInfo{},
		deltas: make([]atomic.Uint64, cfg.Instruments)}
	mcfg := cfg.Market.WithDefaults()
	for i, info := range mkt.Instruments() {
		id := cfg.Venue + ":" + info.Symbol
		p.ids = append(p.ids, id)
		p.index[info.Id] = i
		in := &pb.InstrumentInfo{Id: id, Venue: cfg.Venue, Symbol: info.Symbol, Base: info.Base, Quote: info.Quote,
			PriceScale: info.PriceScale, SizeScale: info.SizeScale, TickSize: info.TickSize, LotSize: info.LotSize,
			Status: info.Status}
		p.infos[info.Id] = in
		p.shadow = append(p.shadow, market.NewState(id, mcfg))
	}
	p.seq = make([]uint64, cfg.Instruments)
	for _, ch := range cfg.Channels {
		p.streams = append(p.streams, market.StreamOf(ch, cfg.DepthIndex))
	}
	return p, nil
}

// IDs returns the instrument ids, in market order.
func (p *publisher) IDs() []string { return p.ids }

// SetRate sets the target rate in events per second.
func (p *publisher) SetRate(r float64) { p.rate.Store(math.Float64bits(r)) }

// Rate returns the target rate.
func (p *publisher) Rate() float64 { return math.Float64frombits(p.rate.Load()) }

// Expected returns the cumulative deltas generated for instrument i on the counted streams.
func (p *publisher) Expected(i int) uint64 { return p.deltas[i].Load() }

// publishOne generates, stamps, publishes and shadows one event.
func (p *publisher) publishOne(ctx context.Context, venueNs int64) error {
	ev := p.mkt.Next(venueNs)
	i, ok := p.index[ev.Instrument]
	if !ok {
		return fmt.Errorf("loadgen: market produced unknown instrument %q", ev.Instrument)
	}
	ev.Instrument = p.ids[i]
	if info, ok := ev.Body.(*pb.Event_Info); ok {
		info.Info = p.infos[info.Info.Id]
	}
	p.seq[i]++
	ev.Epoch, ev.Seq = p.cfg.Epoch, p.seq[i]
	ev.IngestTimeNs = time.Now().UnixNano()
	if err := p.sink.Publish(ctx, ev); err != nil {
		p.errors.Add(1)
		return err
	}
	p.published.Add(1)
	res, err := p.shadow[i].Apply(ev)
	if err != nil {
		return fmt.Errorf("loadgen: shadow state: %w", err)
	}
	var n uint64
	for _, s := range p.streams {
		if deltaOf(res, s) != nil {
			n++
		}
	}
	if n > 0 {
		p.deltas[i].Add(n)
	}
	return nil
}

func deltaOf(res *market.Result, stream int) *pb.Delta {
	switch stream {
	case market.StreamQuote:
		return res.Quote
	case market.StreamTrades:
		return res.Trades
	case market.StreamCandles:
		return res.Candles
	case market.StreamStats:
		return res.Stats
	}
	if i := stream - market.StreamBook0; i >= 0 && i < len(res.Book) {
		return res.Book[i]
	}
	return nil
}

// Prime publishes the first checkpoint: every instrument's InstrumentInfo and full book, so the
// feed knows them and holds whole books before any client subscribes.
func (p *publisher) Prime(ctx context.Context) error {
	for range 2 * p.cfg.Instruments {
		if err := p.publishOne(ctx, time.Now().UnixNano()); err != nil {
			return err
		}
	}
	return nil
}

// Run publishes at the current rate until ctx ends (nil) or publishing fails.
func (p *publisher) Run(ctx context.Context) error {
	t := time.NewTicker(pacePeriod)
	defer t.Stop()
	last := time.Now()
	var due float64
	for {
		select {
		case <-ctx.Done():
			return nil
		case now := <-t.C:
			r := p.Rate()
			due += r * now.Sub(last).Seconds()
			last = now
			if limit := r * maxBacklog.Seconds(); due > limit+1 {
				p.dropped.Add(uint64(due - limit))
				due = limit
			}
			venueNs := now.UnixNano()
			for ; due >= 1; due-- {
				if err := p.publishOne(ctx, venueNs); err != nil {
					if ctx.Err() != nil {
						return nil
					}
					return err
				}
			}
		}
	}
}

// calibrate estimates the counted deltas per event by running the same synthetic market
// (another seed) through shadow states: the feed's deliveries per event, used to turn a
// target delivered rate into an event rate.
func calibrate(cfg publisherConfig, events int) (float64, error) {
	cfg.Seed++
	var n countingSink
	p, err := newPublisher(cfg, &n)
	if err != nil {
		return 0, err
	}
	if err := p.Prime(context.Background()); err != nil {
		return 0, err
	}
	before := p.totalExpected()
	venue := time.Now().UnixNano()
	for i := range events {
		if err := p.publishOne(context.Background(), venue+int64(i)*int64(time.Millisecond)); err != nil {
			return 0, err
		}
	}
	return float64(p.totalExpected()-before) / float64(events), nil
}

func (p *publisher) totalExpected() uint64 {
	var n uint64
	for i := range p.deltas {
		n += p.deltas[i].Load()
	}
	return n
}

type countingSink struct{ n int }

func (c *countingSink) Publish(context.Context, *pb.Event) error { c.n++; return nil }
