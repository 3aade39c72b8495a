package client_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/tickwire/tickwire/internal/testwait"
	"github.com/tickwire/tickwire/pkg/client"
	"github.com/tickwire/tickwire/pkg/market"
	pb "github.com/tickwire/tickwire/pkg/proto/tickwire/v1"
	"github.com/tickwire/tickwire/pkg/wire"
)

var testIDs = []string{"synthetic:AAA", "synthetic:BBB", "synthetic:CCC"}

// recorder is a Handler that keeps what it is told, for tests to read from other goroutines.
type recorder struct {
	client.BaseHandler
	mu         sync.Mutex
	states     []client.ConnState
	stateErrs  []error
	subscribed []*pb.Subscribed
	resyncs    []string
	resyncErrs []error
	errors     []*pb.Error
	infos      []*pb.InstrumentInfo
	statuses   []string // "instrument channel state"
	updates    int
	latencyOK  bool
}

func (r *recorder) OnStateChange(_ *client.Client, s client.ConnState, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.states = append(r.states, s)
	r.stateErrs = append(r.stateErrs, err)
}

func (r *recorder) OnSubscribed(_ *client.Client, s *pb.Subscribed) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.subscribed = append(r.subscribed, s)
}

func (r *recorder) OnUpdate(_ *client.Client, u client.Update) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.updates++
	// Generated events carry ingest times in 2023: the latency is large and positive.
	if u.Delta != nil && u.Latency > time.Hour && u.Replica.Synced(u.Channel) && !u.SendTime.IsZero() {
		r.latencyOK = true
	}
}

func (r *recorder) OnResync(_ *client.Client, id string, ch pb.Channel, reason error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.resyncs = append(r.resyncs, id+" "+ch.String())
	r.resyncErrs = append(r.resyncErrs, reason)
}

func (r *recorder) OnError(_ *client.Client, e *pb.Error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.errors = append(r.errors, e)
}

func (r *recorder) OnInstrument(_ *client.Client, info *pb.InstrumentInfo) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.infos = append(r.infos, info)
}

func (r *recorder) OnStreamStatus(_ *client.Client, instrument string, s *pb.StreamStatus) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.statuses = append(r.statuses, instrument+" "+s.Channel.String()+" "+s.State.String())
}

func (r *recorder) snapshot() recorder {
	r.mu.Lock()
	defer r.mu.Unlock()
	return recorder{states: append([]client.ConnState(nil), r.states...), stateErrs: append([]error(nil), r.stateErrs...),
		subscribed: append([]*pb.Subscribed(nil), r.subscribed...), resyncs: append([]string(nil), r.resyncs...),
		resyncErrs: append([]error(nil), r.resyncErrs...), errors: append([]*pb.Error(nil), r.errors...),
		infos: append([]*pb.InstrumentInfo(nil), r.infos...), statuses: append([]string(nil), r.statuses...),
		updates: r.updates, latencyOK: r.latencyOK}
}

// run is a Client running in the background, stopped and awaited at the end of the test.
type run struct {
	c    *client.Client
	rec  *recorder
	done chan error
	stop context.CancelFunc
}

func startClient(t *testing.T, opts client.Options) *run {
	t.Helper()
	rec := &recorder{}
	if opts.Handler == nil {
		opts.Handler = rec
	}
	c, err := client.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &run{c: c, rec: rec, done: make(chan error, 1), stop: cancel}
	go func() { r.done <- c.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-r.done:
		case <-time.After(5 * time.Second):
			t.Error("Run did not return after cancel")
		}
	})
	return r
}

// wait returns Run's error, failing the test if it takes longer than d.
func (r *run) wait(t *testing.T, d time.Duration) error {
	t.Helper()
	select {
	case err := <-r.done:
		r.done <- err // for Cleanup
		return err
	case <-time.After(d):
		t.Fatalf("Run still running after %v", d)
		return nil
	}
}

// eventually is testwait's wait for a condition that says what it saw.
func eventually(t *testing.T, what string, f func() error) {
	t.Helper()
	var err error
	if !testwait.Until(5*time.Second, func() bool { err = f(); return err == nil }) {
		t.Fatalf("%s: %v", what, err)
	}
}

func errorf(cond bool, format string, args ...any) error {
	if cond {
		return nil
	}
	return &testError{strings.TrimSpace(sprintf(format, args...))}
}

type testError struct{ s string }

func (e *testError) Error() string { return e.s }

// newSyncedClient starts a server with testIDs, its first two instruments already running,
// and a client subscribed to every channel of all three, and waits until the client matches.
func newSyncedClient(t *testing.T, opts client.Options) (*fakeServer, *run) {
	t.Helper()
	s := newFakeServer(testIDs...)
	t.Cleanup(s.Close)
	s.step(60, testIDs[0], testIDs[1])
	opts.URL = s.URL
	r := startClient(t, opts)
	if err := r.c.Subscribe(client.Subscription{Instruments: testIDs}); err != nil {
		t.Fatal(err)
	}
	// CCC starts after the subscription: its snapshots come as its state can serve them.
	eventually(t, "first connection", func() error { return errorf(len(s.connectTimes()) == 1, "no connection") })
	s.step(30)
	eventually(t, "initial sync", func() error { return s.mismatch(r.c, 0) })
	return s, r
}

func TestReplicasMatchServer(t *testing.T) {
	for _, o := range []client.Options{{Subprotocol: wire.SubprotocolProto}, {Subprotocol: wire.SubprotocolJSON},
		{Subprotocol: wire.SubprotocolProto, CompactQuotes: true}} {
		t.Run(fmt.Sprintf("%s compact %v", o.Subprotocol, o.CompactQuotes), func(t *testing.T) {
			s, r := newSyncedClient(t, o)
			for range 30 {
				s.step(100)
			}
			eventually(t, "after 3000 events", func() error { return s.mismatch(r.c, 0) })
			eventually(t, "every delta applied", func() error {
				return errorf(r.c.Stats().Deltas == uint64(s.deltasSent()), "%d deltas applied, %d sent", r.c.Stats().Deltas, s.deltasSent())
			})
			st := r.c.Stats()
			if st.Connects != 1 || st.Gaps != 0 || st.Resyncs != 0 || st.ChecksumFailures != 0 || st.DecodeErrors != 0 {
				t.Errorf("stats %+v", st)
			}
			if st.Deltas < 2000 || st.Snapshots != 15 {
				t.Errorf("stats %+v: want >= 2000 deltas and 15 snapshots", st)
			}
			if n := s.compactSent(); o.CompactQuotes != (n > 100) || uint64(n) != st.CompactQuotes {
				t.Errorf("%d compact quotes sent, %d received", n, st.CompactQuotes)
			}
			rec := r.rec.snapshot()
			if len(rec.subscribed) != 3 || rec.subscribed[0].Info.GetPriceScale() != 2 {
				t.Errorf("subscribed %v", rec.subscribed)
			}
			if !rec.latencyOK {
				t.Error("no update carried a latency and send time")
			}
			v, _ := r.c.View(testIDs[1])
			if v.Info.GetPriceScale() != 2 || v.Depth != 10 || !v.Synced() {
				t.Errorf("view %+v", v)
			}
		})
	}
}

func TestGapResyncsOneStream(t *testing.T) {
	for _, ch := range []pb.Channel{pb.Channel_CHANNEL_QUOTE, pb.Channel_CHANNEL_BOOK, pb.Channel_CHANNEL_TRADES, -1} {
		compact := ch == -1 // a lost CompactQuote
		if compact {
			ch = pb.Channel_CHANNEL_QUOTE
		}
		t.Run(fmt.Sprintf("%v compact %v", ch, compact), func(t *testing.T) {
			s, r := newSyncedClient(t, client.Options{CompactQuotes: compact})
			broken := testIDs[1]
			s.dropNext(broken, ch)
			for range 10 {
				s.step(60)
			}
			eventually(t, "recovery", func() error { return s.mismatch(r.c, 0) })
			checkOneResync(t, s, r, broken, ch, market.ErrGap)
			if st := r.c.Stats(); st.Gaps != 1 || st.ChecksumFailures != 0 {
				t.Errorf("stats %+v", st)
			}
		})
	}
}

func TestChecksumMismatchResyncs(t *testing.T) {
	s, r := newSyncedClient(t, client.Options{Subprotocol: wire.SubprotocolJSON})
	broken := testIDs[2]
	s.corruptNext(broken)
	for range 10 {
		s.step(60)
	}
	eventually(t, "recovery", func() error { return s.mismatch(r.c, 0) })
	checkOneResync(t, s, r, broken, pb.Channel_CHANNEL_BOOK, market.ErrChecksum)
	if st := r.c.Stats(); st.Gaps != 0 || st.ChecksumFailures != 1 {
		t.Errorf("stats %+v", st)
	}
}

// TestBadCompactQuoteResyncs: a compact quote that names no previous delta is counted as a
// decode error and not applied; the next quote shows the gap and the stream resyncs.
func TestBadCompactQuoteResyncs(t *testing.T) {
	s, r := newSyncedClient(t, client.Options{CompactQuotes: true})
	broken := testIDs[1]
	s.badStepNext(broken)
	for range 10 {
		s.step(60)
	}
	eventually(t, "recovery", func() error { return s.mismatch(r.c, 0) })
	checkOneResync(t, s, r, broken, pb.Channel_CHANNEL_QUOTE, market.ErrGap)
	if st := r.c.Stats(); st.DecodeErrors != 1 || st.Gaps != 1 {
		t.Errorf("stats %+v", st)
	}
}

// TestInstrumentUpdate: new reference data (a halt) reaches an InstrumentHandler and the
// instrument's view; an update whose handle names another instrument is ignored.
func TestInstrumentUpdate(t *testing.T) {
	s, r := newSyncedClient(t, client.Options{})
	v, _ := r.c.View(testIDs[0])
	halted := proto.CloneOf(v.Info)
	halted.Status = pb.InstrumentStatus_INSTRUMENT_STATUS_HALTED
	s.announce(testIDs[0], testIDs[1], halted) // mismatched handle: ignored
	s.announce(testIDs[0], testIDs[0], halted)
	eventually(t, "the halt", func() error {
		if rec := r.rec.snapshot(); len(rec.infos) != 1 || rec.infos[0].GetStatus() != pb.InstrumentStatus_INSTRUMENT_STATUS_HALTED {
			return fmt.Errorf("OnInstrument calls %v", rec.infos)
		}
		return nil
	})
	if v, _ := r.c.View(testIDs[0]); v.Info.GetStatus() != pb.InstrumentStatus_INSTRUMENT_STATUS_HALTED {
		t.Fatalf("view info %v", v.Info)
	}
	if v, _ := r.c.View(testIDs[1]); v.Info.GetStatus() == pb.InstrumentStatus_INSTRUMENT_STATUS_HALTED {
		t.Fatalf("the other instrument's view changed: %v", v.Info)
	}
}

// TestWaitForInstruments: the option puts Subscribe.wait on every Subscribe the client sends;
// without it none has it.
func TestWaitForInstruments(t *testing.T) {
	for _, wait := range []bool{false, true} {
		s, _ := newSyncedClient(t, client.Options{WaitForInstruments: wait})
		s.mu.Lock()
		subs, waits := s.subscribes, s.waits
		s.mu.Unlock()
		if subs == 0 || (wait && waits != subs) || (!wait && waits != 0) {
			t.Errorf("WaitForInstruments %v: %d of %d subscribes with wait", wait, waits, subs)
		}
	}
}

// TestStreamStatus: a StreamStatus reaches a StreamStatusHandler with its instrument's id.
func TestStreamStatus(t *testing.T) {
	s, r := newSyncedClient(t, client.Options{})
	s.streamStatus(testIDs[1], pb.Channel_CHANNEL_BOOK)
	eventually(t, "the status", func() error {
		want := testIDs[1] + " CHANNEL_BOOK STREAM_STATE_AWAITING_SNAPSHOT"
		if rec := r.rec.snapshot(); len(rec.statuses) != 1 || rec.statuses[0] != want {
			return fmt.Errorf("OnStreamStatus calls %v, want [%s]", rec.statuses, want)
		}
		return nil
	})
}

func TestNewEpoch(t *testing.T) {
	t.Run("announced", func(t *testing.T) {
		// The server sends NEW_EPOCH snapshots: the client takes them, nothing breaks.
		s, r := newSyncedClient(t, client.Options{})
		s.newEpoch(testIDs[0], false)
		s.step(300)
		eventually(t, "new epoch", func() error { return s.mismatch(r.c, 0) })
		if st := r.c.Stats(); st.Resyncs != 0 || st.EpochChanges != 0 || st.Gaps != 0 {
			t.Errorf("stats %+v", st)
		}
		if v, _ := r.c.View(testIDs[0]); v.Streams[pb.Channel_CHANNEL_QUOTE].Epoch != 1700000001 {
			t.Errorf("view streams %v", v.Streams)
		}
	})
	t.Run("unannounced", func(t *testing.T) {
		// Deltas of another epoch arrive without a snapshot: each stream they break is resynced
		// once. The book gets its snapshot when the new epoch's book is whole, so it never breaks.
		s, r := newSyncedClient(t, client.Options{})
		s.newEpoch(testIDs[0], true)
		s.step(300)
		eventually(t, "new epoch", func() error { return s.mismatch(r.c, 0) })
		got := s.resyncCounts()
		for _, ch := range []pb.Channel{pb.Channel_CHANNEL_QUOTE, pb.Channel_CHANNEL_TRADES, pb.Channel_CHANNEL_CANDLES, pb.Channel_CHANNEL_STATS} {
			if got[streamKey{testIDs[0], ch}] != 1 {
				t.Errorf("resyncs %v: want one for %v", got, ch)
			}
		}
		if st := r.c.Stats(); len(got) != 4 || st.Resyncs != 4 || st.EpochChanges != 4 || st.Gaps != 0 {
			t.Errorf("stats %+v, server resyncs %v", st, got)
		}
	})
}

// checkOneResync checks that exactly one Resync was sent, for (id, ch), and that only that
// stream got a second snapshot.
func checkOneResync(t *testing.T, s *fakeServer, r *run, id string, ch pb.Channel, reason error) {
	t.Helper()
	got := s.resyncCounts()
	if len(got) != 1 || got[streamKey{id, ch}] != 1 {
		t.Errorf("server got resyncs %v, want one for %s %v", got, id, ch)
	}
	for _, other := range testIDs {
		want := 5
		if other == id {
			want = 6
		}
		if n := s.snapshotCounts()[other]; n != want {
			t.Errorf("%s: %d snapshots sent, want %d", other, n, want)
		}
		v, _ := r.c.View(other)
		if (v.Resyncs == 1) != (other == id) || v.Resyncs > 1 {
			t.Errorf("%s: view counts %d resyncs", other, v.Resyncs)
		}
	}
	rec := r.rec.snapshot()
	if len(rec.resyncs) != 1 || rec.resyncs[0] != id+" "+ch.String() || !errors.Is(rec.resyncErrs[0], reason) {
		t.Errorf("OnResync calls %v %v, want one for %s %v with %v", rec.resyncs, rec.resyncErrs, id, ch, reason)
	}
	if st := r.c.Stats(); st.Resyncs != 1 || st.Connects != 1 {
		t.Errorf("stats %+v", st)
	}
}

func TestReconnectAfterReconnectableClose(t *testing.T) {
	for _, code := range []uint16{wire.CloseGoingAway, wire.CloseSlowConsumer} {
		t.Run(sprintf("%d", code), func(t *testing.T) {
			const backoffMin = 100 * time.Millisecond
			s, r := newSyncedClient(t, client.Options{BackoffMin: backoffMin, BackoffMax: 4 * backoffMin})
			closed := time.Now()
			s.closeAll(code)
			s.step(200) // missed by the client
			eventually(t, "reconnect", func() error {
				return errorf(len(s.connectTimes()) == 2, "%d connections", len(s.connectTimes()))
			})
			if d := s.connectTimes()[1].Sub(closed); d < backoffMin {
				t.Errorf("reconnected after %v, before the minimum backoff %v", d, backoffMin)
			}
			s.step(300)
			eventually(t, "resync after reconnect", func() error { return s.mismatch(r.c, 0) })
			st := r.c.Stats()
			if st.Connects != 2 || st.Disconnects != 1 || st.Snapshots != 30 || st.Gaps != 0 || st.Resyncs != 0 {
				t.Errorf("stats %+v", st)
			}
			rec := r.rec.snapshot()
			var ce *client.CloseError
			if len(rec.states) != 3 || rec.states[1] != client.Disconnected || !errors.As(rec.stateErrs[1], &ce) || ce.Code != int(code) {
				t.Errorf("state changes %v %v", rec.states, rec.stateErrs)
			}
			// The new connection numbered the instruments differently; the client followed.
			if len(rec.subscribed) != 6 || rec.subscribed[0].Handle == rec.subscribed[3].Handle {
				t.Errorf("subscribed %v", rec.subscribed)
			}
		})
	}
}

func TestFatalCloseEndsRun(t *testing.T) {
	s, r := newSyncedClient(t, client.Options{BackoffMin: 10 * time.Millisecond, BackoffMax: 20 * time.Millisecond})
	s.closeAll(wire.CloseProtocolError)
	err := r.wait(t, 5*time.Second)
	var ce *client.CloseError
	if !errors.As(err, &ce) || ce.Code != wire.CloseProtocolError || ce.Reconnectable() {
		t.Fatalf("Run returned %v, want a CloseError with code 4500", err)
	}
	// Run has returned, and with it every goroutine it started: its count of connections is
	// final (no sleep to see whether a reconnect comes).
	if n := r.c.Stats().Connects; n != 1 {
		t.Errorf("%d connections after a fatal close", n)
	}
	if n := len(s.connectTimes()); n != 1 {
		t.Errorf("the server saw %d connections", n)
	}
	if v, _ := r.c.View(testIDs[0]); v.Synced() {
		t.Error("streams still synced after the connection ended")
	}
}

func TestHeartbeatTimeoutReconnects(t *testing.T) {
	opts := client.Options{HeartbeatTimeout: 250 * time.Millisecond, BackoffMin: 10 * time.Millisecond, BackoffMax: 20 * time.Millisecond}
	s, r := newSyncedClient(t, opts)
	// Nothing more comes from the server: the client must give up on the connection.
	eventually(t, "reconnect after silence", func() error {
		return errorf(len(s.connectTimes()) >= 2, "%d connections", len(s.connectTimes()))
	})
	if st := r.c.Stats(); st.HeartbeatTimeouts < 1 {
		t.Errorf("stats %+v", st)
	}
	rec := r.rec.snapshot()
	if len(rec.stateErrs) < 2 || !errors.Is(rec.stateErrs[1], client.ErrHeartbeatTimeout) {
		t.Errorf("state changes %v %v", rec.states, rec.stateErrs)
	}
	s.step(100)
	eventually(t, "sync after reconnect", func() error { return s.mismatch(r.c, 0) })
}

// TestHeartbeatsKeepConnection: heartbeats alone keep a connection past many heartbeat
// timeouts. Counted in heartbeats, not slept: the connection lives until the server has sent
// enough of them to span four timeouts, however long the machine takes to send them; the
// timeout is 15 heartbeat intervals, so only a stall of 300 ms in the client's reading would end
// the connection (at 5 intervals, 150 ms, a loaded machine could).
func TestHeartbeatsKeepConnection(t *testing.T) {
	const interval, timeout = 20 * time.Millisecond, 300 * time.Millisecond
	opts := client.Options{HeartbeatTimeout: timeout}
	s, r := newSyncedClient(t, opts)
	s.heartbeat(interval)
	testwait.For(t, 30*time.Second, "heartbeats over four timeouts", func() bool { return s.heartbeatsSent() >= int(4*timeout/interval) })
	if n := len(s.connectTimes()); n != 1 {
		t.Errorf("%d connections despite heartbeats", n)
	}
	if st := r.c.Stats(); st.HeartbeatTimeouts != 0 {
		t.Errorf("stats %+v", st)
	}
}

func TestListInstrumentsBeforeRunAndUnknownInstrument(t *testing.T) {
	s := newFakeServer(testIDs...)
	t.Cleanup(s.Close)
	s.step(30)
	c, err := client.New(client.Options{URL: s.URL, Handler: &recorder{}})
	if err != nil {
		t.Fatal(err)
	}
	type answer struct {
		list []*pb.InstrumentInfo
		err  error
	}
	got := make(chan answer, 1)
	go func() {
		list, err := c.ListInstruments(context.Background())
		got <- answer{list, err}
	}()
	// Wait until the request is queued, so that it is sent on connect.
	testwait.For(t, 5*time.Second, "ListInstruments queued", func() bool { return c.PendingLists() == 1 })
	if err := c.Subscribe(client.Subscription{Instruments: []string{"synthetic:NOPE", testIDs[0]}, Channels: []pb.Channel{pb.Channel_CHANNEL_QUOTE}}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run returned %v after cancel", err)
		}
	}()
	select {
	case a := <-got:
		if a.err != nil || len(a.list) != 3 || a.list[1].GetId() != testIDs[1] {
			t.Fatalf("ListInstruments = %v, %v", a.list, a.err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no answer to ListInstruments")
	}
	eventually(t, "unknown instrument dropped", func() error {
		ids := c.Instruments()
		return errorf(len(ids) == 1 && ids[0] == testIDs[0], "instruments %v", ids)
	})
	eventually(t, "quote synced", func() error {
		v, _ := c.View(testIDs[0])
		return errorf(v.Synced() && len(v.Streams) == 1 && v.Quote.GetBidPrice() > 0, "view %+v", v)
	})
	if st := c.Stats(); st.ServerErrors != 1 {
		t.Errorf("stats %+v", st)
	}
	if err := c.Unsubscribe([]string{testIDs[0]}); err != nil {
		t.Fatal(err)
	}
	if _, ok := c.View(testIDs[0]); ok {
		t.Error("view of an unsubscribed instrument")
	}
	if err := c.Resync(testIDs[0]); !errors.Is(err, client.ErrNotSubscribed) {
		t.Errorf("Resync of unsubscribed = %v", err)
	}
}

// TestRunStopsGoroutines checks that Run leaves nothing behind, whether it ends by
// cancellation or by a fatal close, and that Run can be called again.
func TestRunStopsGoroutines(t *testing.T) {
	s := newFakeServer(testIDs...)
	t.Cleanup(s.Close)
	s.step(30)
	base := runtime.NumGoroutine()
	c, err := client.New(client.Options{URL: s.URL, HeartbeatTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	_ = c.Subscribe(client.Subscription{Instruments: testIDs})
	for i := range 2 {
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- c.Run(ctx) }()
		eventually(t, "synced", func() error {
			v, _ := c.View(testIDs[0])
			return errorf(v.Synced(), "not synced")
		})
		if err := c.Run(ctx); !errors.Is(err, client.ErrRunning) {
			t.Errorf("second concurrent Run = %v", err)
		}
		if i == 0 {
			cancel()
		} else {
			s.closeAll(wire.CloseUnauthorized)
		}
		select {
		case err := <-done:
			if (i == 0) != (err == nil) {
				t.Errorf("run %d returned %v", i, err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("Run did not return")
		}
		cancel()
		// A goroutine that Run awaited may still be returning from its last line: allow it a
		// moment to exit, as goleak does.
		eventually(t, "client goroutines gone after Run returned", func() error {
			leaked := clientGoroutines()
			return errorf(leaked == "", "still running:\n%s", leaked)
		})
	}
	eventually(t, "goroutines back to baseline", func() error {
		n := runtime.NumGoroutine()
		return errorf(n <= base, "%d goroutines, baseline %d", n, base)
	})
}

// clientGoroutines returns the stacks of goroutines running code of package client, other than
// the caller.
func clientGoroutines() string {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	var out []string
	for i, g := range strings.Split(string(buf), "\n\n") {
		if i > 0 && strings.Contains(g, "tickwire/pkg/client.") {
			out = append(out, g)
		}
	}
	return strings.Join(out, "\n\n")
}

func TestDialReportsRefusedUpgrade(t *testing.T) {
	s := newFakeServer(testIDs...)
	t.Cleanup(s.Close)
	_, err := client.Dial(context.Background(), client.Options{URL: strings.TrimSuffix(s.URL, "/ws") + "/nope"})
	var he *client.HandshakeError
	if !errors.As(err, &he) || he.StatusCode != http.StatusForbidden {
		t.Fatalf("Dial = %v, want a HandshakeError with 403", err)
	}
	// Run gives up on it too, rather than retrying forever.
	c, _ := client.New(client.Options{URL: strings.TrimSuffix(s.URL, "/ws") + "/nope"})
	if err := c.Run(context.Background()); !errors.As(err, &he) {
		t.Fatalf("Run = %v", err)
	}
	// A server that is not there is retried until the context ends.
	dead := httptest.NewServer(http.NotFoundHandler())
	url := "ws" + strings.TrimPrefix(dead.URL, "http") + "/ws"
	dead.Close()
	c, _ = client.New(client.Options{URL: url, BackoffMin: 5 * time.Millisecond, BackoffMax: 10 * time.Millisecond})
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if err := c.Run(ctx); err != nil {
		t.Fatalf("Run against a dead server = %v, want nil after the context ended", err)
	}
}

func TestDialThenRun(t *testing.T) {
	s := newFakeServer(testIDs...)
	t.Cleanup(s.Close)
	s.step(30)
	c, err := client.Dial(context.Background(), client.Options{URL: s.URL})
	if err != nil {
		t.Fatal(err)
	}
	_ = c.Subscribe(client.Subscription{Instruments: testIDs[:1], Depth: 20})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	eventually(t, "synced", func() error {
		v, _ := c.View(testIDs[0])
		return errorf(v.Synced() && v.Depth == 50, "view %+v", v)
	})
	if n := len(s.connectTimes()); n != 1 {
		t.Errorf("%d connections, want the dialed one only", n)
	}
	_ = c.Close()
	if err := <-done; err != nil {
		t.Errorf("Run after Close = %v", err)
	}
	cancel()
	if err := c.Run(context.Background()); !errors.Is(err, client.ErrClosed) {
		t.Errorf("Run after Close = %v", err)
	}
}

func TestBackoffBounds(t *testing.T) {
	opts := client.Options{URL: "ws://x/ws", BackoffMin: 100 * time.Millisecond, BackoffMax: time.Second}
	for n := range 10 {
		hi := min(time.Second, 100*time.Millisecond<<(n+1))
		var lowest, highest time.Duration = time.Hour, 0
		for range 200 {
			d := client.Backoff(opts, n)
			if d < 100*time.Millisecond || d > hi {
				t.Fatalf("attempt %d: backoff %v outside [100ms, %v]", n, d, hi)
			}
			lowest, highest = min(lowest, d), max(highest, d)
		}
		if highest-lowest < (hi-100*time.Millisecond)/3 {
			t.Errorf("attempt %d: backoffs %v..%v not spread over [100ms, %v]", n, lowest, highest, hi)
		}
	}
	if d := client.Backoff(client.Options{URL: "ws://x/ws"}, 1000); d > client.DefaultBackoffMax || d < client.DefaultBackoffMin {
		t.Errorf("default backoff %v", d)
	}
}

func TestOptionsValidation(t *testing.T) {
	for _, o := range []client.Options{
		{},
		{URL: "http://x/ws"},
		{URL: "ws://"},
		{URL: "ws://x/ws", Subprotocol: "v2"},
		{URL: "ws://x/ws", BackoffMin: time.Second, BackoffMax: time.Millisecond},
	} {
		if _, err := client.New(o); err == nil {
			t.Errorf("New(%+v) accepted", o)
		}
	}
	c, _ := client.New(client.Options{URL: "ws://x/ws"})
	if err := c.Subscribe(client.Subscription{Instruments: []string{"no-colon"}}); err == nil {
		t.Error("Subscribe accepted a bad instrument id")
	}
	if err := c.Subscribe(client.Subscription{Instruments: testIDs, Channels: []pb.Channel{9}}); err == nil {
		t.Error("Subscribe accepted a bad channel")
	}
}

// TestCommandsFromManyGoroutines drives commands and reads from several goroutines while data
// flows; -race checks the locking, and the replicas must still end equal to the server's.
func TestCommandsFromManyGoroutines(t *testing.T) {
	s, r := newSyncedClient(t, client.Options{})
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			id := testIDs[g%len(testIDs)]
			for i := range 50 {
				switch i % 5 {
				case 0:
					_ = r.c.Unsubscribe([]string{id}, pb.Channel_CHANNEL_TRADES)
				case 1:
					_ = r.c.Subscribe(client.Subscription{Instruments: []string{id}})
				case 2:
					_ = r.c.Resync(id, pb.Channel_CHANNEL_BOOK)
				case 3:
					if v, ok := r.c.View(id); ok && v.Book != nil {
						_ = v.Book.Len(0)
					}
				case 4:
					_ = r.c.Stats()
				}
			}
		})
	}
	for range 10 {
		s.step(50)
	}
	wg.Wait()
	_ = r.c.Subscribe(client.Subscription{Instruments: testIDs})
	s.step(100)
	eventually(t, "sync after concurrent commands", func() error { return s.mismatch(r.c, 0) })
	if st := r.c.Stats(); st.Gaps != 0 || st.ChecksumFailures != 0 || st.DecodeErrors != 0 || st.Connects != 1 {
		t.Errorf("stats %+v", st)
	}
}
