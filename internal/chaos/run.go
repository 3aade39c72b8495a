package chaos

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sort"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/tickwire/tickwire/internal/auth"
	"github.com/tickwire/tickwire/internal/bus"
	pb "github.com/tickwire/tickwire/pkg/proto/tickwire/v1"
)

// System is the cluster under test, as the schedule sees it (Cluster implements it).
type System interface {
	WSURL() string
	NATSURLs() []string
	Auth(user string) bus.Auth
	SigningKeyFile() string
	Kill(name string) error
	Restart(name string) error
	WaitReady(ctx context.Context, name string) error
	StreamLeader(ctx context.Context) (string, error)
	ActiveIngest(ctx context.Context) (string, error)
	Partition(node string) error
	Heal(node string) error
}

// The faults, in the order a full run applies them.
const (
	FaultNATSNode   = "nats-node"   // kill -9 a NATS node that does not lead the stream, restart it
	FaultNATSLeader = "nats-leader" // kill -9 the NATS node leading the stream, restart it
	FaultFeed       = "feed"        // kill -9 a feed replica, restart it
	FaultIngest     = "ingest"      // kill -9 the active ingest, restart it (as the standby)
	FaultPartition  = "partition"   // cut the stream leader's node off the others, heal it
)

// Faults is every fault, in order.
var Faults = []string{FaultNATSNode, FaultNATSLeader, FaultFeed, FaultIngest, FaultPartition}

// Config is one chaos run.
type Config struct {
	Clients, PerClient int // the fleet (default 20 clients of 4 instruments each)
	Depth              int // book depth checked (default 10)
	// Instruments the fleet subscribes: the first ones the stream holds of Venue (default
	// "synthetic"), at most Instruments of them (default 20).
	Venue       string
	Instruments int
	// Warmup before the first fault; FaultFor how long a fault lasts (a node down, a link cut);
	// Settle after each fault is healed, still in its window (defaults 10 s, 5 s, 15 s).
	Warmup, FaultFor, Settle time.Duration
	// Converge bounds the wait, after the load stops, for every client to hold the stream's
	// last book (default 60 s).
	Converge time.Duration
	Faults   []string // default Faults
	Logger   *slog.Logger
}

func (c Config) withDefaults() Config {
	if c.Clients <= 0 {
		c.Clients = 20
	}
	if c.PerClient <= 0 {
		c.PerClient = 4
	}
	if c.Depth <= 0 {
		c.Depth = 10
	}
	if c.Venue == "" {
		c.Venue = "synthetic"
	}
	if c.Instruments <= 0 {
		c.Instruments = 20
	}
	if c.Warmup <= 0 {
		c.Warmup = 10 * time.Second
	}
	if c.FaultFor <= 0 {
		c.FaultFor = 5 * time.Second
	}
	if c.Settle <= 0 {
		c.Settle = 15 * time.Second
	}
	if c.Converge <= 0 {
		c.Converge = 60 * time.Second
	}
	if len(c.Faults) == 0 {
		c.Faults = Faults
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

// FaultResult is one fault and what the clients went through in its window.
type FaultResult struct {
	Fault  string `json:"fault"`
	Target string `json:"target"`
	Window
	Err string `json:"error,omitempty"`
}

// Report is a chaos run's outcome.
type Report struct {
	Faults []FaultResult `json:"faults"`
	// Acknowledged writes of the audit, and those the stream lost.
	AuditAcked   int      `json:"audit_acked"`
	AuditLost    []uint64 `json:"audit_lost"`
	AuditRetries uint64   `json:"audit_retries"`
	// The stream as read back: events, gaps within an epoch (events missing between two
	// stored ones), duplicates.
	StreamEvents uint64 `json:"stream_events"`
	StreamGaps   []Gap  `json:"stream_gaps"`
	StreamDups   uint64 `json:"stream_duplicates"`
	// The clients' books checked against the stream at every position they reached.
	Findings
	// Streams that did not end holding the stream's last book: gaps not healed.
	Unconverged []string      `json:"unconverged"`
	Clients     int           `json:"clients"`
	Instruments []string      `json:"instruments"`
	Connects    uint64        `json:"connects"`
	Resumed     uint64        `json:"resumed"`
	Resyncs     uint64        `json:"resyncs"`
	Duration    time.Duration `json:"duration_ns"`
}

// Pass reports whether no acknowledged write was lost, no client held a wrong book, and every
// client ended holding the stream's last book.
func (r *Report) Pass() bool {
	return len(r.AuditLost) == 0 && r.Wrong == 0 && len(r.Unconverged) == 0 && r.AuditAcked > 0 && r.Checked > 0
}

// Run runs the schedule against sys: the reference reader and the audit on NATS, the fleet
// through the load balancer, each fault in turn, then the drain and the checks. stopLoad is
// called once the faults are done, to stop the events flowing (e.g. stop the ingest processes)
// so that the clients can converge on the stream's last state.
func Run(ctx context.Context, cfg Config, sys System, stopLoad func() error) (*Report, error) {
	cfg = cfg.withDefaults()
	start := time.Now()
	log := cfg.Logger
	rep := &Report{Clients: cfg.Clients}

	// The reference: every stored event, read from NATS directly.
	ref := NewReference(cfg.Depth)
	reader, err := bus.Connect(ctx, bus.Config{URL: strings.Join(sys.NATSURLs(), ","), Name: "tickwire-chaos-reader", Auth: sys.Auth(string(bus.RoleTickctl))},
		log.With("component", "reader"), nil)
	if err != nil {
		return nil, fmt.Errorf("chaos: reader: %w", err)
	}
	defer reader.Close()
	pubConn, err := bus.Connect(ctx, bus.Config{URL: strings.Join(sys.NATSURLs(), ","), Name: "tickwire-chaos-audit", Auth: sys.Auth(string(bus.RoleIngest))},
		log.With("component", "audit"), nil)
	if err != nil {
		return nil, fmt.Errorf("chaos: audit: %w", err)
	}
	defer pubConn.Close()
	audit, err := NewAudit(pubConn.Conn())
	if err != nil {
		return nil, err
	}
	var readMu sync.Mutex
	var lastRead uint64
	cons, err := reader.ConsumeEvents(ctx, bus.ConsumeOptions{AfterEach: func(s uint64) {
		readMu.Lock()
		lastRead = s
		readMu.Unlock()
	}}, func(ev *pb.Event) error {
		ref.Apply(ev)
		audit.Seen(ev)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("chaos: read the stream: %w", err)
	}
	defer cons.Stop()
	actx, stopAudit := context.WithCancel(ctx)
	var auditWG sync.WaitGroup
	auditWG.Go(func() { audit.Run(actx, 20*time.Millisecond) })
	defer func() { stopAudit(); auditWG.Wait() }()

	// The fleet, on the instruments the stream holds.
	insts, err := waitInstruments(ctx, ref, cfg.Venue+":", cfg.Instruments)
	if err != nil {
		return nil, err
	}
	rep.Instruments = insts
	secret, err := auth.ReadSecret(sys.SigningKeyFile())
	if err != nil {
		return nil, fmt.Errorf("chaos: signing key: %w", err)
	}
	token := func(context.Context) (string, error) {
		return auth.MintHS256(secret, auth.MintOptions{Subject: "chaos", TTL: time.Hour, Grant: auth.Grant{Instruments: []string{"*"}}})
	}
	fleet, err := StartFleet(FleetConfig{URL: sys.WSURL(), Token: token, Clients: cfg.Clients, Instruments: insts, PerClient: cfg.PerClient,
		Depth: cfg.Depth, Logger: log.With("component", "fleet")}, ref)
	if err != nil {
		return nil, err
	}
	defer fleet.Stop()
	log.Info("chaos: warming up", "clients", cfg.Clients, "instruments", len(insts), "for", cfg.Warmup)
	if err := sleep(ctx, cfg.Warmup); err != nil {
		return rep, err
	}

	for _, f := range cfg.Faults {
		fleet.OpenWindow()
		res := FaultResult{Fault: f}
		target, err := inject(ctx, sys, f, cfg.FaultFor, log)
		res.Target = target
		if err != nil {
			res.Err = err.Error()
			log.Error("chaos: fault failed", "fault", f, "err", err)
		}
		if err := sleep(ctx, cfg.Settle); err != nil {
			return rep, err
		}
		res.Window = fleet.CloseWindow()
		log.Info("chaos: fault done", "fault", f, "target", target, "max_silence", res.MaxSilence, "reconnected", res.Reconnected,
			"resumed", res.Resumed, "snapshots", res.Snapshots)
		rep.Faults = append(rep.Faults, res)
	}

	// Drain: stop the load, read the stream to its end, let the clients converge.
	stopAudit()
	auditWG.Wait()
	if stopLoad != nil {
		if err := stopLoad(); err != nil {
			log.Warn("chaos: stopping the load", "err", err)
		}
	}
	if err := waitRead(ctx, reader, &readMu, &lastRead, cfg.Converge); err != nil {
		return rep, err
	}
	deadline := time.Now().Add(cfg.Converge)
	for {
		rep.Unconverged = fleet.Unconverged()
		if len(rep.Unconverged) == 0 || time.Now().After(deadline) {
			break
		}
		if err := sleep(ctx, 500*time.Millisecond); err != nil {
			return rep, err
		}
	}
	rep.Findings = fleet.Findings()
	rep.AuditAcked, rep.AuditLost, rep.AuditRetries = audit.Result()
	rep.StreamEvents, rep.StreamGaps, rep.StreamDups = ref.Stats()
	st := fleet.Stats()
	rep.Connects, rep.Resumed, rep.Resyncs = st.Connects, st.Resumed, st.Resyncs
	rep.Duration = time.Since(start)
	return rep, nil
}

// inject applies fault f for d and heals it; it returns the part it hit.
func inject(ctx context.Context, sys System, f string, d time.Duration, log *slog.Logger) (string, error) {
	leader, err := sys.StreamLeader(ctx)
	if err != nil && f != FaultFeed && f != FaultIngest {
		return "", fmt.Errorf("stream leader: %w", err)
	}
	var target string
	switch f {
	case FaultNATSNode:
		for _, n := range []string{"nats-1", "nats-2", "nats-3"} {
			if n != leader {
				target = n
				break
			}
		}
	case FaultNATSLeader, FaultPartition:
		target = leader
	case FaultFeed:
		target = "feed-1"
	case FaultIngest:
		if target, err = sys.ActiveIngest(ctx); err != nil {
			return "", fmt.Errorf("active ingest: %w", err)
		}
	default:
		return "", fmt.Errorf("unknown fault %q", f)
	}
	log.Info("chaos: fault", "fault", f, "target", target, "for", d)
	if f == FaultPartition {
		if err := sys.Partition(target); err != nil {
			return target, err
		}
		if err := sleep(ctx, d); err != nil {
			return target, err
		}
		return target, sys.Heal(target)
	}
	if err := sys.Kill(target); err != nil {
		return target, err
	}
	if err := sleep(ctx, d); err != nil {
		return target, err
	}
	if err := sys.Restart(target); err != nil {
		return target, err
	}
	rctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	return target, sys.WaitReady(rctx, target)
}

func sleep(ctx context.Context, d time.Duration) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(d):
		return nil
	}
}

// waitInstruments waits until the reference has seen n instruments with prefix (or 60 s, then
// takes what there is).
func waitInstruments(ctx context.Context, ref *Reference, prefix string, n int) ([]string, error) {
	deadline := time.Now().Add(60 * time.Second)
	for {
		var out []string
		for _, s := range ref.Instruments() {
			if strings.HasPrefix(s, prefix) {
				out = append(out, s)
			}
		}
		if len(out) >= n || (time.Now().After(deadline) && len(out) > 0) {
			return out[:min(n, len(out))], nil
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("chaos: no %s* instrument in the stream after 60 s", prefix)
		}
		if err := sleep(ctx, 250*time.Millisecond); err != nil {
			return nil, err
		}
	}
}

// waitRead waits until the reader has handled the stream's last message.
func waitRead(ctx context.Context, b *bus.Bus, mu *sync.Mutex, last *uint64, bound time.Duration) error {
	deadline := time.Now().Add(bound)
	for {
		sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		st, err := b.StreamState(sctx)
		cancel()
		mu.Lock()
		read := *last
		mu.Unlock()
		if err == nil && read >= st.LastSeq {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("chaos: the reader is at stream seq %d of %d after %v (err %v)", read, st.LastSeq, bound, err)
		}
		if err := sleep(ctx, 250*time.Millisecond); err != nil {
			return err
		}
	}
}

// WriteTable writes the report for people: one row per fault, then the checks.
func (r *Report) WriteTable(w io.Writer) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "fault\ttarget\tlongest silence\treconnected\tresumed\tneeded a snapshot\tsnapshots by reason\terror")
	for _, f := range r.Faults {
		reasons := make([]string, 0, len(f.Snapshots))
		for k, v := range f.Snapshots {
			reasons = append(reasons, fmt.Sprintf("%s %d", strings.TrimPrefix(k, "SNAPSHOT_REASON_"), v))
		}
		sort.Strings(reasons)
		fmt.Fprintf(tw, "%s\t%s\t%v\t%d\t%d\t%d\t%s\t%s\n", f.Fault, f.Target, f.MaxSilence.Round(time.Millisecond), f.Reconnected, f.Resumed,
			f.ClientsWithSnapshot, strings.Join(reasons, ", "), f.Err)
	}
	_ = tw.Flush()
	fmt.Fprintf(w, "\nacknowledged writes lost: %d of %d (audit, %d publishes retried)\n", len(r.AuditLost), r.AuditAcked, r.AuditRetries)
	fmt.Fprintf(w, "wrong client books: %d of %d checked (%d at positions never stored, %d not checked)\n", r.Wrong, r.Checked, r.Unknown, r.Unchecked)
	fmt.Fprintf(w, "gaps not healed (streams not at the stream's last book at the end): %d\n", len(r.Unconverged))
	fmt.Fprintf(w, "stream: %d events read back, %d gaps within an epoch, %d duplicates\n", r.StreamEvents, len(r.StreamGaps), r.StreamDups)
	fmt.Fprintf(w, "clients: %d, connects %d, streams resumed %d, resyncs %d; %v\n", r.Clients, r.Connects, r.Resumed, r.Resyncs, r.Duration.Round(time.Second))
	for _, s := range slices.Concat(r.WrongExamples, first(r.Unconverged, 5)) {
		fmt.Fprintln(w, "  ", s)
	}
	for _, g := range first(r.StreamGaps, 5) {
		fmt.Fprintln(w, "   gap:", g)
	}
	verdict := "PASS"
	if !r.Pass() {
		verdict = "FAIL"
	}
	fmt.Fprintln(w, verdict)
}

func first[T any](s []T, n int) []T { return s[:min(n, len(s))] }

// WriteJSON writes the report as JSON.
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}
