package source

import (
	"context"
	"sync"
	"time"
)

// Pacer paces replayed records by their recorded times: at the original timing (Speed 1), N
// times faster (Speed N), or as fast as possible (Speed 0). A record older than the one before
// it is not waited for. Not safe for concurrent use.
type Pacer struct {
	Speed float64

	started bool
	first   int64     // recorded time of the first record, Unix ns
	start   time.Time // when the first record was released
}

// Wait blocks until the record recorded at tsNs is due, or ctx ends (returning its error).
func (p *Pacer) Wait(ctx context.Context, tsNs int64) error {
	if p.Speed <= 0 || tsNs == 0 {
		return ctx.Err()
	}
	if !p.started {
		p.started, p.first, p.start = true, tsNs, time.Now()
		return ctx.Err()
	}
	due := p.start.Add(time.Duration(float64(tsNs-p.first) / p.Speed))
	d := time.Until(due)
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

// Requests is a queue of instruments whose snapshot the pipeline asked for
// (ingest.SnapshotRequester), filled from any goroutine and drained by the source's Run.
// Repeated requests for one instrument collapse, so it is bounded by the instrument count.
type Requests struct {
	mu      sync.Mutex
	pending map[string]bool // guarded by mu
	order   []string        // guarded by mu
}

// Add queues instrument.
func (r *Requests) Add(instrument string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.pending == nil {
		r.pending = map[string]bool{}
	}
	if !r.pending[instrument] {
		r.pending[instrument] = true
		r.order = append(r.order, instrument)
	}
}

// Take returns and clears the queued instruments.
func (r *Requests) Take() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := r.order
	r.order = nil
	clear(r.pending)
	return out
}

// Serve answers queued snapshot requests through h.
func (r *Requests) Serve(h Handler, ingestNs int64, emit Emit) error {
	for _, id := range r.Take() {
		if _, err := h.Snapshot(id, ingestNs, emit); err != nil {
			return err
		}
	}
	return nil
}
