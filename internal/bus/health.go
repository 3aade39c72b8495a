package bus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
)

// Why the event store refuses writes. When publishes fail, the Bus asks the server why (the
// ack's JetStream error, stream info, account info), logs the cause once per change, and sets
// tickwire_bus_store_fault{cause} to 1 for it; the first acknowledged publish after that clears
// it ("accepts writes again"). A disk full under JetStream shows as StoreNotStoring: nats-server
// does not answer a write it could not store, and says why only in its own log.

// Store fault causes: the values of the cause label (a fixed set).
const (
	// StoreDisconnected: not connected to NATS.
	StoreDisconnected = "disconnected"
	// StoreJetStreamUnavailable: JetStream is off on the server (nats-server shuts it down
	// after some storage faults) or does not answer its API.
	StoreJetStreamUnavailable = "jetstream_unavailable"
	// StoreStreamMissing: the event stream does not exist.
	StoreStreamMissing = "stream_missing"
	// StoreStreamFull: the stream reached its limits and refuses new messages (a stream that
	// discards new messages; Tickwire's own discards old ones).
	StoreStreamFull = "stream_full"
	// StoreAccountFull: the account's JetStream storage limit is reached.
	StoreAccountFull = "account_full"
	// StoreServerFull: the server's JetStream storage (max_file_store) is used up.
	StoreServerFull = "server_full"
	// StoreDiskFull: the server reported "no space left on device".
	StoreDiskFull = "disk_full"
	// StoreNotStoring: JetStream answers its API but acknowledges no write: its store cannot
	// write (disk full, read-only file system, I/O error on the server; see the server's log).
	StoreNotStoring = "not_storing"
	// StoreOther: any other publish error.
	StoreOther = "other"
)

var storeCauses = []string{StoreDisconnected, StoreJetStreamUnavailable, StoreStreamMissing, StoreStreamFull,
	StoreAccountFull, StoreServerFull, StoreDiskFull, StoreNotStoring, StoreOther}

const (
	// diagnoseTimeout bounds each question to the server while diagnosing.
	diagnoseTimeout = 2 * time.Second
	// rediagnoseEvery: while publishes keep failing, the cause is looked at again this often
	// (a disk freed, then a stream deleted...), not at every failed publish.
	rediagnoseEvery = 10 * time.Second
)

// StoreStatus is whether the event store takes this Bus's writes.
type StoreStatus struct {
	// Fault is "" while publishes are acknowledged, else one of the Store* causes.
	Fault string
	// Detail says what the server said (the error, stream and account figures).
	Detail string
	// Since is when the fault began; Failed counts the publishes failed since then.
	Since  time.Time
	Failed uint64
}

type storeHealth struct {
	b     *Bus
	gauge *prometheus.GaugeVec // cause

	faulted atomic.Bool // mirrors st.Fault != "", read on every ack

	// ctx ends when close begins, so that a diagnosis under way does not hold Close up.
	ctx    context.Context
	cancel context.CancelFunc
	kick   chan struct{} // capacity 1
	done   chan struct{}
	once   sync.Once

	mu       sync.Mutex
	st       StoreStatus // guarded by mu; written by run alone
	shown    StoreStatus // guarded by mu: what status returns, st once its change is reported
	lastErr  error       // guarded by mu: the latest publish error not yet diagnosed
	pending  uint64      // guarded by mu: publishes failed and not yet counted in st.Failed
	failing  bool        // guarded by mu: a publish failed since the last recovery
	lastDiag time.Time   // guarded by mu
	acked    bool        // guarded by mu: the latest publish answered was acknowledged
	noAcctOK bool        // guarded by mu: account info is not allowed to us; stop asking
}

func newStoreHealth(b *Bus, reg prometheus.Registerer) (*storeHealth, error) {
	g, err := register(reg, prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "tickwire_bus_store_fault",
		Help: "1 for the cause while the event store refuses this process's writes (disconnected, jetstream_unavailable, stream_missing, stream_full, account_full, server_full, disk_full, not_storing, other); all 0 while writes are acknowledged.",
	}, []string{"cause"}))
	if err != nil {
		return nil, err
	}
	for _, c := range storeCauses {
		g.WithLabelValues(c) // every series exists, at 0
	}
	h := &storeHealth{b: b, gauge: g, kick: make(chan struct{}, 1), done: make(chan struct{})}
	h.ctx, h.cancel = context.WithCancel(context.Background())
	go h.run()
	return h, nil
}

func (h *storeHealth) poke() {
	select {
	case h.kick <- struct{}{}:
	default:
	}
}

// publishFailed records a failed publish (from a NATS goroutine; never blocks). It reports
// whether the store was thought healthy until now (the caller logs that one loudly).
func (h *storeHealth) publishFailed(err error) (first bool) {
	h.mu.Lock()
	first = !h.failing
	h.failing = true
	h.lastErr = err
	h.acked = false
	h.pending++
	due := h.st.Fault == "" || time.Since(h.lastDiag) >= rediagnoseEvery
	h.mu.Unlock()
	if due {
		h.poke()
	}
	return first
}

// publishAcked records an acknowledged publish (from a NATS goroutine; cheap when healthy).
func (h *storeHealth) publishAcked() {
	if !h.faulted.Load() {
		return
	}
	h.mu.Lock()
	h.acked = true
	h.mu.Unlock()
	h.poke()
}

func (h *storeHealth) status() StoreStatus {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.shown
}

// show makes st what status returns. A change is shown only after its log line and gauge,
// so that whoever sees the status sees the report too.
func (h *storeHealth) show(st StoreStatus) {
	h.mu.Lock()
	h.shown = st
	h.mu.Unlock()
}

func (h *storeHealth) close() {
	h.once.Do(func() {
		h.cancel()
		<-h.done
	})
}

func (h *storeHealth) run() {
	defer close(h.done)
	for {
		select {
		case <-h.ctx.Done():
			return
		case <-h.kick:
		}
		// The latest answer decides: an ack after failures is a recovery, a failure after
		// acks (or with none) a fault.
		h.mu.Lock()
		err, acked := h.lastErr, h.acked
		h.lastErr, h.acked = nil, false
		h.mu.Unlock()
		switch {
		case acked:
			h.recovered()
		case err != nil:
			h.diagnosed(err)
		}
	}
}

func (h *storeHealth) recovered() {
	h.mu.Lock()
	st := h.st
	h.st = StoreStatus{}
	h.pending = 0
	h.failing = false
	h.faulted.Store(false)
	h.mu.Unlock()
	if st.Fault == "" {
		return
	}
	h.gauge.WithLabelValues(st.Fault).Set(0)
	h.b.logger.Info("event store accepts writes again", "was", st.Fault, "down_for", time.Since(st.Since).Round(time.Millisecond),
		"failed_publishes", st.Failed)
	h.show(StoreStatus{})
}

func (h *storeHealth) diagnosed(pubErr error) {
	ctx, cancel := context.WithTimeout(h.ctx, 3*diagnoseTimeout)
	defer cancel()
	cause, detail := h.diagnose(ctx, pubErr)
	if h.ctx.Err() != nil {
		return // closing: the answer is moot
	}
	h.mu.Lock()
	h.lastDiag = time.Now()
	prev := h.st
	if prev.Fault == "" {
		h.st = StoreStatus{Since: time.Now()}
	}
	h.st.Fault, h.st.Detail = cause, detail
	h.st.Failed += h.pending
	h.pending = 0
	h.faulted.Store(true)
	st := h.st
	h.mu.Unlock()
	defer h.show(st)
	if prev.Fault == cause {
		return
	}
	if prev.Fault != "" {
		h.gauge.WithLabelValues(prev.Fault).Set(0)
	}
	h.gauge.WithLabelValues(cause).Set(1)
	h.b.logger.Error("event store refuses writes: events are not stored", "cause", cause, "detail", detail,
		"stream", h.b.cfg.Stream, "failed_publishes", st.Failed)
}

// diagnose says why pubErr happened: from the error itself when the server said, else from
// what the server answers now about JetStream, the stream and the account.
func (h *storeHealth) diagnose(ctx context.Context, pubErr error) (cause, detail string) {
	b := h.b
	if !b.nc.IsConnected() {
		d := "status " + b.nc.Status().String()
		if err := b.nc.LastError(); err != nil {
			d += ": " + err.Error()
		}
		return StoreDisconnected, d
	}
	var apiErr *jetstream.APIError
	if errors.As(pubErr, &apiErr) {
		desc := strings.ToLower(apiErr.Description)
		switch {
		case strings.Contains(desc, "no space left"):
			return StoreDiskFull, apiErr.Error()
		case apiErr.ErrorCode == 10023 || apiErr.ErrorCode == 10047: // insufficient (storage) resources
			return StoreServerFull, apiErr.Error() + h.figures(ctx, nil)
		case apiErr.ErrorCode == 10002: // resource limits exceeded for account
			return StoreAccountFull, apiErr.Error() + h.figures(ctx, nil)
		case strings.Contains(desc, "maximum bytes") || strings.Contains(desc, "maximum messages"):
			return StoreStreamFull, apiErr.Error() + h.figures(ctx, nil)
		case apiErr.ErrorCode == jetstream.JSErrCodeJetStreamNotEnabled || apiErr.ErrorCode == jetstream.JSErrCodeJetStreamNotEnabledForAccount:
			return StoreJetStreamUnavailable, apiErr.Error()
		case apiErr.ErrorCode == jetstream.JSErrCodeStreamNotFound:
			return StoreStreamMissing, apiErr.Error()
		}
		return StoreOther, apiErr.Error()
	}
	if !errors.Is(pubErr, jetstream.ErrAsyncPublishTimeout) && !errors.Is(pubErr, jetstream.ErrNoStreamResponse) &&
		!errors.Is(pubErr, nats.ErrNoResponders) && !errors.Is(pubErr, nats.ErrTimeout) {
		return StoreOther, pubErr.Error()
	}
	// No answer to the publish: ask JetStream what it can tell.
	s, err := b.js.Stream(ctx, b.cfg.Stream)
	switch {
	case errors.Is(err, jetstream.ErrStreamNotFound):
		return StoreStreamMissing, fmt.Sprintf("publish: %v; stream %s not found", pubErr, b.cfg.Stream)
	case errors.Is(err, jetstream.ErrJetStreamNotEnabled), errors.Is(err, jetstream.ErrJetStreamNotEnabledForAccount):
		return StoreJetStreamUnavailable, fmt.Sprintf("publish: %v; %v", pubErr, err)
	case err != nil:
		return StoreJetStreamUnavailable, fmt.Sprintf("publish: %v; stream info: %v", pubErr, err)
	}
	if c := h.limitCause(ctx, s); c != "" {
		return c, fmt.Sprintf("publish: %v", pubErr) + h.figures(ctx, s)
	}
	return StoreNotStoring, fmt.Sprintf("publish: %v; JetStream answers but stores nothing: its store cannot write (disk full, read-only file system or I/O error on the NATS server; its log says which)", pubErr) +
		h.figures(ctx, s)
}

// limitCause returns StoreStreamFull or StoreAccountFull when the figures show a limit reached.
func (h *storeHealth) limitCause(ctx context.Context, s jetstream.Stream) string {
	info := s.CachedInfo()
	if c := info.Config; c.Discard == jetstream.DiscardNew &&
		(c.MaxBytes > 0 && int64(info.State.Bytes) >= c.MaxBytes || c.MaxMsgs > 0 && int64(info.State.Msgs) >= c.MaxMsgs) {
		return StoreStreamFull
	}
	if ai := h.accountInfo(ctx); ai != nil && ai.Limits.MaxStore > 0 && int64(ai.Store) >= ai.Limits.MaxStore {
		return StoreAccountFull
	}
	return ""
}

// figures describes the stream's and the account's storage: "; stream: 938 msgs, 1040007
// bytes (max 6291456, discard old), last seq 938; account: 1040007 bytes stored (reserved
// 6291456, limit -1)".
func (h *storeHealth) figures(ctx context.Context, s jetstream.Stream) string {
	var sb strings.Builder
	if s == nil {
		s, _ = h.b.js.Stream(ctx, h.b.cfg.Stream)
	}
	if s != nil {
		info := s.CachedInfo()
		discard := "old"
		if info.Config.Discard == jetstream.DiscardNew {
			discard = "new"
		}
		fmt.Fprintf(&sb, "; stream %s: %d msgs, %d bytes (max %d, discard %s), last seq %d",
			info.Config.Name, info.State.Msgs, info.State.Bytes, info.Config.MaxBytes, discard, info.State.LastSeq)
	}
	if ai := h.accountInfo(ctx); ai != nil {
		fmt.Fprintf(&sb, "; account: %d bytes stored (reserved %d, limit %d)", ai.Store, ai.ReservedStore, ai.Limits.MaxStore)
	}
	return sb.String()
}

// accountInfo returns the account's JetStream usage, or nil if it cannot be had (a user
// without the permission is not asked again).
func (h *storeHealth) accountInfo(ctx context.Context) *jetstream.AccountInfo {
	h.mu.Lock()
	denied := h.noAcctOK
	h.mu.Unlock()
	if denied {
		return nil
	}
	actx, cancel := context.WithTimeout(ctx, diagnoseTimeout)
	defer cancel()
	ai, err := h.b.js.AccountInfo(actx)
	if err != nil {
		if errors.Is(err, nats.ErrPermissionViolation) || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nats.ErrTimeout) {
			h.mu.Lock()
			h.noAcctOK = true
			h.mu.Unlock()
			h.b.logger.Debug("account info unavailable; not asked again", "err", err)
		}
		return nil
	}
	return ai
}

// StoreStatus returns whether the event store takes this Bus's writes, and if not why.
func (b *Bus) StoreStatus() StoreStatus { return b.health.status() }

// logPublishError logs a failed publish: loudly the first one after a healthy time, then at
// debug level (the store fault is logged once per cause instead).
func (b *Bus) logPublishError(level slog.Level, inst string, epoch, seq uint64, err error) {
	b.logger.Log(context.Background(), level, "publish failed", "instrument", inst, "epoch", epoch, "seq", seq, "err", err)
}
