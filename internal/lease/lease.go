// Package lease elects one holder among processes that do the same job (two ingest processes
// for one source: exactly one publishes) with a key in a NATS JetStream key-value bucket whose
// entries expire after a TTL.
//
// The holder creates the key and renews it every TTL/3 with a compare-and-set on its revision;
// the others try to create it every TTL/6 and succeed once it is gone: deleted by a holder that
// stops gracefully (a takeover within one try), or expired after the holder died (within about
// TTL + TTL/6).
//
// Fencing: a holder counts its lease from the moment it sent the write that created or renewed
// it, and considers it lost TTL x 2/3 after that if no renewal has succeeded since (Held turns
// false, and the OnChange callback says so). The server expires the key no sooner than TTL after
// that write, so a holder cut off from NATS stops acting TTL/3 before anyone else can start.
// That margin is also what the holder's in-flight work has to land in.
package lease

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
)

// Bucket is the key-value bucket of every Tickwire lease.
const Bucket = "TICKWIRE_LEASES"

// Stream is the JetStream stream that holds Bucket.
const Stream = "KV_" + Bucket

// DefaultTTL is the lease time to live when Config.TTL is zero.
const DefaultTTL = 6 * time.Second

// MinTTL and MaxTTL bound Config.TTL: under a second, a busy NATS round trip could cost a
// holder its lease; over a minute, a dead holder keeps its job undone too long.
const (
	MinTTL = time.Second
	MaxTTL = time.Minute
)

// ErrConfig is wrapped by errors from New about its Config.
var ErrConfig = errors.New("lease: invalid config")

// Config configures a Lease.
type Config struct {
	// Name is the lease: the job it elects a holder for (e.g. "ingest.synthetic"). Letters,
	// digits, '-', '_', '.' and '/' (a key of Bucket).
	Name string
	// Holder names this process in the key's value, for people reading it (default host:pid).
	Holder string
	// TTL: see DefaultTTL, MinTTL, MaxTTL. The bucket keeps the TTL it was created with; a
	// process configured with another one uses the bucket's (and logs it).
	TTL time.Duration
	// Replicas of the bucket when this process creates it (0: 1; 3 on a NATS cluster).
	Replicas int
	// OnChange is called (from Run's goroutine, never concurrently) each time this process
	// gains the lease (held true) or loses it (false). It must not block for long.
	OnChange func(held bool)
}

// Lease campaigns for one key. Create it with New; Run does the work.
type Lease struct {
	kv     jetstream.KeyValue
	cfg    Config
	ttl    time.Duration // the bucket's
	logger *slog.Logger
	m      metrics

	// deadline is the UnixNano (from the monotonic clock's start, see now) after which this
	// process must not act as the holder; 0 while not held. Read by Held from any goroutine.
	deadline atomic.Int64
	start    time.Time // the monotonic clock's origin for deadline

	runOnce sync.Once
}

type metrics struct {
	held     prometheus.Gauge
	changes  *prometheus.CounterVec
	failures prometheus.Counter
}

// New opens (creating when missing) the lease bucket on js and returns a Lease for cfg.Name.
// reg receives tickwire_lease_* metrics (nil: none).
func New(ctx context.Context, js jetstream.JetStream, cfg Config, logger *slog.Logger, reg prometheus.Registerer) (*Lease, error) {
	if cfg.TTL == 0 {
		cfg.TTL = DefaultTTL
	}
	if cfg.TTL < MinTTL || cfg.TTL > MaxTTL {
		return nil, fmt.Errorf("%w: TTL %v outside %v..%v", ErrConfig, cfg.TTL, MinTTL, MaxTTL)
	}
	if err := CheckName(cfg.Name); err != nil {
		return nil, err
	}
	if cfg.Holder == "" {
		host, _ := os.Hostname()
		cfg.Holder = host + ":" + strconv.Itoa(os.Getpid())
	}
	if cfg.Replicas <= 0 {
		cfg.Replicas = 1
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	logger = logger.With("component", "lease", "lease", cfg.Name)
	kv, st, err := openBucket(ctx, js, cfg)
	if err != nil {
		return nil, err
	}
	l := &Lease{kv: kv, cfg: cfg, ttl: st.TTL(), logger: logger, start: time.Now()}
	if l.ttl <= 0 {
		return nil, fmt.Errorf("lease: bucket %s has no TTL; delete it so that it is created again", Bucket)
	}
	if l.ttl != cfg.TTL {
		logger.Warn("the lease bucket has another TTL than configured; using the bucket's", "bucket_ttl", l.ttl, "configured_ttl", cfg.TTL)
	}
	l.m = metrics{
		held: prometheus.NewGauge(prometheus.GaugeOpts{Name: "tickwire_lease_held",
			Help: "1 while this process holds its lease (does the job), 0 while it stands by.", ConstLabels: prometheus.Labels{"lease": cfg.Name}}),
		changes: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tickwire_lease_changes_total",
			Help: "Times this process gained (result=gained) or lost (lost) its lease.", ConstLabels: prometheus.Labels{"lease": cfg.Name}}, []string{"result"}),
		failures: prometheus.NewCounter(prometheus.CounterOpts{Name: "tickwire_lease_errors_total",
			Help: "Lease requests to NATS that failed (not a refusal because another process holds it).", ConstLabels: prometheus.Labels{"lease": cfg.Name}}),
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{l.m.held, l.m.changes, l.m.failures} {
			if err := reg.Register(c); err != nil {
				return nil, fmt.Errorf("lease: register metrics: %w", err)
			}
		}
	}
	return l, nil
}

// openBucket opens the lease bucket, creating it when missing. On a NATS cluster a bucket that
// another process has just created can answer "not found" for a moment: every failure is tried
// again every 250 ms, for up to 10 s or until ctx ends, and the last error returned.
func openBucket(ctx context.Context, js jetstream.JetStream, cfg Config) (jetstream.KeyValue, jetstream.KeyValueStatus, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	for {
		kv, err := js.KeyValue(ctx, Bucket)
		if errors.Is(err, jetstream.ErrBucketNotFound) {
			kv, err = js.CreateKeyValue(ctx, jetstream.KeyValueConfig{
				Bucket:      Bucket,
				Description: "Tickwire leases: which process of several does a job (internal/lease)",
				History:     1,
				TTL:         cfg.TTL,
				MaxBytes:    1 << 20,
				Storage:     jetstream.FileStorage,
				Replicas:    cfg.Replicas,
			})
		}
		var st jetstream.KeyValueStatus
		if err == nil {
			if st, err = kv.Status(ctx); err == nil {
				return kv, st, nil
			}
		}
		select {
		case <-ctx.Done():
			return nil, nil, fmt.Errorf("lease: bucket %s: %w", Bucket, err)
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// CheckName returns an error wrapping ErrConfig unless name can name a lease: 1 to 128
// letters, digits, '-', '_', '.' and '/', not starting or ending with '.'.
func CheckName(name string) error {
	ok := name != "" && len(name) <= 128 && name[0] != '.' && name[len(name)-1] != '.'
	for _, c := range []byte(name) {
		ok = ok && (c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.' || c == '/')
	}
	if !ok {
		return fmt.Errorf("%w: name %q (want 1 to 128 letters, digits, - _ . /, not starting or ending with .)", ErrConfig, name)
	}
	return nil
}

// TTL returns the lease time to live in force (the bucket's).
func (l *Lease) TTL() time.Duration { return l.ttl }

func (l *Lease) now() int64 { return int64(time.Since(l.start)) + 1 } // monotonic, never 0

// Held reports whether this process holds the lease now and may act as the holder. Safe from
// any goroutine; cheap enough to ask before every action.
func (l *Lease) Held() bool {
	d := l.deadline.Load()
	return d != 0 && l.now() < d
}

// Run campaigns for the lease, holds and renews it, until ctx ends; then, if held, it
// releases it (deletes the key, so that another process takes over at its next try) and
// returns nil. Call it once; the caller owns its goroutine. Stop everything the lease fences
// before ending ctx: work done after the release is not fenced.
func (l *Lease) Run(ctx context.Context) error {
	ran := false
	l.runOnce.Do(func() { ran = true })
	if !ran {
		return errors.New("lease: Run called twice")
	}
	var rev uint64 // revision of our key while held
	held := false
	set := func(h bool) {
		if h == held {
			return
		}
		held = h
		if h {
			l.m.held.Set(1)
			l.m.changes.WithLabelValues("gained").Inc()
			l.logger.Info("lease gained: this process does the job", "holder", l.cfg.Holder, "ttl", l.ttl)
		} else {
			l.deadline.Store(0)
			l.m.held.Set(0)
			l.m.changes.WithLabelValues("lost").Inc()
			l.logger.Warn("lease lost: this process stands by", "holder", l.cfg.Holder)
		}
		if l.cfg.OnChange != nil {
			l.cfg.OnChange(h)
		}
	}
	value := []byte(l.cfg.Holder)
	renewEvery, tryEvery := l.ttl/3, l.ttl/6
	for {
		// sent is when this attempt left: the server stamps the key no earlier.
		sent := l.now()
		rctx, cancel := context.WithTimeout(ctx, renewEvery)
		var err error
		if held {
			rev, err = l.kv.Update(rctx, l.cfg.Name, value, rev)
		} else {
			rev, err = l.kv.Create(rctx, l.cfg.Name, value)
		}
		cancel()
		switch {
		case err == nil:
			l.deadline.Store(sent + int64(l.ttl)*2/3)
			set(true)
		case ctx.Err() != nil:
		case errors.Is(err, jetstream.ErrKeyExists) || errors.Is(err, jetstream.ErrKeyRevisionMismatch):
			set(false) // another process holds it (a renewal refused: it took over after ours expired)
		default:
			l.m.failures.Inc()
			l.logger.Warn("lease request failed", "held", held, "err", err)
			if held && !l.Held() {
				set(false) // fenced: our deadline passed without a renewal
			}
		}
		wait := tryEvery
		if held {
			if err == nil {
				wait = renewEvery
			}
			if d := time.Duration(l.deadline.Load() - l.now()); d < wait {
				wait = max(d, 0) // wake when fenced, to say so
			}
		}
		select {
		case <-ctx.Done():
			if held {
				l.release(rev)
				set(false)
			}
			return nil
		case <-time.After(wait):
		}
		if held && !l.Held() {
			set(false)
		}
	}
}

// release deletes the key if it is still ours, so that a standby takes over at its next try
// instead of after the TTL.
func (l *Lease) release(rev uint64) {
	l.deadline.Store(0)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := l.kv.Delete(ctx, l.cfg.Name, jetstream.LastRevision(rev)); err != nil {
		l.logger.Warn("lease release failed; another process takes over when it expires", "err", err)
		return
	}
	l.logger.Info("lease released")
}
