package bus_test

import (
	"bytes"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/tickwire/tickwire/internal/bus"
	"github.com/tickwire/tickwire/internal/bus/bustest"
	"github.com/tickwire/tickwire/internal/testwait"
	tickwirev1 "github.com/tickwire/tickwire/pkg/proto/tickwire/v1"
)

// syncBuffer is a bytes.Buffer safe for a logger and a test at once. A nonzero delay makes
// every write slow, so that a test sees any state published before its log line is written.
type syncBuffer struct {
	delay time.Duration
	mu    sync.Mutex
	b     bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	time.Sleep(s.delay)
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// adminJS connects to s as the admin role with the raw client, for what Tickwire's own code
// never does (a stream that discards new messages, standing in for a full store).
func adminJS(t *testing.T, s *bus.Embedded) jetstream.JetStream {
	t.Helper()
	a := s.Auth(string(bus.RoleAdmin))
	nc, err := nats.Connect(s.ClientURL(), nats.UserInfo(a.User, a.Password), nats.CustomInboxPrefix(bus.InboxPrefix(a.User)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return js
}

func bigTrade(inst string, seq uint64) *tickwirev1.Event {
	return &tickwirev1.Event{Instrument: inst, Epoch: 1, Seq: seq,
		Body: &tickwirev1.Event_Trade{Trade: &tickwirev1.Trade{Price: 100, Size: 1, TradeId: strings.Repeat("t", 1000)}}}
}

// TestStoreFullReportedThenRecovers: a store that refuses writes because it is full (here a
// stream that discards new messages at 64 KiB, standing in for a full disk, which the
// root-only TestEmbeddedDiskFullRecovers covers) is reported once with its cause, in the log
// and in tickwire_bus_store_fault{cause}, instead of one warning per event; once there is room
// again, the next acknowledged publish clears it. The log is slow on purpose: StoreStatus
// must not show a change before its log line and gauge do (it once did, and this test was
// flaky in CI).
func TestStoreFullReportedThenRecovers(t *testing.T) {
	ctx := ctxT(t)
	s := bustest.Start(t)
	js := adminJS(t, s)
	cfg := jetstream.StreamConfig{Name: bus.DefaultStreamName, Subjects: []string{bus.EventSubjects},
		Storage: jetstream.FileStorage, Discard: jetstream.DiscardNew, MaxBytes: 64 << 10}
	if _, err := js.CreateStream(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	logs := syncBuffer{delay: 50 * time.Millisecond}
	reg := prometheus.NewRegistry()
	// One event per message: batches of several sizes could leave room for a small one after
	// a larger one was refused, which is a recovery, not the steady fault this test is about.
	b, err := bus.Connect(ctx, bus.Config{URL: s.ClientURL(), Auth: s.Auth(bustest.TestUser), MaxBatchEvents: 1},
		slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelInfo})), reg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	fault := func(cause string) float64 {
		return gauge(t, reg, "tickwire_bus_store_fault", cause)
	}
	if st := b.StoreStatus(); st.Fault != "" || fault(bus.StoreStreamFull) != 0 {
		t.Fatalf("fault before any publish: %+v", st)
	}

	seq := uint64(0)
	for range 200 { // ~200 KB into 64 KiB
		seq++
		if err := b.Publish(ctx, bigTrade("x:A", seq)); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Flush(ctx); !errors.Is(err, bus.ErrPublish) {
		t.Fatalf("flush: %v; want ErrPublish", err)
	}
	testwait.For(t, 5*time.Second, "the condition", func() bool { return b.StoreStatus().Fault == bus.StoreStreamFull })
	st := b.StoreStatus()
	if !strings.Contains(st.Detail, "maximum bytes") || !strings.Contains(st.Detail, "discard new") || st.Since.IsZero() || st.Failed == 0 {
		t.Fatalf("status %+v; want the server's reason and the stream's figures", st)
	}
	if fault(bus.StoreStreamFull) != 1 || fault(bus.StoreNotStoring) != 0 {
		t.Fatalf("tickwire_bus_store_fault{cause=\"stream_full\"} is not 1 (alone): %v %v %+v", fault(bus.StoreStreamFull), fault(bus.StoreNotStoring), b.StoreStatus())
	}
	out := logs.String()
	if n := strings.Count(out, "event store refuses writes"); n != 1 {
		t.Fatalf("%d fault reports; want 1:\n%s", n, out)
	}
	if n := strings.Count(out, "level=WARN msg=\"publish failed\""); n != 1 {
		t.Fatalf("%d publish warnings for one fault; want 1 (the rest at debug level)", n)
	}

	// Room again: the next acknowledged publish clears the fault.
	cfg.MaxBytes = 16 << 20
	if _, err := js.UpdateStream(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	seq++
	if err := b.Publish(ctx, bigTrade("x:B", 1)); err != nil {
		t.Fatal(err)
	}
	if err := b.Flush(ctx); err != nil {
		t.Fatalf("flush after room was made: %v", err)
	}
	testwait.For(t, 5*time.Second, "the condition", func() bool { return b.StoreStatus().Fault == "" })
	if fault(bus.StoreStreamFull) != 0 {
		t.Fatal("tickwire_bus_store_fault{cause=\"stream_full\"} still 1")
	}
	if !strings.Contains(logs.String(), "event store accepts writes again") {
		t.Fatalf("no recovery logged:\n%s", logs.String())
	}
}

// gauge returns the value of the series of name whose one label has value label.
func gauge(t *testing.T, reg *prometheus.Registry, name, label string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if lp.GetValue() == label {
					return m.GetGauge().GetValue()
				}
			}
		}
	}
	t.Fatalf("no series %s{%q}", name, label)
	return 0
}

// TestStoreFaultCauses: what the server says maps to a cause, with no server needed for the
// cases the error names itself.
func TestStoreFaultCauses(t *testing.T) {
	ctx := ctxT(t)
	s := bustest.Start(t)
	b := bustest.Connect(t, s)
	for _, tc := range []struct {
		err  error
		want string
	}{
		{&jetstream.APIError{Code: 503, ErrorCode: 10077, Description: "write /data/1.blk: no space left on device"}, bus.StoreDiskFull},
		{&jetstream.APIError{Code: 503, ErrorCode: 10077, Description: "maximum bytes exceeded"}, bus.StoreStreamFull},
		{&jetstream.APIError{Code: 503, ErrorCode: 10077, Description: "maximum messages exceeded"}, bus.StoreStreamFull},
		{&jetstream.APIError{Code: 503, ErrorCode: 10023, Description: "insufficient resources"}, bus.StoreServerFull},
		{&jetstream.APIError{Code: 500, ErrorCode: 10047, Description: "insufficient storage resources available"}, bus.StoreServerFull},
		{&jetstream.APIError{Code: 400, ErrorCode: 10002, Description: "resource limits exceeded for account"}, bus.StoreAccountFull},
		{&jetstream.APIError{Code: 503, ErrorCode: 10076, Description: "jetstream not enabled"}, bus.StoreJetStreamUnavailable},
		{&jetstream.APIError{Code: 400, ErrorCode: 10999, Description: "something new"}, bus.StoreOther},
		{jetstream.ErrAsyncPublishTimeout, bus.StoreNotStoring}, // the stream answers its info: not storing
		{errors.New("boom"), bus.StoreOther},
	} {
		if got, detail := bus.DiagnoseForTest(ctx, b, tc.err); got != tc.want || detail == "" {
			t.Errorf("%v: cause %q (%s); want %q", tc.err, got, detail, tc.want)
		}
	}
}
