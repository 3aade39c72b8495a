package source

import (
	"fmt"
	"sort"
	"strings"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// Stats counts what a source did: frames, events, rejects per instrument and reason, events
// dropped by design, continuity and checksum checks, resyncs. Safe for concurrent use; it is a
// prometheus.Collector (tickwire_source_*), so nothing is looked up per frame.
type Stats struct {
	name string

	mu      sync.Mutex
	frames  int64               // guarded by mu
	events  int64               // guarded by mu
	rejects map[[2]string]int64 // guarded by mu; {instrument, reason}
	dropped map[string]int64    // guarded by mu; reason
	checks  map[[2]string]int64 // guarded by mu; {kind, "ok"|"fail"}
	resyncs map[string]int64    // guarded by mu; instrument
}

// NewStats returns empty counters of source name.
func NewStats(name string) *Stats {
	return &Stats{name: name, rejects: map[[2]string]int64{}, dropped: map[string]int64{},
		checks: map[[2]string]int64{}, resyncs: map[string]int64{}}
}

// Name returns the source name.
func (s *Stats) Name() string { return s.name }

// Frame counts one frame handled.
func (s *Stats) Frame() {
	s.mu.Lock()
	s.frames++
	s.mu.Unlock()
}

func (s *Stats) event() {
	s.mu.Lock()
	s.events++
	s.mu.Unlock()
}

func (s *Stats) reject(instrument, reason string) {
	s.mu.Lock()
	s.rejects[[2]string{instrument, reason}]++
	s.mu.Unlock()
}

func (s *Stats) drop(reason string) {
	s.mu.Lock()
	s.dropped[reason]++
	s.mu.Unlock()
}

func (s *Stats) check(kind string, ok bool) {
	r := "ok"
	if !ok {
		r = "fail"
	}
	s.mu.Lock()
	s.checks[[2]string{kind, r}]++
	s.mu.Unlock()
}

func (s *Stats) resync(instrument string) {
	s.mu.Lock()
	s.resyncs[instrument]++
	s.mu.Unlock()
}

// Snapshot is a copy of the counters.
type Snapshot struct {
	Frames, Events int64
	// Rejects by reason (all instruments), RejectsBy by "instrument reason".
	Rejects   map[string]int64
	RejectsBy map[string]int64
	Dropped   map[string]int64
	// Checks by "kind ok" / "kind fail".
	Checks  map[string]int64
	Resyncs map[string]int64
}

// Snapshot copies the counters.
func (s *Stats) Snapshot() Snapshot {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := Snapshot{Frames: s.frames, Events: s.events, Rejects: map[string]int64{}, RejectsBy: map[string]int64{},
		Dropped: map[string]int64{}, Checks: map[string]int64{}, Resyncs: map[string]int64{}}
	for k, n := range s.rejects {
		out.Rejects[k[1]] += n
		out.RejectsBy[k[0]+" "+k[1]] += n
	}
	for k, n := range s.dropped {
		out.Dropped[k] = n
	}
	for k, n := range s.checks {
		out.Checks[k[0]+" "+k[1]] = n
	}
	for k, n := range s.resyncs {
		out.Resyncs[k] = n
	}
	return out
}

// String renders the snapshot on one line, keys sorted.
func (s Snapshot) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "frames=%d events=%d", s.Frames, s.Events)
	for _, m := range []struct {
		name string
		m    map[string]int64
	}{{"rejects", s.Rejects}, {"dropped", s.Dropped}, {"checks", s.Checks}, {"resyncs", s.Resyncs}} {
		keys := make([]string, 0, len(m.m))
		for k := range m.m {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		fmt.Fprintf(&b, " %s={", m.name)
		for i, k := range keys {
			if i > 0 {
				b.WriteString(", ")
			}
			fmt.Fprintf(&b, "%s: %d", k, m.m[k])
		}
		b.WriteString("}")
	}
	return b.String()
}

var (
	descFrames  = prometheus.NewDesc("tickwire_source_frames_total", "Venue frames (or file rows) handled.", []string{"source"}, nil)
	descEvents  = prometheus.NewDesc("tickwire_source_events_total", "Normalized events emitted.", []string{"source"}, nil)
	descRejects = prometheus.NewDesc("tickwire_source_rejected_total", "Values or messages rejected (crossed: flagged, kept), per instrument and reason.", []string{"source", "instrument", "reason"}, nil)
	descDropped = prometheus.NewDesc("tickwire_source_dropped_total", "Messages dropped by design (older than the snapshot, book waiting for a resync, a channel the source does not handle: unknown_channel), per reason.", []string{"source", "reason"}, nil)
	descChecks  = prometheus.NewDesc("tickwire_source_checks_total", "Venue continuity and checksum verifications, per kind and result.", []string{"source", "kind", "result"}, nil)
	descResyncs = prometheus.NewDesc("tickwire_source_resyncs_total", "Books restarted from a fresh venue snapshot after a break, per instrument.", []string{"source", "instrument"}, nil)
)

// Describe implements prometheus.Collector.
func (s *Stats) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descFrames, descEvents, descRejects, descDropped, descChecks, descResyncs} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (s *Stats) Collect(ch chan<- prometheus.Metric) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := prometheus.CounterValue
	ch <- prometheus.MustNewConstMetric(descFrames, c, float64(s.frames), s.name)
	ch <- prometheus.MustNewConstMetric(descEvents, c, float64(s.events), s.name)
	for k, n := range s.rejects {
		ch <- prometheus.MustNewConstMetric(descRejects, c, float64(n), s.name, k[0], k[1])
	}
	for k, n := range s.dropped {
		ch <- prometheus.MustNewConstMetric(descDropped, c, float64(n), s.name, k)
	}
	for k, n := range s.checks {
		ch <- prometheus.MustNewConstMetric(descChecks, c, float64(n), s.name, k[0], k[1])
	}
	for k, n := range s.resyncs {
		ch <- prometheus.MustNewConstMetric(descResyncs, c, float64(n), s.name, k)
	}
}
