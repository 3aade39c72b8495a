package bus

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	tickwirev1 "github.com/tickwire/tickwire/pkg/proto/tickwire/v1"
)

// ConsumeOptions says where a consumer starts and how much it buffers.
type ConsumeOptions struct {
	// Subjects to deliver; default EventSubjects (every instrument).
	Subjects []string
	// StartSeq, if set, starts at this stream sequence; else StartTime, if set, at the first
	// message at or after it; else at the first stored message.
	StartSeq  uint64
	StartTime time.Time
	// MaxPending bounds messages fetched ahead of the handler; default 4096. The consumer
	// pulls more only as the handler takes them, so a slow handler slows delivery (the
	// stream keeps the rest) instead of growing memory.
	MaxPending int
	// AfterEach, if set, is called with each message's stream sequence after handle returned
	// for it (or it was skipped as undecodable), in stream order, on the handler's goroutine:
	// while it runs no other event is handled. The feed counts its progress and takes its
	// state checkpoints there.
	AfterEach func(streamSeq uint64)
	// Live marks the consumer that follows the stream's tail for live state (the feed's): its
	// deliveries are observed in tickwire_bus_consume_lag_seconds. Readers of history (replays,
	// candles, delayed tiers) leave it unset, or their hours-old events would fill the metric.
	Live bool
}

// Consumer delivers events to a handler in stream order. Stop it when done.
type Consumer struct {
	cc     jetstream.ConsumeContext // set once before ready is closed
	ready  chan struct{}
	caught chan struct{}
	done   chan struct{}

	mu      sync.Mutex // held while the handler runs; Stop takes it to wait for the handler
	stopped bool       // guarded by mu
	err     error      // guarded by mu

	stopOnce sync.Once
	caughtMu sync.Once
	doneOnce sync.Once
}

// consumerHeartbeat is the idle heartbeat of event consumers: a consumer lost with its NATS
// node is recreated after two of them are missed.
const consumerHeartbeat = time.Second

// ConsumeEvents delivers every stored event from the start of the stream (or from
// opts.StartSeq / opts.StartTime), then live ones, to handle, one at a time in stream order,
// through an ordered consumer (which recreates itself after a gap or lost heartbeat).
//
// CaughtUp is closed once handle has returned for every event stored when ConsumeEvents was
// called (immediately if there were none). A message carries one event or a batch of them
// (batch.go); an event that does not decode is counted (tickwire_bus_decode_errors_total),
// logged with its subject and stream sequence, and skipped. AfterEach is called after each
// message's events. If handle returns an error, the consumer stops and Err returns it.
func (b *Bus) ConsumeEvents(ctx context.Context, opts ConsumeOptions, handle func(*tickwirev1.Event) error) (*Consumer, error) {
	if len(opts.Subjects) == 0 {
		opts.Subjects = []string{EventSubjects}
	}
	if opts.MaxPending <= 0 {
		opts.MaxPending = 4096
	}
	s, err := b.streamHandle(ctx)
	if err != nil {
		return nil, err
	}
	// Caught up once the last stored message matching the filter is handled.
	var target uint64
	for _, subj := range opts.Subjects {
		last, err := s.GetLastMsgForSubject(ctx, subj)
		switch {
		case errors.Is(err, jetstream.ErrMsgNotFound):
		case err != nil:
			return nil, fmt.Errorf("bus: last message of %s: %w", subj, err)
		default:
			target = max(target, last.Sequence)
		}
	}

	occ := jetstream.OrderedConsumerConfig{FilterSubjects: opts.Subjects, DeliverPolicy: jetstream.DeliverAllPolicy}
	switch {
	case opts.StartSeq > 0:
		occ.DeliverPolicy, occ.OptStartSeq = jetstream.DeliverByStartSequencePolicy, opts.StartSeq
	case !opts.StartTime.IsZero():
		t := opts.StartTime
		occ.DeliverPolicy, occ.OptStartTime = jetstream.DeliverByStartTimePolicy, &t
	}
	cons, err := b.js.OrderedConsumer(ctx, s.CachedInfo().Config.Name, occ)
	if err != nil {
		return nil, fmt.Errorf("bus: ordered consumer: %w", err)
	}
	c := &Consumer{ready: make(chan struct{}), caught: make(chan struct{}), done: make(chan struct{})}
	var dec eventDecoder // used under c.mu
	toStore := b.m.consumeLag.WithLabelValues("ingest_to_store")
	fromStore := b.m.consumeLag.WithLabelValues("store_to_consume")
	// Nothing to deliver from the start position: caught up now. (NumPending counts the
	// messages matching the filter from the start position at creation.)
	if ci := cons.CachedInfo(); target == 0 || (ci != nil && ci.NumPending == 0) {
		c.markCaughtUp()
	}

	cc, err := cons.Consume(func(msg jetstream.Msg) {
		c.mu.Lock()
		defer c.mu.Unlock()
		if c.stopped {
			return
		}
		var streamSeq uint64
		var storedNs int64
		if md, err := msg.Metadata(); err == nil {
			streamSeq, storedNs = md.Sequence.Stream, md.Timestamp.UnixNano()
			if opts.Live {
				fromStore.Observe(float64(time.Now().UnixNano()-storedNs) / 1e9)
			}
		}
		err := dec.decodeMessage(msg.Headers(), msg.Data(), func(ev *tickwirev1.Event) error {
			b.m.consumed.Inc()
			if in := ev.GetIngestTimeNs(); opts.Live && in > 0 && storedNs > 0 {
				toStore.Observe(float64(storedNs-in) / 1e9)
			}
			if err := handle(ev); err != nil {
				return fmt.Errorf("bus: handle %s %d/%d (stream seq %d): %w", ev.GetInstrument(), ev.GetEpoch(), ev.GetSeq(), streamSeq, err)
			}
			return nil
		}, func(err error) {
			b.m.decodeErrors.Inc()
			b.logger.Error("undecodable event skipped", "subject", msg.Subject(), "stream_seq", streamSeq, "err", err)
		})
		if err != nil {
			c.stopped = true
			c.err = err
			go c.Stop() // not inline: Stop waits for this callback's lock
			return
		}
		if opts.AfterEach != nil {
			opts.AfterEach(streamSeq)
		}
		if streamSeq >= target {
			c.markCaughtUp()
		}
	},
		jetstream.PullMaxMessages(opts.MaxPending),
		// A consumer whose NATS node died is noticed when two heartbeats are missed: at the
		// default 5 s a feed went 10 s without events after a node of the cluster was killed.
		jetstream.PullHeartbeat(consumerHeartbeat),
		jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
			if errors.Is(err, jetstream.ErrConsumerDeleted) || errors.Is(err, jetstream.ErrNoHeartbeat) {
				b.logger.Warn("event consumer error (recreating)", "err", err)
				return
			}
			b.logger.Warn("event consumer error", "err", err)
		}),
	)
	if err != nil {
		return nil, fmt.Errorf("bus: consume: %w", err)
	}
	c.cc = cc
	close(c.ready)
	return c, nil
}

func (c *Consumer) markCaughtUp() { c.caughtMu.Do(func() { close(c.caught) }) }

// CaughtUp is closed when every event stored at the consumer's start has been handled.
func (c *Consumer) CaughtUp() <-chan struct{} { return c.caught }

// Done is closed when the consumer has stopped (Stop, or a handler error).
func (c *Consumer) Done() <-chan struct{} { return c.done }

// Err returns the handler error that stopped the consumer, or nil.
func (c *Consumer) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// Stop stops delivery and waits until the handler is not running and the subscription is
// closed; the handler is not called after Stop returns. Safe to call more than once.
func (c *Consumer) Stop() {
	c.stopOnce.Do(func() {
		c.mu.Lock()
		c.stopped = true
		c.mu.Unlock()
		<-c.ready
		c.cc.Stop()
		select {
		case <-c.cc.Closed():
		case <-time.After(5 * time.Second): // connection gone: nothing left to wait for
		}
		c.doneOnce.Do(func() { close(c.done) })
	})
}
