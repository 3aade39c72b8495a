package feed

import (
	"bytes"
	"context"
	"encoding/json"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/tickwire/tickwire/internal/bus"
	"github.com/tickwire/tickwire/internal/bus/bustest"
	"github.com/tickwire/tickwire/internal/testwait"
	"github.com/tickwire/tickwire/pkg/market"
	pb "github.com/tickwire/tickwire/pkg/proto/tickwire/v1"
)

// logBuffer is a log destination tests read.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// warmFeed is a feed service run on b until the test ends or stop.
type warmFeed struct {
	srv  *Server
	svc  *Service
	log  *logBuffer
	stop func()
}

// warmReadyWithin bounds startWarm's wait for ready (TestWarmStartFigures raises it).
var warmReadyWithin = 30 * time.Second

// startWarm runs a feed on b, with checkpoints every interval (0: off), and waits until ready.
func startWarm(t *testing.T, b *bus.Bus, interval time.Duration) *warmFeed {
	t.Helper()
	lb := &logBuffer{}
	logger := slog.New(slog.NewTextHandler(lb, &slog.HandlerOptions{Level: slog.LevelInfo}))
	srv, err := New(Config{Market: market.Config{Depths: []uint32{5, 50}}}, logger, nil)
	if err != nil {
		t.Fatal(err)
	}
	svc, err := NewService(srv, b, "127.0.0.1:0", srv.Handler(FallbackUI()), logger)
	if err != nil {
		t.Fatal(err)
	}
	svc.EnableCheckpoints(b, interval)
	svc.progressEvery = time.Millisecond
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- svc.Run(ctx, 5*time.Second) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("feed Run: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	testwait.For(t, warmReadyWithin, "feed ready", srv.ready.Load)
	if err := srv.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	return &warmFeed{srv: srv, svc: svc, log: lb, stop: stop}
}

// encodedStates returns, per instrument, everything the feed holds of it: its state's checkpoint
// and the encoding of every snapshot it serves.
func encodedStates(t *testing.T, srv *Server) map[string][][]byte {
	t.Helper()
	parts := make([]*ownerCheckpoint, len(srv.hub.owners))
	if err := srv.hub.askOwners(context.Background(), cmdCheckpoint, parts); err != nil {
		t.Fatal(err)
	}
	var all []byte
	for _, p := range parts {
		all = append(all, p.out...)
	}
	var cp pb.FeedCheckpoint
	if err := proto.Unmarshal(all, &cp); err != nil {
		t.Fatal(err)
	}
	det := proto.MarshalOptions{Deterministic: true}
	out := map[string][][]byte{}
	for _, is := range cp.Instruments {
		b, err := det.Marshal(is)
		if err != nil {
			t.Fatal(err)
		}
		enc := [][]byte{b}
		st, err := market.RestoreState(srv.cfg.Market, is)
		if err != nil {
			t.Fatal(err)
		}
		for _, ch := range []pb.Channel{pb.Channel_CHANNEL_QUOTE, pb.Channel_CHANNEL_BOOK, pb.Channel_CHANNEL_TRADES,
			pb.Channel_CHANNEL_CANDLES, pb.Channel_CHANNEL_STATS} {
			for d := range srv.cfg.Market.Depths {
				snap, err := det.Marshal(st.Snapshot(ch, d, pb.SnapshotReason_SNAPSHOT_REASON_SUBSCRIBE))
				if err != nil {
					t.Fatal(err)
				}
				enc = append(enc, snap)
			}
		}
		out[is.Id] = enc
	}
	return out
}

// candleStoreOf is the candle store's contents, encoded.
func candleStoreOf(t *testing.T, srv *Server) []byte {
	t.Helper()
	bars := srv.candles.store.export()
	sort.Slice(bars, func(i, j int) bool { return bars[i].Instrument < bars[j].Instrument })
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(&pb.FeedCheckpoint{CandleStore: bars})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func sameStates(t *testing.T, what string, want, got map[string][][]byte) {
	t.Helper()
	if len(want) != len(got) {
		t.Fatalf("%s: %d instruments, full replay %d", what, len(got), len(want))
	}
	ids := make([]string, 0, len(want))
	for id := range want {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		w, g := want[id], got[id]
		if len(w) != len(g) {
			t.Fatalf("%s: %s: %d encodings, full replay %d", what, id, len(g), len(w))
		}
		for i := range w {
			if !bytes.Equal(w[i], g[i]) {
				t.Fatalf("%s: %s: encoding %d (0: the state, then snapshots) differs from the full replay's", what, id, i)
			}
		}
	}
}

func flush(t *testing.T, b *bus.Bus) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := b.Flush(ctx); err != nil {
		t.Fatal(err)
	}
}

// checkpointsAfter waits until the store holds a checkpoint at or after seq, and returns them.
// A feed checkpoints when an event arrives: p publishes one at each look.
func checkpointsAfter(t *testing.T, b *bus.Bus, p *publisher, seq uint64) []bus.CheckpointInfo {
	t.Helper()
	var have []bus.CheckpointInfo
	testwait.For(t, 20*time.Second, "a checkpoint written", func() bool {
		var err error
		have, err = b.Checkpoints(context.Background())
		if err == nil && len(have) > 0 && have[0].StreamSeq >= seq {
			return true
		}
		p.publish(1)
		flush(t, b)
		return false
	})
	return have
}

// TestWarmStartEqualsFullReplay: a feed started from a checkpoint plus the tail after it holds
// exactly the state of a feed that replayed the whole stream, for every instrument, across a
// new epoch and a gap in the tail; it consumed only the tail, and said so.
func TestWarmStartEqualsFullReplay(t *testing.T) {
	nats := bustest.Start(t)
	b := bustest.Connect(t, nats)
	p := newPublisher(t, b, 6)
	p.publish(1500)
	flush(t, b)

	first := startWarm(t, b, 10*time.Millisecond)
	if !strings.Contains(first.log.String(), "no state checkpoint stored yet") {
		t.Errorf("first start's log does not say it replays the full stream:\n%s", first.log)
	}
	p.publish(300) // once ready, these take checkpoints
	flush(t, b)
	st, err := b.StreamState(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("first feed's log:\n%s", first.log)
		}
	})
	checkpointsAfter(t, b, p, st.LastSeq)
	first.stop()

	// The tail: more events, a new epoch for every instrument, then a gap in one.
	p.publish(300)
	p.mu.Lock()
	p.epoch++
	clear(p.seq)
	p.mu.Unlock()
	p.publish(300)
	p.mu.Lock()
	p.seq[p.instruments()[0]] += 5
	p.mu.Unlock()
	p.publish(300)
	p.finish()
	flush(t, b)

	warm := startWarm(t, b, time.Hour)
	full := startWarm(t, b, 0)
	sameStates(t, "checkpoint + tail", encodedStates(t, full.srv), encodedStates(t, warm.srv))
	if w, f := candleStoreOf(t, warm.srv), candleStoreOf(t, full.srv); !bytes.Equal(w, f) || len(f) < 100 {
		t.Fatalf("candle store: %d bytes encoded after the warm start, %d after the full replay (or too few)", len(w), len(f))
	}
	if len(warm.srv.Instruments()) != len(full.srv.Instruments()) || len(warm.srv.Instruments()) == 0 {
		t.Fatalf("instruments listed: warm %d, full %d", len(warm.srv.Instruments()), len(full.srv.Instruments()))
	}
	ww, fw := warm.srv.warmup.Load(), full.srv.warmup.Load()
	if !ww.fromCheckpoint || fw.fromCheckpoint || ww.events.Load() >= fw.events.Load() {
		t.Fatalf("warm start consumed %d events (from checkpoint %v), full replay %d", ww.events.Load(), ww.fromCheckpoint, fw.events.Load())
	}
	if l := warm.log.String(); !strings.Contains(l, "warm start from the state checkpoint") || !strings.Contains(l, "from_checkpoint=true") {
		t.Errorf("warm start's log:\n%s", l)
	}
	if l := full.log.String(); !strings.Contains(l, "warming up: consuming stored events") || !strings.Contains(l, "percent=") {
		t.Errorf("full replay's log shows no progress:\n%s", l)
	}
}

// TestCheckpointFallback: a corrupt latest checkpoint falls back to the previous one; with every
// checkpoint unusable the feed replays the full stream; each is logged, and the state is the
// full replay's either way.
func TestCheckpointFallback(t *testing.T) {
	nats := bustest.Start(t)
	b := bustest.Connect(t, nats)
	p := newPublisher(t, b, 4)
	p.publish(800)
	flush(t, b)
	first := startWarm(t, b, 10*time.Millisecond)
	p.publish(200)
	flush(t, b)
	st, err := b.StreamState(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	good := checkpointsAfter(t, b, p, st.LastSeq)[0]
	first.stop()
	p.publish(300)
	flush(t, b)
	full := encodedStates(t, startWarm(t, b, 0).srv)

	// A newer checkpoint, corrupt: one byte flipped.
	ctx := context.Background()
	data, err := b.ReadCheckpoint(ctx, good)
	if err != nil {
		t.Fatal(err)
	}
	bad := bytes.Clone(data)
	bad[len(bad)/2] ^= 0x40
	if _, err := b.PutCheckpoint(ctx, good.StreamSeq+100, time.Now(), bad); err != nil {
		t.Fatal(err)
	}
	f := startWarm(t, b, time.Hour)
	l := f.log.String()
	if !strings.Contains(l, "state checkpoint unusable; falling back to the previous one") || !strings.Contains(l, "corrupt") ||
		!strings.Contains(l, "warm start from the state checkpoint") {
		t.Errorf("corrupt latest checkpoint, log:\n%s", l)
	}
	if w := f.srv.warmup.Load(); !w.fromCheckpoint || w.checkpointSeq != good.StreamSeq {
		t.Errorf("started from checkpoint %v at %d, want the previous one at %d", w.fromCheckpoint, w.checkpointSeq, good.StreamSeq)
	}
	sameStates(t, "previous checkpoint + tail", full, encodedStates(t, f.srv))
	f.stop()

	// Every slot unusable: corrupt, not a checkpoint, another format; newer than the one the
	// graceful stop above wrote, so that they take every slot.
	have, err := b.Checkpoints(ctx)
	if err != nil || len(have) == 0 {
		t.Fatalf("checkpoints after the stop: %v %v", have, err)
	}
	other := bytes.Clone(data)
	other[7] ^= 1 // the format's low byte
	for i, junk := range [][]byte{bad, []byte("not a checkpoint"), other} {
		if _, err := b.PutCheckpoint(ctx, have[0].StreamSeq+1+uint64(i), time.Now(), junk); err != nil {
			t.Fatal(err)
		}
	}
	f = startWarm(t, b, time.Hour)
	l = f.log.String()
	if strings.Count(l, "state checkpoint unusable") != bus.CheckpointSlots || !strings.Contains(l, "falling back to the full stream") ||
		!strings.Contains(l, "no usable state checkpoint: replaying the full stream") || strings.Contains(l, "warm start from") {
		t.Errorf("every checkpoint unusable, log:\n%s", l)
	}
	if w := f.srv.warmup.Load(); w.fromCheckpoint {
		t.Error("started from a checkpoint")
	}
	sameStates(t, "full stream after unusable checkpoints", full, encodedStates(t, f.srv))
}

// While warming up, /readyz says how far it got, and ?verbose has the figures.
func TestReadyzShowsWarmup(t *testing.T) {
	srv, err := New(Config{}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Shutdown(context.Background())
	w := &warmup{fromCheckpoint: true, checkpointSeq: 100, from: 101, target: 300, started: time.Now().Add(-2 * time.Second)}
	w.seq.Store(150)
	w.events.Store(50)
	srv.warmup.Store(w)
	rec := httptest.NewRecorder()
	srv.Handler(FallbackUI()).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/readyz", nil))
	if rec.Code != http.StatusServiceUnavailable || !strings.Contains(rec.Body.String(), "warming up, 25.0% of 200 stored events, ETA 6s") {
		t.Errorf("/readyz: %d %q", rec.Code, rec.Body)
	}
	rec = httptest.NewRecorder()
	srv.Handler(FallbackUI()).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/readyz?verbose", nil))
	var st StaleStatus
	if err := json.Unmarshal(rec.Body.Bytes(), &st); err != nil {
		t.Fatal(err)
	}
	if st.Warmup == nil || st.Warmup.Events != 50 || st.Warmup.Total != 200 || st.Warmup.Percent != 25 || !st.Warmup.FromCheckpoint ||
		st.Warmup.ETASeconds == nil || *st.Warmup.ETASeconds < 5 || *st.Warmup.ETASeconds > 7 {
		t.Errorf("/readyz?verbose: %s", rec.Body)
	}
}

// TestFinalCheckpointOnShutdown: a feed stopped gracefully writes a checkpoint at the last event
// it applied, so the next start has no tail to replay (a restart after a deploy takes the time
// of reading the checkpoint, whatever the interval).
func TestFinalCheckpointOnShutdown(t *testing.T) {
	nats := bustest.Start(t)
	b := bustest.Connect(t, nats)
	p := newPublisher(t, b, 4)
	p.publish(500)
	flush(t, b)
	f := startWarm(t, b, time.Hour) // the interval never comes during the test
	p.publish(200)
	flush(t, b)
	st, err := b.StreamState(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	testwait.For(t, 10*time.Second, "the feed to apply every stored event", func() bool {
		return f.srv.warmup.Load().seq.Load() == st.LastSeq
	})
	f.stop()
	list, err := b.Checkpoints(context.Background())
	if err != nil || len(list) == 0 || list[0].StreamSeq != st.LastSeq {
		t.Fatalf("checkpoints after a graceful stop: %+v, %v; want the newest at the last event %d\nlog:\n%s", list, err, st.LastSeq, f.log)
	}
	if !strings.Contains(f.log.String(), "final state checkpoint written") {
		t.Errorf("the log does not say so:\n%s", f.log)
	}
	m := f.srv.metrics
	if w, seq := testutil.ToFloat64(m.checkpoints.WithLabelValues("written")), testutil.ToFloat64(m.checkpointSeq); w < 1 || seq != float64(st.LastSeq) ||
		testutil.ToFloat64(m.checkpointSize) == 0 {
		t.Errorf("metrics: %v written, latest at %v (want %d), %v bytes", w, seq, st.LastSeq, testutil.ToFloat64(m.checkpointSize))
	}
	next := startWarm(t, b, time.Hour)
	if w := next.srv.warmup.Load(); !w.fromCheckpoint || w.events.Load() != 0 {
		t.Fatalf("the next start: from checkpoint %v, %d tail events, want a checkpoint and no tail", w.fromCheckpoint, w.events.Load())
	}
}
