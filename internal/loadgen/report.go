package loadgen

import (
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"
)

// StepReport is one measured window.
type StepReport struct {
	Name       string  `json:"name"`
	Seconds    float64 `json:"seconds"`
	TargetRate float64 `json:"target_events_per_s"`
	// TargetDelivered is the delivered updates/s the step's rate was chosen for (--delivered-steps).
	TargetDelivered float64 `json:"target_delivered_per_s,omitempty"`
	PublishedRate   float64 `json:"published_events_per_s"`
	PublishDropped  uint64  `json:"publish_dropped"`
	// EventsPerMessage is the events per NATS message the publisher sent (its batches,
	// internal/bus/batch.go); 0 when unknown (not publishing through NATS).
	EventsPerMessage float64   `json:"events_per_nats_message,omitempty"`
	ExpectedPerSec   float64   `json:"expected_updates_per_s"`
	DeliveredPerSec  float64   `json:"delivered_updates_per_s"`
	Ratio            float64   `json:"delivered_ratio"`
	FramesPerSec     float64   `json:"frames_per_s"`
	BytesPerSec      float64   `json:"bytes_per_s"`
	UpdatesPerFrame  float64   `json:"updates_per_frame"`
	Latency          Latencies `json:"latency"`
	// IngestToApply is the feed's own measure (tickwire_feed_ingest_to_apply_seconds) of the
	// publish-to-applied part of Latency: the bus, JetStream and the feed's event intake; the
	// rest is the fan-out and the client. IngestToStore and StoreToConsume split it at the
	// time JetStream stored the event (tickwire_bus_consume_lag_seconds); what is left is the
	// feed's queue to the instrument's owner. Zero: not known (no feed /metrics).
	IngestToApply    LatencyPart `json:"ingest_to_apply,omitzero"`
	IngestToStore    LatencyPart `json:"ingest_to_store,omitzero"`
	StoreToConsume   LatencyPart `json:"store_to_consume,omitzero"`
	Snapshots        uint64      `json:"snapshots"`
	Gaps             uint64      `json:"gaps"`
	Resyncs          uint64      `json:"resyncs"`
	Conflations      uint64      `json:"conflations"`
	Closes           int         `json:"closes"`
	Duplicates       uint64      `json:"duplicates"`
	Unsynced         uint64      `json:"ignored_unsynced"`
	Errors           uint64      `json:"errors"`
	Malformed        uint64      `json:"malformed_frames"`
	FeedCPU          float64     `json:"feed_cpu_cores"`
	FeedCPUPerUpdate float64     `json:"feed_cpu_ns_per_update"`
	FeedRSS          int64       `json:"feed_rss_bytes"`
	FeedRSSMax       int64       `json:"feed_rss_max_bytes"`
	NATSCPU          float64     `json:"nats_cpu_cores,omitempty"`
	NATSRSS          int64       `json:"nats_rss_bytes,omitempty"`
	LoadgenCPU       float64     `json:"loadgen_cpu_cores"`
	LoadgenRSS       int64       `json:"loadgen_rss_bytes"`
	SnapshotLatency  *Latencies  `json:"snapshot_latency,omitempty"`
	OK               bool        `json:"sustained"`
	PublisherLimited bool        `json:"publisher_limited"`
	Verdict          string      `json:"verdict"`
}

// Setup is what happened before the first step.
type Setup struct {
	Connected       int     `json:"connected"`
	ConnectFailed   int     `json:"connect_failed"`
	FirstError      string  `json:"first_connect_error,omitempty"`
	ConnectSeconds  float64 `json:"connect_seconds"`
	StreamsSynced   int64   `json:"streams_synced"`
	StreamsWanted   int64   `json:"streams_wanted"`
	FeedRSSBase     int64   `json:"feed_rss_baseline_bytes"`
	FeedRSSConns    int64   `json:"feed_rss_with_conns_bytes,omitempty"`
	RSSPerConn      float64 `json:"feed_rss_per_conn_bytes,omitempty"`
	LoadgenRSSBase  int64   `json:"loadgen_rss_baseline_bytes"`
	LoadgenPerConn  float64 `json:"loadgen_rss_per_conn_bytes,omitempty"`
	UpdatesPerEvent float64 `json:"updates_per_event_per_subscriber,omitempty"`
	FileLimit       uint64  `json:"open_file_limit"`
}

// Report is a whole run.
type Report struct {
	Scenario   string         `json:"scenario"`
	Server     string         `json:"server"` // TargetTickwire or TargetCentrifugo
	Started    time.Time      `json:"started"`
	Machine    Machine        `json:"machine"`
	Target     string         `json:"target"`
	Config     Config         `json:"config"`
	Channels   string         `json:"channels"`
	PerClient  int            `json:"instruments_per_client"`
	Notes      []string       `json:"notes,omitempty"`
	Setup      Setup          `json:"setup"`
	Steps      []StepReport   `json:"steps"`
	Best       *StepReport    `json:"highest_sustained,omitempty"`
	Stalled    *StalledReport `json:"stalled,omitempty"`
	Candles    *CandlesReport `json:"candles,omitempty"`
	Totals     Totals         `json:"totals"`
	CloseCodes map[int]int    `json:"close_codes,omitempty"`
	Seconds    float64        `json:"seconds"`
}

// Totals are the counts over the whole run, from the publisher's start (every client connected
// and subscribed) to the end, after the publisher stopped and deliveries settled (up to drainTimeout): with nothing lost,
// Delivered equals Expected.
type Totals struct {
	Published   uint64 `json:"published_events"`
	Expected    uint64 `json:"expected_updates"`
	Delivered   uint64 `json:"delivered_updates"`
	Frames      uint64 `json:"frames"`
	Bytes       uint64 `json:"bytes"`
	Snapshots   uint64 `json:"snapshots"`
	Gaps        uint64 `json:"gaps"`
	Resyncs     uint64 `json:"resyncs"`
	Conflations uint64 `json:"conflations"`
	Duplicates  uint64 `json:"duplicates"`
	Unsynced    uint64 `json:"ignored_unsynced"`
	Errors      uint64 `json:"errors"`
	Malformed   uint64 `json:"malformed_frames"`
	Closes      int    `json:"closes"`
}

// StalledReport compares the others' delivery with and without a client that stopped reading.
type StalledReport struct {
	BaselineDelivered  float64        `json:"baseline_delivered_per_s"`
	StalledDelivered   float64        `json:"with_stalled_delivered_per_s"`
	Change             float64        `json:"change"`
	StalledCloseCode   int            `json:"stalled_close_code"`
	FeedConflations    float64        `json:"feed_conflations"`
	FeedCloses         map[string]int `json:"feed_closes,omitempty"`
	StalledClosedAfter float64        `json:"stalled_closed_after_s,omitempty"`
	FeedRSSMaxBaseline int64          `json:"feed_rss_max_baseline_bytes"`
	FeedRSSMaxStalled  int64          `json:"feed_rss_max_stalled_bytes"`
	FeedRSSSeries      []int64        `json:"feed_rss_series_bytes"`
}

// WriteJSON writes the report as one JSON object.
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

func mib(b int64) string { return fmt.Sprintf("%.1f", float64(b)/(1<<20)) }

func ms(d time.Duration) string {
	switch {
	case d == 0:
		return "-"
	case d < 10*time.Millisecond:
		return fmt.Sprintf("%.2f", float64(d)/1e6)
	default:
		return fmt.Sprintf("%.1f", float64(d)/1e6)
	}
}

func si(v float64) string {
	switch {
	case v >= 1e6:
		return fmt.Sprintf("%.2fM", v/1e6)
	case v >= 1e4:
		return fmt.Sprintf("%.1fk", v/1e3)
	default:
		return fmt.Sprintf("%.0f", v)
	}
}

// stepHeader and stepRow are the table's columns.
const stepHeader = "step\tev/s target\tev/s pub\tev/msg\tupd/s exp\tupd/s dlv\tdlv%\tframes/s\tMiB/s\tupd/frame\tp50 ms\tp90\tp99\tp99.9\tmax\tgaps\tresync\tconfl\tcloses\tfeed CPU\tns/upd\tfeed MiB\tnats CPU\tlg CPU\tverdict"

func stepRow(s *StepReport) string {
	nats := "-"
	if s.NATSCPU > 0 {
		nats = fmt.Sprintf("%.2f", s.NATSCPU)
	}
	perMsg := "-"
	if s.EventsPerMessage > 0 {
		perMsg = fmt.Sprintf("%.2f", s.EventsPerMessage)
	}
	return fmt.Sprintf("%s\t%s\t%s\t%s\t%s\t%s\t%.1f\t%s\t%.1f\t%.1f\t%s\t%s\t%s\t%s\t%s\t%d\t%d\t%d\t%d\t%.2f\t%.0f\t%s\t%s\t%.2f\t%s",
		s.Name, si(s.TargetRate), si(s.PublishedRate), perMsg, si(s.ExpectedPerSec), si(s.DeliveredPerSec), 100*s.Ratio,
		si(s.FramesPerSec), s.BytesPerSec/(1<<20), s.UpdatesPerFrame,
		ms(s.Latency.P50), ms(s.Latency.P90), ms(s.Latency.P99), ms(s.Latency.P999), ms(s.Latency.Max),
		s.Gaps, s.Resyncs, s.Conflations, s.Closes, s.FeedCPU, s.FeedCPUPerUpdate, mib(s.FeedRSSMax), nats, s.LoadgenCPU, s.Verdict)
}

// WriteTable writes the human report: the steps and a summary.
func (r *Report) WriteTable(w io.Writer) {
	compact := ""
	if r.Config.CompactQuotes {
		compact = " (compact quotes)"
	}
	fmt.Fprintf(w, "scenario %s: %d clients x %d instruments (%d subscribers each, %d per client), channels %s%s, depth %d, mode %s, server %s, target %s\n",
		r.Scenario, r.Config.Clients, r.Config.Instruments, r.Config.Subscribers, r.PerClient, r.Channels, compact, r.Config.Depth, r.Config.Mode, r.Server, r.Target)
	fmt.Fprintf(w, "machine: %d x %s, %.1f GiB, Linux %s, %s\n", r.Machine.CPUs, r.Machine.Model, r.Machine.MemGiB, r.Machine.Kernel, r.Machine.Go)
	for _, n := range r.Notes {
		fmt.Fprintf(w, "note: %s\n", n)
	}
	s := r.Setup
	fmt.Fprintf(w, "setup: %d connected (%d failed) in %.1f s, %d/%d streams synced, feed RSS baseline %s MiB, open-file limit %d\n",
		s.Connected, s.ConnectFailed, s.ConnectSeconds, s.StreamsSynced, s.StreamsWanted, mib(s.FeedRSSBase), s.FileLimit)
	if s.FirstError != "" {
		fmt.Fprintf(w, "first connect error: %s\n", s.FirstError)
	}
	tw := tabwriter.NewWriter(w, 0, 0, 1, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, stepHeader+"\t")
	for i := range r.Steps {
		fmt.Fprintln(tw, stepRow(&r.Steps[i])+"\t")
	}
	tw.Flush()
	for i := range r.Steps {
		if sl := r.Steps[i].SnapshotLatency; sl != nil {
			fmt.Fprintf(w, "snapshot on subscribe (book depth 50), step %s: n=%d p50 %s ms p99 %s ms max %s ms\n",
				r.Steps[i].Name, sl.Count, ms(sl.P50), ms(sl.P99), ms(sl.Max))
		}
	}
	t := r.Totals
	fmt.Fprintf(w, "totals (measured clients, from the publisher's start, after settling): %d events published, %d updates expected, %d delivered, %d frames, %.1f MiB, %d snapshots, %d gaps, %d resyncs, %d conflations, %d duplicates, %d ignored while unsynced, %d errors, %d malformed frames, %d closes\n",
		t.Published, t.Expected, t.Delivered, t.Frames, float64(t.Bytes)/(1<<20), t.Snapshots, t.Gaps, t.Resyncs, t.Conflations, t.Duplicates, t.Unsynced, t.Errors, t.Malformed, t.Closes)
	if len(r.CloseCodes) > 0 {
		var parts []string
		codes := make([]int, 0, len(r.CloseCodes))
		for c := range r.CloseCodes {
			codes = append(codes, c)
		}
		sort.Ints(codes)
		for _, c := range codes {
			parts = append(parts, fmt.Sprintf("%d x%d", c, r.CloseCodes[c]))
		}
		fmt.Fprintf(w, "closes by the feed: %s\n", strings.Join(parts, ", "))
	}
	if s.RSSPerConn != 0 {
		fmt.Fprintf(w, "SUMMARY idle: feed RSS %s MiB -> %s MiB with %d subscribed connections: %.1f KiB per connection (load generator %.1f KiB per connection)\n",
			mib(s.FeedRSSBase), mib(s.FeedRSSConns), s.Connected, s.RSSPerConn/1024, s.LoadgenPerConn/1024)
	}
	if st := r.Stalled; st != nil {
		closed := "was not closed"
		if st.StalledCloseCode != 0 {
			closed = fmt.Sprintf("was closed with %d after %.1f s", st.StalledCloseCode, st.StalledClosedAfter)
		}
		fmt.Fprintf(w, "SUMMARY stalled: the others received %s updates/s with the extra client reading, %s/s with it stalled (%+.1f%%); the feed conflated %.0f times and the stalled client %s; feed RSS max %s MiB without, %s MiB with\n",
			si(st.BaselineDelivered), si(st.StalledDelivered), 100*st.Change, st.FeedConflations, closed,
			mib(st.FeedRSSMaxBaseline), mib(st.FeedRSSMaxStalled))
	}
	r.writeCandles(w)
	if b := r.Best; b != nil {
		fmt.Fprintf(w, "SUMMARY highest sustained: %s ev/s -> %s updates/s delivered (%s frames/s, %.1f MiB/s), p50 %s ms p99 %s ms p99.9 %s ms, feed %.2f cores = %.0f ns CPU per delivered update, feed RSS %s MiB\n",
			si(b.PublishedRate), si(b.DeliveredPerSec), si(b.FramesPerSec), b.BytesPerSec/(1<<20), ms(b.Latency.P50), ms(b.Latency.P99), ms(b.Latency.P999),
			b.FeedCPU, b.FeedCPUPerUpdate, mib(b.FeedRSSMax))
		if b.PublisherLimited {
			if r.Server == TargetCentrifugo {
				fmt.Fprintf(w, "NOTE: the publisher (Centrifugo's HTTP API) could not go faster: the server was not saturated\n")
			} else {
				fmt.Fprintf(w, "NOTE: the publisher (NATS JetStream on this machine) could not go faster: the feed was not saturated\n")
			}
		}
	} else if r.Config.Mode == ModeStep {
		fmt.Fprintf(w, "SUMMARY: no step was sustained\n")
	}
}

// LatencyPart is a part of the latency read from a histogram of the feed, within its buckets
// (each twice the last).
type LatencyPart struct {
	P50 time.Duration `json:"p50_ns"`
	P99 time.Duration `json:"p99_ns"`
}
