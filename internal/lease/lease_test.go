package lease_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/tickwire/tickwire/internal/bus"
	"github.com/tickwire/tickwire/internal/bus/bustest"
	"github.com/tickwire/tickwire/internal/lease"
	"github.com/tickwire/tickwire/internal/testwait"
)

// journal records lease changes of several campaigners in the order they happened.
type journal struct {
	mu  sync.Mutex
	log []string
}

func (j *journal) onChange(who string) func(bool) {
	return func(held bool) {
		j.mu.Lock()
		defer j.mu.Unlock()
		j.log = append(j.log, fmt.Sprintf("%s%s", who, map[bool]string{true: "+", false: "-"}[held]))
	}
}

func (j *journal) String() string {
	j.mu.Lock()
	defer j.mu.Unlock()
	return strings.Join(j.log, " ")
}

// campaigner is one process campaigning: its own NATS connection (as the ingest user, so the
// role's permissions are tested too), its lease and Run's goroutine.
type campaigner struct {
	b      *bus.Bus
	l      *lease.Lease
	cancel context.CancelFunc
	done   chan error
	once   sync.Once
}

func campaign(t *testing.T, s *bus.Embedded, name, who string, ttl time.Duration, j *journal) *campaigner {
	t.Helper()
	b := bustest.ConnectAs(t, s, string(bus.RoleIngest))
	js, err := jetstream.New(b.Conn())
	if err != nil {
		t.Fatal(err)
	}
	l, err := lease.New(context.Background(), js, lease.Config{Name: name, Holder: who, TTL: ttl, OnChange: j.onChange(who)}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	c := &campaigner{b: b, l: l, cancel: cancel, done: make(chan error, 1)}
	go func() { c.done <- l.Run(ctx) }()
	t.Cleanup(c.stop)
	return c
}

// stop ends Run and waits for it (idempotent).
func (c *campaigner) stop() {
	c.once.Do(func() {
		c.cancel()
		if err := <-c.done; err != nil {
			panic(err)
		}
	})
}

func TestOneHolderAndGracefulHandover(t *testing.T) {
	s := bustest.Start(t)
	var j journal
	a := campaign(t, s, "ingest.synthetic", "a", time.Second, &j)
	testwait.For(t, 10*time.Second, "a holds the lease", a.l.Held)
	b := campaign(t, s, "ingest.synthetic", "b", time.Second, &j)
	other := campaign(t, s, "ingest.other", "c", time.Second, &j) // another job: its own holder
	testwait.For(t, 10*time.Second, "c holds its own lease", other.l.Held)

	// b stands by while a renews, over several TTLs.
	deadline := time.Now().Add(2500 * time.Millisecond)
	for time.Now().Before(deadline) {
		if b.l.Held() || !a.l.Held() {
			t.Fatalf("a held %v, b held %v; want a alone (%s)", a.l.Held(), b.l.Held(), &j)
		}
		time.Sleep(50 * time.Millisecond)
	}

	// A graceful stop releases: b takes over at its next try, well before the TTL.
	a.stop()
	testwait.For(t, 10*time.Second, "b holds the lease", b.l.Held)
	if a.l.Held() {
		t.Fatal("a still says it holds the lease after its Run ended")
	}
	got := j.String()
	if i, k := strings.Index(got, "a-"), strings.Index(got, "b+"); i < 0 || k < 0 || i > k {
		t.Fatalf("changes %q: want a- before b+", got)
	}
}

// TestCutOffHolderFencesItselfFirst: a holder that loses NATS stops acting (Held false, a-)
// before the key expires on the server and another process gains it (b+).
func TestCutOffHolderFencesItselfFirst(t *testing.T) {
	s := bustest.Start(t)
	var j journal
	a := campaign(t, s, "ingest.x", "a", time.Second, &j)
	testwait.For(t, 10*time.Second, "a holds the lease", a.l.Held)
	b := campaign(t, s, "ingest.x", "b", time.Second, &j)

	_ = a.b.Close() // a's renewals fail from now on; its release too
	testwait.For(t, 10*time.Second, "b holds the lease", b.l.Held)
	if a.l.Held() {
		t.Fatal("a, cut off, still says it holds the lease")
	}
	got := j.String()
	if i, k := strings.Index(got, "a-"), strings.Index(got, "b+"); i < 0 || k < 0 || i > k {
		t.Fatalf("changes %q: want a- (fenced) before b+", got)
	}
}

func TestConfigLimits(t *testing.T) {
	s := bustest.Start(t)
	b := bustest.ConnectAs(t, s, string(bus.RoleIngest))
	js, err := jetstream.New(b.Conn())
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		ttl  time.Duration
		ok   bool
	}{
		{"ingest.a", lease.MinTTL, true},
		{"ingest.a", lease.MaxTTL, true},
		{"ingest.a", lease.MinTTL - time.Millisecond, false},
		{"ingest.a", lease.MaxTTL + time.Millisecond, false},
		{"", time.Second, false},
		{"has space", time.Second, false},
		{"ingest.", time.Second, false},
		{strings.Repeat("a", 128), time.Second, true},
		{strings.Repeat("a", 129), time.Second, false},
	} {
		_, err := lease.New(context.Background(), js, lease.Config{Name: tc.name, TTL: tc.ttl}, nil, nil)
		if tc.ok != (err == nil) || (err != nil && !errors.Is(err, lease.ErrConfig)) {
			t.Errorf("name %q ttl %v: err %v; want ok=%v", tc.name, tc.ttl, err, tc.ok)
		}
	}
}

// flakyJS is a JetStream whose lease bucket, the first times it is opened, answers its status
// with "stream not found": what a process sees on a NATS cluster right after another process
// created the replicated bucket (seen in the chaos cluster: one of two ingests started together
// exited on it).
type flakyJS struct {
	jetstream.JetStream
	failures int
}

type flakyKV struct {
	jetstream.KeyValue
	js *flakyJS
}

func (f *flakyJS) KeyValue(ctx context.Context, bucket string) (jetstream.KeyValue, error) {
	kv, err := f.JetStream.KeyValue(ctx, bucket)
	if err != nil {
		return nil, err
	}
	return &flakyKV{KeyValue: kv, js: f}, nil
}

func (f *flakyKV) Status(ctx context.Context) (jetstream.KeyValueStatus, error) {
	if f.js.failures > 0 {
		f.js.failures--
		return nil, jetstream.ErrStreamNotFound
	}
	return f.KeyValue.Status(ctx)
}

func TestBucketNotReadyYetIsWaitedFor(t *testing.T) {
	s := bustest.Start(t)
	b := bustest.ConnectAs(t, s, string(bus.RoleIngest))
	js, err := jetstream.New(b.Conn())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := lease.New(context.Background(), js, lease.Config{Name: "ingest.a", TTL: time.Second}, nil, nil); err != nil {
		t.Fatal(err) // the bucket exists from here on
	}
	flaky := &flakyJS{JetStream: js, failures: 3}
	l, err := lease.New(context.Background(), flaky, lease.Config{Name: "ingest.a", TTL: time.Second}, nil, nil)
	if err != nil {
		t.Fatalf("a bucket not ready for a moment: %v; want New to wait for it", err)
	}
	if l.TTL() != time.Second || flaky.failures != 0 {
		t.Fatalf("ttl %v, %d failures left", l.TTL(), flaky.failures)
	}
	// A bucket that never becomes ready: New gives up when ctx ends, saying why.
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	if _, err := lease.New(ctx, &flakyJS{JetStream: js, failures: 1 << 30}, lease.Config{Name: "ingest.a", TTL: time.Second}, nil, nil); !errors.Is(err, jetstream.ErrStreamNotFound) {
		t.Fatalf("err %v; want the last error, stream not found", err)
	}
}
