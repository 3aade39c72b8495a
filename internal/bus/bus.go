// Package bus is Tickwire's NATS layer, the only package that imports nats.go and
// nats-server: event subjects, the embedded server, the JetStream event stream, publishing
// with de-duplication, and consuming events in stream order.
package bus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
)

// Config configures a connection to NATS.
type Config struct {
	// URL of the server(s), comma separated; default nats.DefaultURL.
	URL string
	// Name of the connection as the server shows it; default "tickwire".
	Name string
	// Stream is the event stream's name; default DefaultStreamName.
	Stream string
	// MaxPendingPublishes bounds the events queued to be sent, and the messages sent and
	// awaiting an ack. When the queue is full, Publish blocks (backpressure onto the source)
	// until room frees or its ctx ends. Default 4096: enough to keep the pipe full at a few
	// hundred thousand events/s with millisecond acks, while bounding memory to a few MB.
	MaxPendingPublishes int
	// MaxBatchEvents and MaxBatchBytes bound a batch: several events of one instrument sent
	// as one message when they queue up together (batch.go). Defaults 256 events and
	// 64 KiB (at most half the server's max_payload); MaxBatchEvents 1 sends every event
	// alone.
	MaxBatchEvents int
	MaxBatchBytes  int
	// MaxReorder is how far apart in ingest time, and in event time (venue time, or ingest
	// time without one), two events of different instruments may be and still be reordered to
	// batch each instrument's events (batch.go): the stream's order across instruments follows
	// both to within it. Default 1 ms; negative: never reorder (only consecutive events of one
	// instrument are batched).
	MaxReorder time.Duration
	// PublishAckTimeout is how long an async publish may wait for its ack before it counts
	// as failed; default 10 s.
	PublishAckTimeout time.Duration
	// ReconnectWait is the base wait between reconnect attempts (jittered); default 1 s.
	// The connection reconnects forever and may be created before the server listens.
	ReconnectWait time.Duration
	// Auth is who connects (auth.go); Tickwire's servers refuse anonymous connections.
	Auth Auth
	// FencedPublishing publishes events on a NATS connection of their own, which Fence
	// closes with what it holds (fence.go): set by a process that publishes under a lease
	// (ingest --lease). Without it events share the Bus's connection and Fence is refused.
	FencedPublishing bool

	// beforePass, if set, is called by the batcher before each pass (tests: hold it to make
	// events queue up).
	beforePass func()
	// afterPublishDial, if set, is called when a publish connection of its own has been
	// opened, before it is used (tests: fence while it opens).
	afterPublishDial func()
}

func (c *Config) setDefaults() {
	if c.URL == "" {
		c.URL = nats.DefaultURL
	}
	if c.Name == "" {
		c.Name = "tickwire"
	}
	if c.Stream == "" {
		c.Stream = DefaultStreamName
	}
	if c.MaxPendingPublishes <= 0 {
		c.MaxPendingPublishes = 4096
	}
	if c.MaxBatchEvents <= 0 {
		c.MaxBatchEvents = defaultMaxBatchEvents
	}
	if c.MaxBatchBytes <= 0 {
		c.MaxBatchBytes = defaultMaxBatchBytes
	}
	if c.MaxReorder == 0 {
		c.MaxReorder = defaultMaxReorder
	}
	if c.PublishAckTimeout <= 0 {
		c.PublishAckTimeout = 10 * time.Second
	}
	if c.ReconnectWait <= 0 {
		c.ReconnectWait = time.Second
	}
}

// Bus is a NATS connection with JetStream, publishing and consuming Tickwire events.
// Its methods are safe for concurrent use.
type Bus struct {
	cfg    Config
	logger *slog.Logger
	nc     *nats.Conn
	js     jetstream.JetStream
	m      *metrics

	mu       sync.Mutex
	stream   jetstream.Stream // guarded by mu; cached by EnsureStream / streamHandle
	pubErrs  int              // guarded by mu; failed publishes since the last Flush
	firstErr error            // guarded by mu; first of them

	onPubErr atomic.Pointer[func(instrument string, epoch, seq uint64, err error)]
	health   *storeHealth // why the store refuses writes (health.go); set before any publish

	connErr atomic.Pointer[error] // the last failed connection attempt's error (LastError)

	// The publish queue (batch.go): Publish sends on queue under queueMu's read lock after
	// checking queueClosed; Close sets queueClosed and closes queue under the write lock, so
	// nothing is sent on a closed channel. The batcher goroutine drains queue and closes
	// batcherDone when queue is closed and empty; closing tells it to give up on a store
	// that takes nothing.
	queueMu     sync.RWMutex
	queueClosed bool // guarded by queueMu
	queue       chan pubItem
	queued      atomic.Int64 // events in queue
	batcherDone chan struct{}
	closing     chan struct{}
	answered    chan struct{} // poked when a pubConn's inFlight drops below maxInFlight, and by Fence

	// pub is the connection events are published on (fence.go): the Bus's own, or with
	// FencedPublishing one of their own, nil until the batcher's first publish and again
	// after a Fence. fenceGen counts Fences: a queued event of an older generation is dropped.
	pub      atomic.Pointer[pubConn]
	fenceGen atomic.Uint64
	authOpts []nats.Option

	closeOnce sync.Once
	closeErr  error
}

type metrics struct {
	published     prometheus.Counter
	publishedMsgs prometheus.Counter
	publishErrors prometheus.Counter
	consumed      prometheus.Counter
	decodeErrors  prometheus.Counter
	asyncErrors   prometheus.Counter
	reconnects    prometheus.Counter
	fenced        prometheus.Counter
	// replayControlErrors counts control requests a replayer could not answer.
	replayControlErrors prometheus.Counter
	// consumeLag splits an event's way to a consumer at the time JetStream stored it:
	// part="ingest_to_store" (the publisher's queue, the connection, the store) per event
	// with an ingest time, part="store_to_consume" (the consumer's delivery and read) per
	// message. Clocks of different machines skew both by their offset.
	consumeLag *prometheus.HistogramVec
}

// register registers c on reg, or returns the collector already registered under the same
// description (so a second Bus in one process, as in restart tests, shares the counters).
func register[C prometheus.Collector](reg prometheus.Registerer, c C) (C, error) {
	if reg == nil {
		return c, nil
	}
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(C); ok {
				return existing, nil
			}
		}
		return c, fmt.Errorf("bus: register metrics: %w", err)
	}
	return c, nil
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	counter := func(name, help string) (prometheus.Counter, error) {
		return register(reg, prometheus.NewCounter(prometheus.CounterOpts{Name: "tickwire_bus_" + name, Help: help}))
	}
	var m metrics
	var err error
	for _, c := range []struct {
		dst        *prometheus.Counter
		name, help string
	}{
		{&m.published, "published_total", "Events acknowledged by JetStream (including de-duplicated ones)."},
		{&m.publishedMsgs, "published_messages_total", "Messages acknowledged by JetStream: one event, or a batch of one instrument's (published_total over this is the events per message)."},
		{&m.publishErrors, "publish_errors_total", "Event publishes that failed (ack error or timeout)."},
		{&m.consumed, "consumed_total", "Events delivered to consumers."},
		{&m.decodeErrors, "decode_errors_total", "Consumed messages that could not be decoded as an Event (skipped)."},
		{&m.asyncErrors, "async_errors_total", "Asynchronous NATS errors (slow consumer, permissions...)."},
		{&m.reconnects, "reconnects_total", "Reconnections to NATS."},
		{&m.fenced, "fenced_total", "Publishes a Fence discarded (fence.go): events still queued, and messages (one event or a batch) sent but not acknowledged when the publish connection was closed."},
		{&m.replayControlErrors, "replay_control_errors_total", "Replay control requests not answered: their reply subject is not one of the session's (a requester of an older version)."},
	} {
		if *c.dst, err = counter(c.name, c.help); err != nil {
			return nil, err
		}
	}
	m.consumeLag, err = register(reg, prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "tickwire_bus_consume_lag_seconds",
		Help:    "An event's way to a consumer, split at the time JetStream stored it: part=ingest_to_store (per event with an ingest time), part=store_to_consume (per message).",
		Buckets: prometheus.ExponentialBuckets(50e-6, 2, 16)}, []string{"part"}))
	if err != nil {
		return nil, err
	}
	return &m, nil
}

// Connect connects to NATS. It does not wait for the server: with RetryOnFailedConnect the
// connection keeps trying (forever, with jittered waits) and buffers what is sent meanwhile,
// so ingest may start before the server listens. Metrics (tickwire_bus_*) are registered on
// reg (nil: none). Close the Bus when done.
func Connect(ctx context.Context, cfg Config, logger *slog.Logger, reg prometheus.Registerer) (*Bus, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	cfg.setDefaults()
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	logger = logger.With("component", "bus")
	m, err := newMetrics(reg)
	if err != nil {
		return nil, err
	}
	b := &Bus{cfg: cfg, logger: logger, m: m,
		queue: make(chan pubItem, cfg.MaxPendingPublishes), batcherDone: make(chan struct{}), closing: make(chan struct{}),
		answered: make(chan struct{}, 1)}
	if b.authOpts, err = cfg.Auth.options(logger); err != nil {
		return nil, err
	}
	nc, err := nats.Connect(cfg.URL, b.connOptions(cfg.Name)...)
	if err != nil {
		return nil, fmt.Errorf("bus: connect %s: %w", cfg.URL, err)
	}
	b.nc = nc
	own := &pubConn{nc: nc, cutCh: make(chan struct{})}
	if b.js, err = b.newPubJetStream(own); err != nil {
		nc.Close()
		return nil, fmt.Errorf("bus: jetstream: %w", err)
	}
	own.js = b.js
	if !cfg.FencedPublishing {
		b.pub.Store(own) // events share the connection; with FencedPublishing the batcher opens one
	}
	if _, err := register(reg, prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "tickwire_bus_publish_pending",
		Help: "Messages awaiting an ack, plus events queued to be sent.",
	}, func() float64 { return float64(b.PublishPending()) })); err != nil {
		nc.Close()
		return nil, err
	}
	if b.health, err = newStoreHealth(b, reg); err != nil { // it starts a goroutine
		nc.Close()
		return nil, err
	}
	go b.batcher() // stopped and awaited by Close
	return b, nil
}

// connOptions returns the options of a connection of the Bus named name: its credentials,
// reconnecting forever, and handlers that log and count.
func (b *Bus) connOptions(name string) []nats.Option {
	logger := b.logger.With("connection", name)
	return append(slices.Clone(b.authOpts),
		nats.Name(name),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(b.cfg.ReconnectWait),
		nats.ReconnectJitter(b.cfg.ReconnectWait/2, b.cfg.ReconnectWait/2),
		nats.RetryOnFailedConnect(true),
		// Buffer up to 64 MB published while disconnected; beyond that Publish fails and
		// the failure is counted, rather than growing memory without bound.
		nats.ReconnectBufSize(64<<20),
		nats.ErrorHandler(func(_ *nats.Conn, sub *nats.Subscription, err error) {
			b.m.asyncErrors.Inc()
			subj := ""
			if sub != nil {
				subj = sub.Subject
			}
			logger.Warn("nats async error", "subject", subj, "err", err)
		}),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				logger.Warn("nats disconnected", "err", err)
			}
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) {
			b.m.reconnects.Inc()
			logger.Info("nats reconnected", "url", nc.ConnectedUrlRedacted())
		}),
		nats.ConnectHandler(func(nc *nats.Conn) {
			logger.Info("nats connected", "url", nc.ConnectedUrlRedacted())
		}),
		nats.ReconnectErrHandler(func(_ *nats.Conn, err error) {
			b.connErr.Store(&err)
			// A refused login is worth saying at every attempt: nothing works until fixed.
			if errors.Is(err, nats.ErrAuthorization) || errors.Is(err, nats.ErrAuthExpired) {
				logger.Error("nats refused the credentials; retrying", "auth", b.cfg.Auth.String(), "err", err)
			}
		}),
	)
}

// SetPublishErrorHandler sets f (nil: none) to be called for each failed async publish with
// the event's position, from a NATS goroutine; f must not block. The instrument's
// continuity may be broken: later events may have been stored while this one was not.
func (b *Bus) SetPublishErrorHandler(f func(instrument string, epoch, seq uint64, err error)) {
	if f == nil {
		b.onPubErr.Store(nil)
		return
	}
	b.onPubErr.Store(&f)
}

// Conn returns the underlying connection (for tests and health checks).
func (b *Bus) Conn() *nats.Conn { return b.nc }

// Connected reports whether the Bus's connections are up: its own and, with
// Config.FencedPublishing, the one events are published on once there is one.
func (b *Bus) Connected() bool {
	if !b.nc.IsConnected() {
		return false
	}
	p := b.pub.Load()
	return p == nil || p.nc.IsConnected()
}

// Close stops publishing (Publish returns ErrClosed), sends what is queued, drains the
// connection (pending publishes are acknowledged, subscriptions finish their messages) and
// waits until it is closed. Queued events that cannot be sent because the store takes
// nothing fail as publish errors instead of holding Close. Safe to call more than once; later calls return
// the first result.
func (b *Bus) Close() error {
	b.closeOnce.Do(func() {
		defer b.health.close() // after the drain: its last acks may still clear a fault
		close(b.closing)
		b.queueMu.Lock()
		b.queueClosed = true
		close(b.queue)
		b.queueMu.Unlock()
		<-b.batcherDone
		if p := b.pub.Load(); p != nil && p.own {
			// Its pending publishes are acknowledged before it closes.
			pubClosed := make(chan struct{})
			p.nc.SetClosedHandler(func(*nats.Conn) { close(pubClosed) })
			if err := p.nc.Drain(); err != nil {
				p.nc.Close()
			} else {
				<-pubClosed
			}
		}
		closed := make(chan struct{})
		b.nc.SetClosedHandler(func(*nats.Conn) { close(closed) })
		if err := b.nc.Drain(); err != nil {
			// Not connected (never was, or already closed): close outright.
			b.nc.Close()
			if !errors.Is(err, nats.ErrConnectionClosed) {
				b.closeErr = fmt.Errorf("bus: drain: %w", err)
			}
			return
		}
		<-closed // Drain ends with Close, bounded by the connection's DrainTimeout (30 s)
	})
	return b.closeErr
}
