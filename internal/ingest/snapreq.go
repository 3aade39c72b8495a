package ingest

import (
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// SnapshotRequests acts on feeds' requests for a fresh snapshot of an instrument (bus
// ServeSnapshotRequests): a feed whose copy of a book broke asks, and the source sends the
// instrument's InstrumentInfo and full book snapshot as it does after a break of its own. The
// pipeline's own chain is whole, so nothing is dropped meanwhile. Every feed replica may ask, so
// an instrument is asked of the source at most once per interval; the others are counted and
// dropped: the snapshot asked for serves them all.
type SnapshotRequests struct {
	src      SnapshotRequester
	interval time.Duration
	now      func() time.Time
	requests *prometheus.CounterVec // result: asked, limited

	mu sync.Mutex
	// guarded by mu:
	last map[string]time.Time // when each instrument was last asked of the source
}

// maxTracked bounds SnapshotRequests.last: past it, entries older than the interval go.
const maxTracked = 100_000

// NewSnapshotRequests returns nil when src cannot send snapshots on demand (a history file).
// interval <= 0 means one second. A nil registerer skips the metric's registration.
func NewSnapshotRequests(src Source, interval time.Duration, reg prometheus.Registerer) *SnapshotRequests {
	r, ok := src.(SnapshotRequester)
	if !ok {
		return nil
	}
	if interval <= 0 {
		interval = time.Second
	}
	sr := &SnapshotRequests{src: r, interval: interval, now: time.Now, last: make(map[string]time.Time),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tickwire_ingest_snapshot_requests_total",
			Help: "Feeds' requests for a fresh snapshot of an instrument: asked of the source, or limited (one already asked within the interval)."}, []string{"result"})}
	if reg != nil {
		reg.MustRegister(sr.requests)
	}
	for _, result := range []string{"asked", "limited"} {
		sr.requests.WithLabelValues(result) // at 0 from the start: alerts see the first one (deploy/prometheus/alerts.yml)
	}
	return sr
}

// Handle takes one request. Safe for concurrent use.
func (r *SnapshotRequests) Handle(instrument string) {
	now := r.now()
	r.mu.Lock()
	if t, ok := r.last[instrument]; ok && now.Sub(t) < r.interval {
		r.mu.Unlock()
		r.requests.WithLabelValues("limited").Inc()
		return
	}
	if len(r.last) >= maxTracked {
		for id, t := range r.last {
			if now.Sub(t) >= r.interval {
				delete(r.last, id)
			}
		}
		if len(r.last) >= maxTracked { // all recent: a flood of distinct ids; refuse until they age
			r.mu.Unlock()
			r.requests.WithLabelValues("limited").Inc()
			return
		}
	}
	r.last[instrument] = now
	r.mu.Unlock()
	r.requests.WithLabelValues("asked").Inc()
	r.src.RequestSnapshot(instrument)
}
