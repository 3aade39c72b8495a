package feed

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/tickwire/tickwire/internal/fanout"
	"github.com/tickwire/tickwire/internal/source/synthetic"
	"github.com/tickwire/tickwire/internal/testwait"
	"github.com/tickwire/tickwire/pkg/market"
	pb "github.com/tickwire/tickwire/pkg/proto/tickwire/v1"
	"github.com/tickwire/tickwire/pkg/wire"
)

// TestSnapBudget: the bucket starts full; a snapshot of exactly what it holds is taken (at the
// limit), one byte more is not (past it) until the rate has refilled that byte; a snapshot larger
// than the burst is taken only from a full bucket, leaving it below zero; a negative rate is no
// budget.
func TestSnapBudget(t *testing.T) {
	l := budgetLimits{rate: 1000, burst: 5000}
	t0 := time.Unix(1_700_000_000, 0)
	var b snapBudget
	if !b.take(t0, 3000, l) || !b.holds(t0, 2000, l) || b.holds(t0, 2001, l) {
		t.Fatal("a full bucket of 5000 after 3000: must hold 2000, not 2001")
	}
	if b.take(t0, 2001, l) {
		t.Fatal("took 2001 bytes from 2000")
	}
	if !b.take(t0, 2000, l) { // exactly what is left
		t.Fatal("refused exactly what the bucket holds")
	}
	if b.take(t0.Add(999*time.Millisecond), 1000, l) {
		t.Fatal("took 1000 bytes after 999 ms at 1000 bytes/s")
	}
	if !b.take(t0.Add(time.Second), 1000, l) {
		t.Fatal("refused 1000 bytes after 1 s at 1000 bytes/s")
	}
	big := t0.Add(time.Hour) // full again
	if !b.take(big, 5001, l) {
		t.Fatal("a full bucket refused a snapshot larger than the burst")
	}
	// 1 byte below zero: 0.5 ms later half a byte below, 3 ms later 2 bytes above.
	if b.holds(big.Add(500*time.Microsecond), 0, l) || !b.holds(big.Add(3*time.Millisecond), 2, l) {
		t.Fatal("the bucket did not go below zero by the excess of a snapshot over the burst")
	}
	if !b.take(t0, 1<<30, budgetLimits{rate: -1}) {
		t.Fatal("a negative rate must mean no budget")
	}
}

// TestSnapshotBurstWithinQueue: a burst up to the queue's hard limit is valid; past it, a client
// taking what it is allowed at once could be closed as a slow consumer, so it is refused.
func TestSnapshotBurstWithinQueue(t *testing.T) {
	hard := fanout.Config{}.WithDefaults().HardLimit
	if err := (Config{SnapshotBurst: hard}).Validate(); err != nil {
		t.Fatalf("burst at the hard limit: %v", err)
	}
	if err := (Config{SnapshotBurst: hard + 1}).Validate(); err == nil {
		t.Fatal("burst past the hard limit accepted")
	}
	if err := (Config{SnapshotBurst: hard + 1, SnapshotRate: -1}).Validate(); err != nil {
		t.Fatalf("no budget (negative rate), burst unused: %v", err)
	}
}

// encodedSize is what the feed charges for a message: its binary encoding as a frame entry.
func encodedSize(t *testing.T, m *pb.ServerMessage) int {
	t.Helper()
	b, err := wire.EncodeMessage(m, false)
	if err != nil {
		t.Fatal(err)
	}
	return len(b)
}

// readSnapshots reads until n snapshots arrived and returns them with the time the last came.
func (c *wsClient) readSnapshots(n int, d time.Duration) ([]*pb.ServerMessage, time.Time) {
	c.t.Helper()
	var snaps []*pb.ServerMessage
	deadline := time.Now().Add(d)
	for len(snaps) < n {
		if time.Now().After(deadline) {
			c.t.Fatalf("%d snapshots of %d in %v", len(snaps), n, d)
		}
		for _, m := range c.next(time.Until(deadline)) {
			if m.GetSnapshot() != nil {
				snaps = append(snaps, m)
			}
			if e := m.GetError(); e != nil {
				c.t.Fatalf("error %v", e)
			}
		}
	}
	return snaps, time.Now()
}

func deferredTotal(e *env) float64 {
	return testutil.ToFloat64(e.srv.metrics.snapsDeferred.WithLabelValues("subscribe")) +
		testutil.ToFloat64(e.srv.metrics.snapsDeferred.WithLabelValues("resync"))
}

func resync(id uint32, instrument string) *pb.ClientMessage {
	return &pb.ClientMessage{Id: id, Command: &pb.ClientMessage_Resync{Resync: &pb.Resync{Instrument: instrument}}}
}

// TestSnapshotBudgetAtLimit: with a budget of exactly one full subscribe's snapshot bytes, that
// subscribe is answered at once with nothing deferred (at the limit); a Resync right after it
// (past the limit) is deferred, not refused nor dropped: its snapshots all arrive, but not before
// the budget's rate has refilled their bytes.
func TestSnapshotBudgetAtLimit(t *testing.T) {
	e := startEnv(t, Config{})
	p := newPublisher(t, e.bus, 1)
	p.publish(400)
	e.waitApplied(p)
	id := p.instruments()[0]
	all := len(wire.AllChannels())

	// What the full subscribe costs, measured on a feed with the default budget.
	c := mustDial(t, e.url, wire.SubprotocolProto)
	c.send(subscribe(1, []string{id}, 50))
	snaps, _ := c.readSnapshots(all, 5*time.Second)
	full := 0
	for _, m := range snaps {
		full += encodedSize(t, m)
	}
	if full < 1000 {
		t.Fatalf("a full subscribe is %d bytes: too small to measure a budget with", full)
	}

	// The same state served by a feed whose budget is exactly that, refilling in 2 s.
	e.stop()
	rate := full / 2
	e.startFeed(Config{SnapshotBurst: full, SnapshotRate: rate})
	e.waitApplied(p)
	c = mustDial(t, e.url, wire.SubprotocolProto)
	start := time.Now()
	c.send(subscribe(1, []string{id}, 50))
	snaps, _ = c.readSnapshots(all, 5*time.Second)
	got := 0
	for _, m := range snaps {
		got += encodedSize(t, m)
	}
	if got != full {
		t.Fatalf("subscribe sent %d snapshot bytes, want the %d measured before", got, full)
	}
	if n := deferredTotal(e); n != 0 {
		t.Fatalf("%v snapshots deferred by a subscribe of exactly the budget", n)
	}

	c.send(resync(2, id))
	testwait.For(t, 5*time.Second, "a resync snapshot deferred", func() bool { return deferredTotal(e) >= 1 })
	snaps, last := c.readSnapshots(all, 20*time.Second)
	for _, m := range snaps {
		if r := m.GetSnapshot().Reason; r != pb.SnapshotReason_SNAPSHOT_REASON_RESYNC {
			t.Fatalf("snapshot reason %v, want RESYNC", r)
		}
	}
	// 2*full bytes from a bucket of full that refills rate bytes/s: the last not before
	// full/rate seconds after the first charge (which came after start).
	if min := time.Duration(float64(full) / float64(rate) * float64(time.Second)); last.Sub(start) < min-50*time.Millisecond {
		t.Fatalf("resync answered in full %v after the subscribe: the budget allows %v at the earliest", last.Sub(start), min)
	}
}

// TestResyncFloodWithinBudget: a connection sending Resync at the whole command rate gets at
// most its budget in snapshot bytes (burst + rate x time), measured by what a real WebSocket
// client receives; it is still answered: the last Resync gets its snapshots after the flood.
func TestResyncFloodWithinBudget(t *testing.T) {
	const (
		rate  = 5_000 // bytes/s
		burst = 5_000
		flood = 2 * time.Second
		every = 20 * time.Millisecond // 50 Resync/s: the command rate limit's pace
	)
	e := startEnv(t, Config{SnapshotRate: rate, SnapshotBurst: burst})
	p := newPublisher(t, e.bus, 1)
	p.publish(400)
	e.waitApplied(p)
	id := p.instruments()[0]

	c := mustDial(t, e.url, wire.SubprotocolProto)
	start := time.Now()
	c.send(subscribe(1, []string{id}, 50))
	snaps, _ := c.readSnapshots(len(wire.AllChannels()), 5*time.Second)
	one := 0
	for _, m := range snaps {
		one += encodedSize(t, m)
	}
	// Without a budget the flood would bring flood/every full resyncs.
	if unbudgeted := int(flood/every) * one; unbudgeted < 4*(burst+rate*3) {
		t.Fatalf("a full resync is %d bytes: too small for the flood to exceed the budget clearly", one)
	}

	total := one
	tick := time.NewTicker(every)
	defer tick.Stop()
	var lastSent time.Time
	for i := 0; time.Since(start) < flood; i++ {
		<-tick.C
		c.send(resync(uint32(i+2), id))
		lastSent = time.Now()
	}
	// Read until a snapshot has come after the last Resync was sent (deferred snapshots carry
	// the state of when they go) and nothing more comes for a while.
	answered := false
	deadline := time.Now().Add(20 * time.Second)
read:
	for {
		if time.Now().After(deadline) {
			t.Fatal("the flood's last Resync was never answered")
		}
		select {
		case b := <-c.frames:
			var f pb.ServerFrame
			if err := wire.DecodeFrame(b, c.proto, &f); err != nil {
				t.Fatal(err)
			}
			for _, m := range f.Messages {
				if m.GetSnapshot() != nil {
					total += encodedSize(t, m)
					answered = answered || time.Now().After(lastSent)
				}
				if m.GetError() != nil {
					t.Fatalf("error %v: a Resync within the command rate is deferred, never refused", m.GetError())
				}
			}
		case <-time.After(500 * time.Millisecond):
			if answered {
				break read
			}
		}
	}
	elapsed := time.Since(start)
	allowed := burst + int(rate*elapsed.Seconds())
	t.Logf("%d Resync over %v; snapshot bytes %d in %v (budget allows %d; unbudgeted %d)",
		int(flood/every), flood, total, elapsed.Round(time.Millisecond), allowed, int(flood/every)*one)
	if total > allowed {
		t.Fatalf("%d snapshot bytes in %v: above the budget's %d", total, elapsed, allowed)
	}
	if deferredTotal(e) == 0 {
		t.Fatal("no snapshot counted as deferred")
	}
}

// TestDashboardSubscribeNotDeferred: with the default budget, a dashboard subscribing 50
// instruments with every channel and the deepest book in one command gets every snapshot at
// once; nothing is deferred.
func TestDashboardSubscribeNotDeferred(t *testing.T) {
	e := startEnv(t, Config{})
	p := newPublisher(t, e.bus, 50)
	p.publish(5000)
	e.waitApplied(p)
	ids := p.instruments()
	c := mustDial(t, e.url, wire.SubprotocolProto)
	c.send(subscribe(1, ids, 50))
	snaps, _ := c.readSnapshots(50*len(wire.AllChannels()), 20*time.Second)
	bytes := 0
	for _, m := range snaps {
		bytes += encodedSize(t, m)
	}
	if n := deferredTotal(e); n != 0 {
		t.Fatalf("%v snapshots deferred", n)
	}
	t.Logf("50 instruments, every channel, depth 50: %d snapshot bytes", bytes)
}

// TestDefaultSnapshotBurstCoversDashboard guards the default burst: 50 instruments whose state
// is as large as the defaults allow (a 50-level book, every trade and candle kept), every
// channel at the deepest depth, fit in it as binary, so a dashboard's first subscribe is never
// deferred. JSON costs about four times as much and may be.
func TestDefaultSnapshotBurstCoversDashboard(t *testing.T) {
	cfg := Config{}.withDefaults()
	m, err := synthetic.NewMarket(synthetic.Config{Instruments: 1, Seed: 7, Depth: 50})
	if err != nil {
		t.Fatal(err)
	}
	var st *market.State
	clock := int64(1_700_000_000e9)
	// A second of market time per event: 40,000 events fill 300 one-minute bars.
	for i := range 40_000 {
		clock += 1e9
		ev := m.Next(clock)
		if st == nil {
			st = market.NewState(ev.Instrument, cfg.Market)
		}
		ev.Epoch, ev.Seq = 1, uint64(i+1)
		if _, err := st.Apply(ev); err != nil {
			t.Fatal(err)
		}
	}
	deepest := len(cfg.Market.Depths) - 1
	one := 0
	for _, ch := range wire.AllChannels() {
		snap := st.Snapshot(ch, deepest, pb.SnapshotReason_SNAPSHOT_REASON_SUBSCRIBE)
		if snap == nil {
			t.Fatalf("no %v snapshot", ch)
		}
		snap.Handle = 50_000
		one += encodedSize(t, &pb.ServerMessage{Kind: &pb.ServerMessage_Snapshot{Snapshot: snap}})
	}
	t.Logf("a full instrument is %d bytes of snapshots; 50 are %d; default burst %d", one, 50*one, cfg.SnapshotBurst)
	if 50*one > cfg.SnapshotBurst {
		t.Fatalf("50 full instruments (%d bytes) do not fit the default burst %d", 50*one, cfg.SnapshotBurst)
	}
}

// unknownIDs returns n well-formed instrument ids no feed knows.
func unknownIDs(n int) []string {
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("zz:U%04d", i)
	}
	return ids
}

// untilPong reads every message up to the Pong answering ping id, sent after the commands
// under test, and until subscribed Subscribed replies came too (the owners send those, so they
// may follow the Pong; errors about a command's ids come before it), and returns them but the
// Pong.
func (c *wsClient) untilPong(id uint32, subscribed int, d time.Duration) []*pb.ServerMessage {
	c.t.Helper()
	c.send(&pb.ClientMessage{Id: id, Command: &pb.ClientMessage_Ping{Ping: &pb.Ping{Nonce: 1}}})
	var got []*pb.ServerMessage
	ponged := false
	deadline := time.Now().Add(d)
	for !ponged || subscribed > 0 {
		for _, m := range c.next(time.Until(deadline)) {
			if p := m.GetPong(); p != nil && p.RequestId == id {
				ponged = true
				continue
			}
			if m.GetSubscribed() != nil {
				subscribed--
			}
			got = append(got, m)
		}
	}
	return got
}

// summary describes errors briefly (a failing test may have a thousand).
func summary(errs []*pb.Error) string {
	if len(errs) == 0 {
		return "no errors"
	}
	return fmt.Sprintf("%d errors, the first %v", len(errs), errs[0])
}

func errorsIn(msgs []*pb.ServerMessage) []*pb.Error {
	var out []*pb.Error
	for _, m := range msgs {
		if e := m.GetError(); e != nil {
			out = append(out, e)
		}
	}
	return out
}

// TestOneErrorPerCommand: a command naming many instruments that fail the same way gets one
// Error naming the first of them and the count, never one per instrument; and the replies to
// a Subscribe of unknown ids are smaller than the command.
func TestOneErrorPerCommand(t *testing.T) {
	e := startEnv(t, Config{MaxSubscriptions: 3})
	p := newPublisher(t, e.bus, 5)
	p.publish(200)
	e.waitApplied(p)
	known := p.instruments()

	t.Run("1000 unknown", func(t *testing.T) {
		c := mustDial(t, e.url, wire.SubprotocolProto)
		c.t = t
		ids := unknownIDs(1000)
		cmd := subscribe(1, ids, 0)
		cmdBytes, _ := wire.EncodeClientMessage(cmd, wire.SubprotocolProto)
		c.send(cmd)
		got := c.untilPong(2, 0, 10*time.Second)
		errs := errorsIn(got)
		if len(got) != 1 || len(errs) != 1 {
			t.Fatalf("%d messages, %s: want exactly one error", len(got), summary(errs))
		}
		er := errs[0]
		if er.Code != pb.ErrorCode_ERROR_CODE_UNKNOWN_INSTRUMENT || er.RequestId != 1 || er.Instrument != ids[0] ||
			!strings.Contains(er.Message, "1000") {
			t.Fatalf("error %v: want UNKNOWN_INSTRUMENT for request 1 naming %s and the count 1000", er, ids[0])
		}
		n := encodedSize(t, got[0])
		if n >= len(cmdBytes) {
			t.Fatalf("%d bytes of replies to a %d-byte command", n, len(cmdBytes))
		}
		perID := 0 // what one error per id (before issue 14) came to
		for _, id := range ids {
			perID += encodedSize(t, &pb.ServerMessage{Kind: &pb.ServerMessage_Error{Error: &pb.Error{RequestId: 1,
				Code: pb.ErrorCode_ERROR_CODE_UNKNOWN_INSTRUMENT, Message: "unknown instrument", Instrument: id}}})
		}
		t.Logf("a %d-byte Subscribe of 1000 unknown ids: %d bytes of replies (one error per id: %d)", len(cmdBytes), n, perID)
	})
	t.Run("known and unknown", func(t *testing.T) {
		c := mustDial(t, e.url, wire.SubprotocolProto)
		c.t = t
		ids := append(unknownIDs(500), known[:2]...)
		c.send(subscribe(1, ids, 0, pb.Channel_CHANNEL_QUOTE))
		got := c.untilPong(2, 2, 10*time.Second)
		subscribed := 0
		for _, m := range got {
			if m.GetSubscribed() != nil {
				subscribed++
			}
		}
		errs := errorsIn(got)
		if subscribed != 2 || len(errs) != 1 || errs[0].Code != pb.ErrorCode_ERROR_CODE_UNKNOWN_INSTRUMENT ||
			!strings.Contains(errs[0].Message, "500") {
			t.Fatalf("%d subscribed, %s: want 2 and one UNKNOWN_INSTRUMENT naming 500", subscribed, summary(errs))
		}
	})
	t.Run("subscription cap: at the limit and past it", func(t *testing.T) {
		c := mustDial(t, e.url, wire.SubprotocolProto)
		c.t = t
		c.send(subscribe(1, known[:3], 0, pb.Channel_CHANNEL_QUOTE)) // exactly the cap
		if errs := errorsIn(c.untilPong(2, 3, 10*time.Second)); len(errs) != 0 {
			t.Fatalf("at the cap: %s", summary(errs))
		}
		c.send(subscribe(3, known[3:], 0, pb.Channel_CHANNEL_QUOTE)) // two past it
		errs := errorsIn(c.untilPong(4, 0, 10*time.Second))
		if len(errs) != 1 || errs[0].Code != pb.ErrorCode_ERROR_CODE_TOO_MANY_SUBSCRIPTIONS ||
			errs[0].Instrument != known[3] || !strings.Contains(errs[0].Message, "2 instruments") {
			t.Fatalf("%s: want one TOO_MANY_SUBSCRIPTIONS naming %s and the count 2", summary(errs), known[3])
		}
	})
	t.Run("unsubscribe not subscribed", func(t *testing.T) {
		c := mustDial(t, e.url, wire.SubprotocolProto)
		c.t = t
		c.send(&pb.ClientMessage{Id: 1, Command: &pb.ClientMessage_Unsubscribe{Unsubscribe: &pb.Unsubscribe{Instruments: unknownIDs(1000)}}})
		errs := errorsIn(c.untilPong(2, 0, 10*time.Second))
		if len(errs) != 1 || errs[0].Code != pb.ErrorCode_ERROR_CODE_NOT_SUBSCRIBED || !strings.Contains(errs[0].Message, "1000") {
			t.Fatalf("%s: want one NOT_SUBSCRIBED naming the count 1000", summary(errs))
		}
	})
}
