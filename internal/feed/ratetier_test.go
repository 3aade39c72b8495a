package feed

import (
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/tickwire/tickwire/internal/auth"
	"github.com/tickwire/tickwire/pkg/market"
	pb "github.com/tickwire/tickwire/pkg/proto/tickwire/v1"
	"github.com/tickwire/tickwire/pkg/wire"
)

// TestRateTier: a token entitled to max_rate updates a second gets, per stream, no deltas but
// RATE_LIMITED snapshots of the latest state, never more than its rate however fast the market
// moves or however often it asks for a resync, and the state at the end of the last interval;
// a full-rate token on the same feed gets every delta meanwhile.
func TestRateTier(t *testing.T) {
	k := newAuthKeys(t)
	e := startEnv(t, k.authConfig(t, nil))
	p := newPublisher(t, e.bus, 1)
	p.publish(300)
	e.waitApplied(p)
	id := p.instruments()[0]

	const rate = 4 // a second: one update per 250 ms
	slow, err := dial(t, e.url, wire.SubprotocolProto, bearerHeader(k.token(t, "retail", time.Minute,
		auth.Grant{Instruments: []string{"*"}, MaxRate: rate})))
	if err != nil {
		t.Fatal(err)
	}
	go slow.conn.ReadLoop()
	full, err := dial(t, e.url, wire.SubprotocolProto, bearerHeader(k.token(t, "pro", time.Minute, allGrant)))
	if err != nil {
		t.Fatal(err)
	}
	go full.conn.ReadLoop()
	chans := []pb.Channel{pb.Channel_CHANNEL_QUOTE, pb.Channel_CHANNEL_BOOK}
	slow.send(subscribe(1, []string{id}, 10, chans...))
	full.send(subscribe(1, []string{id}, 10, chans...))
	sub := waitMsg(t, slow, "Subscribed", func(m *pb.ServerMessage) bool { return m.GetSubscribed() != nil }).GetSubscribed()
	if sub.UpdateIntervalMs != 250 {
		t.Fatalf("Subscribed.update_interval_ms = %d, want 250", sub.UpdateIntervalMs)
	}

	// The market moves every 5 ms for 2 s (400 events, most of them quote or book changes),
	// while the rate-limited client asks for a resync every 100 ms.
	const run = 2 * time.Second
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		for end := time.Now().Add(run); time.Now().Before(end); <-tick.C {
			p.publish(1)
		}
	}()
	var rateLimited, deltas, others int
	perStream := map[pb.Channel]int{}
	var lastQuote *pb.Snapshot
	collect := func(d time.Duration) {
		for _, m := range slow.within(d) {
			switch {
			case m.GetDelta() != nil:
				deltas++
			case m.GetSnapshot() != nil:
				snap := m.GetSnapshot()
				switch snap.Reason {
				case pb.SnapshotReason_SNAPSHOT_REASON_RATE_LIMITED:
					rateLimited++
					perStream[snap.Channel]++
				case pb.SnapshotReason_SNAPSHOT_REASON_RESYNC:
					// A resync asked for when the interval was up: an update like the others.
					perStream[snap.Channel]++
				case pb.SnapshotReason_SNAPSHOT_REASON_SUBSCRIBE:
				default:
					others++
					t.Logf("snapshot %v", snap.Reason)
				}
				if snap.Channel == pb.Channel_CHANNEL_QUOTE {
					lastQuote = snap
				}
			}
		}
	}
	for i := uint32(0); i < uint32(run/(100*time.Millisecond)); i++ {
		slow.send(&pb.ClientMessage{Id: 10 + i, Command: &pb.ClientMessage_Resync{Resync: &pb.Resync{Instrument: id}}})
		collect(100 * time.Millisecond)
	}
	wg.Wait()
	p.finish() // a last trade: not a quote change
	e.waitApplied(p)
	collect(time.Second) // the last interval's change arrives within an interval and a tick

	if deltas != 0 || others != 0 {
		t.Fatalf("rate-limited client got %d deltas and %d snapshots of other reasons", deltas, others)
	}
	// At most one update per 250 ms per stream over the run (and the wait after it), plus one
	// for the interval in progress when the run began.
	most := int((run+time.Second)/(250*time.Millisecond)) + 1
	for _, ch := range chans {
		if n := perStream[ch]; n < 3 || n > most {
			t.Errorf("%v: %d rate-limited snapshots in %v, want 3..%d", ch, n, run+time.Second, most)
		}
	}

	// The last quote it holds is the feed's latest: what the full-rate client holds from
	// snapshot plus every delta.
	var rep market.Replica
	fullDeltas := 0
	for end := time.Now().Add(5 * time.Second); time.Now().Before(end); {
		msgs := full.within(200 * time.Millisecond)
		if len(msgs) == 0 && fullDeltas > 0 {
			break
		}
		for _, m := range msgs {
			if s := m.GetSnapshot(); s != nil && s.Channel == pb.Channel_CHANNEL_QUOTE {
				if err := rep.ApplySnapshot(s); err != nil {
					t.Fatal(err)
				}
			}
			if d := m.GetDelta(); d != nil && d.GetQuote() != nil {
				fullDeltas++
				if err := rep.ApplyDelta(d); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	if fullDeltas <= perStream[pb.Channel_CHANNEL_QUOTE] {
		t.Fatalf("full-rate client: %d quote deltas, no more than the rate-limited one's %d updates", fullDeltas, perStream[pb.Channel_CHANNEL_QUOTE])
	}
	if lastQuote == nil || !proto.Equal(lastQuote.GetQuote(), rep.Quote()) || lastQuote.Seq < rep.Position(pb.Channel_CHANNEL_QUOTE).Seq {
		t.Fatalf("rate-limited client's last quote %v, full-rate client's %v at %v", lastQuote, rep.Quote(), rep.Position(pb.Channel_CHANNEL_QUOTE))
	}

	// A refresh to another tier is refused: the streams held were opened at this one.
	authed(slow, k.token(t, "retail", time.Minute, allGrant), 90)
	if err := slow.waitError(5 * time.Second); err.Code != pb.ErrorCode_ERROR_CODE_UNAUTHENTICATED {
		t.Fatalf("refresh to another tier: %v", err)
	}
}

// within returns every message of the frames that arrive within d (none is not a failure).
func (c *wsClient) within(d time.Duration) []*pb.ServerMessage {
	c.t.Helper()
	var msgs []*pb.ServerMessage
	deadline := time.After(d)
	for {
		select {
		case b := <-c.frames:
			var f pb.ServerFrame
			if err := wire.DecodeFrame(b, c.proto, &f); err != nil {
				c.t.Fatal(err)
			}
			msgs = append(msgs, f.Messages...)
		case err := <-c.closeCh:
			c.t.Fatalf("connection closed: %v", err)
		case <-deadline:
			return msgs
		}
	}
}
