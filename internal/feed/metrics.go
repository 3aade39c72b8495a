package feed

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the feed's Prometheus series, registered on the registry passed to New.
type metrics struct {
	connections    prometheus.Gauge
	connsRejected  *prometheus.CounterVec // reason
	closes         *prometheus.CounterVec // code
	subscriptions  prometheus.Gauge
	commands       *prometheus.CounterVec // command
	commandErrors  *prometheus.CounterVec // code
	frames         prometheus.Counter
	messages       prometheus.Counter
	bytes          prometheus.Counter
	conflations    prometheus.Counter
	snapshots      *prometheus.CounterVec // reason
	snapsDeferred  *prometheus.CounterVec // reason: asked for by a client, waited for its snapshot budget
	events         prometheus.Counter
	eventsRejected *prometheus.CounterVec // reason
	gaps           *prometheus.CounterVec // instrument: one of gapLabels
	gapLabels      boundedLabels
	instruments    prometheus.Gauge
	ingestToFeed   prometheus.Histogram
	ready          prometheus.Gauge
	resumes        *prometheus.CounterVec // outcome
	panics         prometheus.Counter
	bookWaits      prometheus.Counter
	checkpoints    *prometheus.CounterVec // result: written, failed
	checkpointSeq  prometheus.Gauge
	checkpointSize prometheus.Gauge
}

// maxLabelSeries bounds the instrument label of a per-instrument series (gaps): past it,
// instruments not yet seen count under "other", so a feed of a hundred thousand instruments
// cannot make a hundred thousand series; the ones that broke first keep their own.
const maxLabelSeries = 1000

// otherLabel is the label of instruments past maxLabelSeries.
const otherLabel = "other"

// boundedLabels hands out label values: the value itself for the first maxLabelSeries distinct
// ones, then otherLabel. Safe for concurrent use (every owner counts gaps).
type boundedLabels struct {
	mu   sync.Mutex
	seen map[string]struct{} // guarded by mu
}

func (b *boundedLabels) of(v string) string {
	b.mu.Lock()
	defer b.mu.Unlock()
	if _, ok := b.seen[v]; ok {
		return v
	}
	if len(b.seen) >= maxLabelSeries {
		return otherLabel
	}
	if b.seen == nil {
		b.seen = make(map[string]struct{})
	}
	b.seen[v] = struct{}{}
	return v
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		connections:    prometheus.NewGauge(prometheus.GaugeOpts{Name: "tickwire_feed_connections", Help: "Open WebSocket connections."}),
		connsRejected:  prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tickwire_feed_connections_rejected_total", Help: "Upgrade requests refused, by reason."}, []string{"reason"}),
		closes:         prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tickwire_feed_closes_total", Help: "Connections closed by the server, by close code."}, []string{"code"}),
		subscriptions:  prometheus.NewGauge(prometheus.GaugeOpts{Name: "tickwire_feed_subscriptions", Help: "Instrument subscriptions held by connections."}),
		commands:       prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tickwire_feed_commands_total", Help: "Client commands received, by command."}, []string{"command"}),
		commandErrors:  prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tickwire_feed_command_errors_total", Help: "Client commands refused, by error code."}, []string{"code"}),
		frames:         prometheus.NewCounter(prometheus.CounterOpts{Name: "tickwire_feed_frames_sent_total", Help: "WebSocket frames written."}),
		messages:       prometheus.NewCounter(prometheus.CounterOpts{Name: "tickwire_feed_messages_sent_total", Help: "Server messages written (several per frame)."}),
		bytes:          prometheus.NewCounter(prometheus.CounterOpts{Name: "tickwire_feed_bytes_sent_total", Help: "Frame payload bytes written."}),
		conflations:    prometheus.NewCounter(prometheus.CounterOpts{Name: "tickwire_feed_conflations_total", Help: "Times a connection fell behind and its pending deltas were replaced by snapshots."}),
		snapshots:      prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tickwire_feed_snapshots_sent_total", Help: "Snapshots queued, by reason."}, []string{"reason"}),
		snapsDeferred:  prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tickwire_feed_snapshots_deferred_total", Help: "Snapshots a client asked for (subscribe, resync) that waited because its connection's snapshot byte budget was spent."}, []string{"reason"}),
		events:         prometheus.NewCounter(prometheus.CounterOpts{Name: "tickwire_feed_events_total", Help: "Events applied to instrument state."}),
		eventsRejected: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tickwire_feed_events_rejected_total", Help: "Events not applied, by reason."}, []string{"reason"}),
		gaps:           prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tickwire_feed_gaps_total", Help: "Events that did not follow their predecessor, by instrument (the first 1,000 instruments to have one; the others as \"other\")."}, []string{"instrument"}),
		instruments:    prometheus.NewGauge(prometheus.GaugeOpts{Name: "tickwire_feed_instruments", Help: "Instruments known."}),
		ingestToFeed: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "tickwire_feed_ingest_to_apply_seconds",
			Help: "From ingest time to applied in feed.", Buckets: prometheus.ExponentialBuckets(50e-6, 2, 16)}),
		ready: prometheus.NewGauge(prometheus.GaugeOpts{Name: "tickwire_feed_ready", Help: "1 when the feed has caught up with stored history and serves."}),
		resumes: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tickwire_feed_resumes_total",
			Help: "Streams a reconnecting client asked to resume, by outcome (resumed, or snapshot when the position was not held)."}, []string{"outcome"}),
		panics: prometheus.NewCounter(prometheus.CounterOpts{Name: "tickwire_feed_connection_panics_total",
			Help: "Panics recovered while handling a connection (each one closed it with 1011, and is a bug)."}),
		bookWaits: prometheus.NewCounter(prometheus.CounterOpts{Name: "tickwire_feed_book_waits_total",
			Help: "Times book subscribers were told their stream awaits a snapshot (StreamStatus): the feed's copy of a book broke, or a subscriber came while it was not whole."}),
		checkpoints: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tickwire_feed_checkpoints_total",
			Help: "State checkpoints taken (docs/OPERATIONS.md, Warm start), by result: written, or failed (taking or writing it)."}, []string{"result"}),
		checkpointSeq: prometheus.NewGauge(prometheus.GaugeOpts{Name: "tickwire_feed_checkpoint_stream_seq",
			Help: "Event-stream sequence of the latest state checkpoint written or loaded: a restart replays the events after it."}),
		checkpointSize: prometheus.NewGauge(prometheus.GaugeOpts{Name: "tickwire_feed_checkpoint_bytes",
			Help: "Size of the latest state checkpoint written."}),
	}
	if reg != nil {
		reg.MustRegister(m.connections, m.connsRejected, m.closes, m.subscriptions, m.commands, m.commandErrors,
			m.frames, m.messages, m.bytes, m.conflations, m.snapshots, m.snapsDeferred, m.events, m.eventsRejected, m.gaps,
			m.instruments, m.ingestToFeed, m.ready, m.resumes, m.panics, m.bookWaits, m.checkpoints, m.checkpointSeq, m.checkpointSize)
	}
	// The series alerts watch exist at 0 from the start (deploy/prometheus/alerts.yml): increase()
	// needs a sample before the first failure to see it, and an absent series alerts on nothing.
	for _, code := range []string{"4000", "4001"} { // slow clients: queue past its hard bound, write timeout
		m.closes.WithLabelValues(code)
	}
	for _, reason := range []string{"subscribe", "resync"} { // askedBy
		m.snapsDeferred.WithLabelValues(reason)
	}
	for _, result := range []string{"written", "failed"} {
		m.checkpoints.WithLabelValues(result)
	}
	return m
}
